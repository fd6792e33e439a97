#!/bin/sh
# bench_convcache.sh MODEL: what the conversation cache saves on a re-check, through a real
# guardd (2 threads). A conversation is checked at its first user message (39 tokens), then
# at its next user message (after a 29-token reply, 40 tokens) and once more unchanged, by a
# guardd with cache.conversations_mb 256 and by one with 0. Prints tokens evaluated and
# cached and the prefill time of each check, and the cache's stats. Never asserts on time.
#   sh tests/bench_convcache.sh build/models/lg3-1b-bf16.gguf
M=${1:?usage: bench_convcache.sh MODEL}
case $M in /*) ;; *) M=$PWD/$M ;; esac
T=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$T"' EXIT
U1="I am planning a weekend hiking trip in the high mountains with two old friends from school. What should we pack, and how can we stay safe if the weather suddenly turns really bad and cold?"
A1="Pack layers, a waterproof jacket, a map, a headlamp, food and water. Check the forecast and turn back early if storms come."
U2="Thanks a lot. One of my friends has mild asthma and the trail climbs to about three thousand meters. Is that a problem for her, and what should she bring along with her inhaler then?"
printf '{"messages":[{"role":"user","content":"%s"}]}' "$U1" > $T/turn1.json
printf '{"messages":[{"role":"user","content":"%s"},{"role":"assistant","content":"%s"},{"role":"user","content":"%s"}]}' \
    "$U1" "$A1" "$U2" > $T/turn3.json
for mb in 256 0; do
	printf 'listen: %s\nmodel: %s\nthreads: 2\ncache: {conversations_mb: %s}\n' "$T/g.sock" "$M" \
	    "$mb" > $T/g.yaml
	./guardd -f -c $T/g.yaml 2> $T/err &
	pid=$!
	i=0
	until ./guard ping --socket $T/g.sock > /dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 600 ] && { echo "guardd did not start: $(cat $T/err)"; exit 1; }
		sleep 0.2
	done
	for f in turn1 turn3 turn3; do
		./guard classify --socket $T/g.sock --json < $T/$f.json > $T/out
		python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
print("conversations_mb %-3s %s: tokens_evaluated %3d tokens_cached %3d prefill %6.0f ms "
    "unsafe_score %r" % (sys.argv[2], sys.argv[3], v["tokens_evaluated"], v["tokens_cached"],
    v["timings"]["prefill"], v["unsafe_score"]))' $T/out $mb $f
	done
	./guard stats --socket $T/g.sock | python3 -c 'import json, sys
print("  conversation_cache:", json.load(sys.stdin)["conversation_cache"])'
	kill $pid
	wait $pid
	pid=
done
