#!/bin/sh
# soak.sh - guardd on the rigged model under CLIENTS well-behaved clients x REQUESTS classify
# requests each (4 in flight per client; every answer's id and verdict checked: 0 lost, 0
# duplicated, 0 mismatched), while HOSTILE clients trickle, send oversize frames and garbage,
# half-close, idle and vanish mid-request, each checked for its expected treatment. Prints
# TAP and the figures (requests/s, p50/p99, peak RSS of the serving process).
#   sh tests/soak.sh [CLIENTS REQUESTS HOSTILE]     (make soak: 64 1000 20)
. tests/tap.sh
B=${BUILD:-build}
R=$PWD/$B/models/rig-l3.gguf
N=${1:-64}
PER=${2:-1000}
H=${3:-20}
[ -f "$R" ] || skip_all "test models not built (../shared absent)"
T=$(mktemp -d)
S=$T/g.sock
# a queue deep enough for all the well-behaved requests in flight (N x 4) plus the hostile ones,
# so that they never see busy; a short idle timeout so the idle ones are closed soon
cat > $T/guardd.yaml <<CONF
listen: $S
model: $R
threads: 2
batch: 4
log: {path: $T/verdicts.jsonl, content: none}
limits: {max_queue: 4096, max_connections: 1024, idle_timeout_ms: 1000, read_timeout_ms: 5000,
  max_request_bytes: 65536}
CONF
./guardd -f -c $T/guardd.yaml 2> $T/err &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
guardd_ready $pid $T/err 300 ./guard ping --socket $S
echo "# $B/tests/loadgen --soak $S $N $PER $H"
out=$("$B/tests/loadgen" --soak $S $N $PER $H)
rc=$?
printf '%s\n' "$out" | grep '^#'
printf '%s\n' "$out" | grep -q '^ok 1 ' ; ok $? "$(printf '%s\n' "$out" | grep ' 1 - ' | sed -E 's/^(not )?ok 1 - //')"
printf '%s\n' "$out" | grep -q '^ok 2 ' ; ok $? "$(printf '%s\n' "$out" | grep ' 2 - ' | sed -E 's/^(not )?ok 2 - //')"
is "$rc" 0 "soak: loadgen exits 0"
./guard ping --socket $S > /dev/null 2>&1; ok $? "soak: guardd still answers a ping"
st=$(./guard stats --socket $S --json)
is "$(printf '%s' "$st" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["process"]["restarts"])' 2>&1)" 0 \
    "soak: the inference process never crashed (process.restarts)"
echo "# stats: $(printf '%s' "$st" | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
print("restarts %d, connections %s, errors %s" % (s["process"]["restarts"], json.dumps(s["connections"]),
    json.dumps(s["errors"])))' 2>&1)"
kill -TERM $pid
wait $pid
is "$?" 0 "soak: guardd exits 0 on SIGTERM"
[ $TAP_FAIL -eq 0 ] || sed 's/^/# guardd: /' $T/err | tail -20
done_testing
