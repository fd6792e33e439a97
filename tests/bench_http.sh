#!/bin/sh
# The HTTP front's cost per moderation request: one guardd on the rigged guard (build/models,
# tiny, so the front's share of a request shows), the same text classified through the
# msgpack socket and through POST /v1/moderations on an HTTP Unix socket, by C clients
# (tests/httpload.c; keep-alive, one request after another). Prints requests/s and per-request
# latency for both paths and their difference (the goal: <= 1 ms). Asserts nothing about time.
#   sh tests/bench_http.sh [REQUESTS_PER_CLIENT]   (BUILD=build by default)
set -eu
B=${BUILD:-build}
M=$PWD/$B/models
PER=${1:-200}
[ -f "$M/rig-l3.gguf" ] || { echo "bench_http: $M/rig-l3.gguf missing (make models)"; exit 1; }
make -s "$B/tests/httpload" guardd
T=$(mktemp -d)
cat > $T/guardd.yaml <<CONF
listen: $T/g.sock
model: $M/rig-l3.gguf
policy: $PWD/etc/policy.yaml
limits: {max_queue: 256}
http: {listen: [$T/h.sock]}
CONF
./guardd -f -c $T/guardd.yaml 2> $T/err &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
i=0
until ./guard ping --socket $T/g.sock > /dev/null 2>&1 && [ -S $T/h.sock ]; do
	i=$((i + 1)); [ $i -gt 300 ] && { cat $T/err; exit 1; }; sleep 0.1
done
MSG="How do I bake bread at home without a bread machine?"
echo "== guardd on the rigged guard: msgpack classify vs POST /v1/moderations ($PER requests per client)"
"$B/tests/httpload" $T/g.sock $T/h.sock 1 "$PER" "$MSG"
"$B/tests/httpload" $T/g.sock $T/h.sock 4 "$((PER / 4))" "$MSG"
