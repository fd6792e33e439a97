#!/bin/sh
# guard classify|filter|ping|stats|reload --socket against a real guardd: the same output
# and exit statuses as the in-process commands.
. tests/tap.sh
B=${BUILD:-build}
R=$PWD/$B/models/rig-l3.gguf
[ -f "$R" ] || skip_all "test models not built (../shared absent)"
T=$(mktemp -d)
S=$T/g.sock
cat > $T/guardd.yaml <<CONF
listen: $S
model: $R
policy: $PWD/etc/policy.yaml
log: {path: verdicts.jsonl, content: full}
CONF
./guardd -f -c $T/guardd.yaml 2> $T/err &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
guardd_ready $pid $T/err 300 ./guard ping --socket $S
like "$(./guard ping --socket $S)" "pong (protocol 1" "guard ping"
for text in "How do I bake bread?" "How do I build a bomb?"; do
	a=$(./guard classify -m $R --policy etc/policy.yaml "$text"); ra=$?
	b=$(./guard classify --socket $S "$text"); rb=$?
	is "$b" "$a" "classify --socket prints what in-process prints: '$text'"
	is "$rb" "$ra" "and exits the same ($ra)"
done
printf '%s\n' 'cake' 'a bomb' '{"prompt":"hi","response":"a bomb"}' '{oops' '{"text":"bread"}' > $T/in
./guard filter -m $R --policy etc/policy.yaml < $T/in 2>/dev/null | sed 's/"timings":{[^}]*}//g; s/"model":"[^"]*"//g; s/"tokens_[a-z]*":[0-9]*//g' > $T/a; ra=$?
./guard filter --socket $S < $T/in 2>/dev/null | sed 's/"timings":{[^}]*}//g; s/"model":"[^"]*"//g; s/"tokens_[a-z]*":[0-9]*//g' > $T/b; rb=$?
cmp -s $T/a $T/b
ok $? "filter --socket writes the same verdict lines as in-process"
./guard filter --socket $S < $T/in > /dev/null 2>&1; is "$?" 2 "filter --socket exits 2 (a malformed line)"
./guard filter --socket $S --emit unsafe < $T/in > $T/e 2>/dev/null
is "$(tr '\n' '|' < $T/e)" 'a bomb|{"prompt":"hi","response":"a bomb"}|{oops|' "filter --socket --emit unsafe"
i=0; while [ $i -lt 100 ]; do echo "line $i $([ $((i % 7)) = 0 ] && echo bomb)"; i=$((i + 1)); done > $T/many
is "$(./guard filter --socket $S < $T/many 2>/dev/null | /usr/bin/python3 -c '
import json,sys
print(sum(1 for l in sys.stdin if json.loads(l)["decision"] == "block"))')" 15 "filter --socket over 100 lines, 32 in flight: 15 blocked, in order"
like "$(./guard stats --socket $S)" '"classify":' "guard stats"
like "$(./guard reload --socket $S)" '"default":' "guard reload"
like "$(head -1 $T/verdicts.jsonl)" '"messages":[{"role":"user","content":["How do I bake bread?"]}]' "log content: full keeps the messages"
./guard ping --socket $T/nothing.sock 2>/dev/null; is "$?" 1 "ping on a missing socket: exit 1"
./guard classify --socket $T/nothing.sock "x" 2>/dev/null; is "$?" 2 "classify on a missing socket: exit 2"
kill -TERM $pid
wait $pid; is "$?" 0 "guardd exits 0 on SIGTERM"

# filter --socket against a daemon whose queue holds one request: most requests are answered
# `busy` at first. Each is retried with back-off; every line is written exactly once, in
# order, and the run ends (bounded by `timeout`; it used to stall for 600 s when one half of
# a prompt+response line was busy).
cat > $T/busy.yaml <<CONF
listen: $T/busy.sock
model: $R
policy: $PWD/etc/policy.yaml
limits: {max_queue: 1}
log: {path: busy.jsonl, content: none}
CONF
./guardd -f -c $T/busy.yaml 2> $T/busy.err &
bpid=$!
trap 'kill $pid $bpid 2>/dev/null; rm -rf "$T"' EXIT
guardd_ready $bpid $T/busy.err 300 ./guard ping --socket $T/busy.sock
i=0; while [ $i -lt 60 ]; do
	case $((i % 3)) in
	0) echo "{\"prompt\":\"question $i\",\"response\":\"answer $i $([ $((i % 4)) = 0 ] && echo bomb)\"}" ;;
	1) echo "plain line $i $([ $((i % 5)) = 0 ] && echo bomb)" ;;
	2) echo "{\"prompt\":\"how to make a bomb $i\",\"response\":\"no\"}" ;;
	esac
	i=$((i + 1))
done > $T/pairs
./guard filter -m $R --policy etc/policy.yaml < $T/pairs 2>/dev/null > $T/pairs.local
check_lines() {	# FILE: "N lines, in order" and the decisions, one per line
	/usr/bin/python3 -c '
import json,sys,signal
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
rows=[json.loads(l) for l in open(sys.argv[1])]
nos=[r.get("line") for r in rows]
print("%d lines, %s" % (len(rows), "in order" if nos == list(range(1, len(rows) + 1)) else "out of order: %s" % nos[:20]))
for r in rows: print(r["decision"], "busy" if "busy" in json.dumps(r) else "")' "$1"
}
timeout 300 ./guard filter --socket $T/busy.sock < $T/pairs > $T/pairs.out 2> $T/pairs.err; rc=$?
ok $([ $rc -ne 124 ]; echo $?) "filter --socket with max_queue 1: ends (exit $rc, not the 300 s timeout)"
is "$(check_lines $T/pairs.out | head -1)" "60 lines, in order" "every line written exactly once, in order"
is "$(check_lines $T/pairs.out | tail -n +2)" "$(check_lines $T/pairs.local | tail -n +2)" \
    "busy answers retried: the same decisions as in-process"
is "$(grep -c 'unknown id' $T/pairs.err)" 0 "no answer was dropped as an unknown id"
busy=$(./guard stats --socket $T/busy.sock --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["errors"]["busy"])')
ok $([ "$busy" -gt 0 ]; echo $?) "the daemon did answer busy ($busy times): the retries were exercised"
GUARD_BUSY_RETRIES=0 timeout 300 ./guard filter --socket $T/busy.sock < $T/pairs > $T/pairs0.out 2> $T/pairs0.err; rc=$?
ok $([ $rc -ne 124 ]; echo $?) "GUARD_BUSY_RETRIES=0: ends too (exit $rc)"
is "$(check_lines $T/pairs0.out | head -1)" "60 lines, in order" "every line written exactly once, in order"
is "$(grep -c 'unknown id' $T/pairs0.err)" 0 "no answer was dropped as an unknown id"
nb=$(check_lines $T/pairs0.out | grep -c '^error busy')
ok $([ "$nb" -gt 0 ]; echo $?) "lines whose request was busy are error records naming busy ($nb lines)"
kill -TERM $bpid
wait $bpid; is "$?" 0 "the busy guardd exits 0 on SIGTERM"

# every example file in etc/ passes guardd -t (with this machine's model and socket paths)
sed "s#^model: .*#model: $R#; s#^listen: .*#listen: $T/ex.sock#; s#^policy: .*#policy: $PWD/etc/policy.yaml#; s#^log: .*#log: {path: $T/ex.jsonl, content: none}#" etc/guardd.yaml > $T/ex.yaml
out=$(./guardd -t -c $T/ex.yaml 2>&1); rc=$?
is "$rc" 0 "etc/guardd.yaml passes guardd -t"
like "$out" "configuration OK" "and says so"
grep -q 'ExecStart=.*guardd -f' etc/guardd.service && grep -q 'ListenStream=/run/guardd/guardd.sock' etc/guardd.socket
ok $? "etc/guardd.service runs guardd -f; etc/guardd.socket listens where guardd.yaml says"
done_testing
