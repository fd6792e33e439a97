#!/bin/sh
# make bench: throughput on the real Llama Guard 3 1B shape (hash-noise weights, BF16 GGUF,
# about 3 GB, built once into $BUILD/models). Prints figures; asserts nothing about time.
set -eu
B=${BUILD:-build}
M=$B/models
mkdir -p "$M"
if [ ! -f "$M/lg3-1b-bf16.gguf" ]; then
	echo "bench: building $M/lg3-1b-bf16.gguf (Llama Guard 3 1B shape, BF16)"
	"$B/tests/mkmodel" lg3-1b gguf "$M/lg3-1b-bf16.gguf" bf16
fi
echo "== core: guard bench -m $M/lg3-1b-bf16.gguf -p 512 -n 64 -r 3"
./guard bench -m "$M/lg3-1b-bf16.gguf" -p 512 -n 64 -r 3

# The quantized types (issue 9), each made once from the BF16 file by guard quantize, the
# same per-tensor types llama-quantize chooses; prefill, decode, GB/s and peak RSS per type,
# and the time of a prefix-cached verdict (below) for the fastest one.
for t in Q8_0 Q4_K_M Q6_K Q5_K_M Q4_0; do
	f=$M/lg3-1b-$(echo $t | tr 'A-Z' 'a-z').gguf
	if [ ! -f "$f" ]; then
		echo "bench: building $f with guard quantize"
		./guard quantize -q "$M/lg3-1b-bf16.gguf" "$f" $t
	fi
done
echo "== core, per type: guard bench -p 512 -n 64 -r ${BENCH_QRUNS:-3} (types run in turn, so drift hits all)"
for t in bf16 q8_0 q4_k_m q6_k q5_k_m q4_0; do
	./guard bench -m "$M/lg3-1b-$t.gguf" -p 512 -n 64 -r ${BENCH_QRUNS:-3} --json > "$M/.bench-$t.json"
done
/usr/bin/python3 - "$M" <<'PY'
import json, sys, os
m = sys.argv[1]
print("   %-7s %-28s %10s %9s %8s %9s %9s" % ("type", "weights", "prefill/s", "decode/s", "GB/s", "RSS MiB", "file MiB"))
for t in ("bf16", "q8_0", "q4_k_m", "q6_k", "q5_k_m", "q4_0"):
    j = json.load(open("%s/.bench-%s.json" % (m, t)))
    size = os.path.getsize("%s/lg3-1b-%s.gguf" % (m, t)) / 2**20
    print("   %-7s %-28s %10.1f %9.2f %8.1f %9.0f %9.0f" % (t, j.get("weight_type", "?")[:28], j["prefill_tok_s"],
          j["decode_tok_s"], j.get("decode_gb_s", 0), j.get("rss_mb", 0), size))
PY

# The classifier: a 60-token user message, the policy prefix cached or evaluated each time.
MSG="I have been reading about home chemistry experiments for a school science fair project and I would like to know which common household products are safe to combine, which ones should never be mixed, and how to store them so that my younger siblings cannot reach them."
med() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
verdict_ms() {	# verdict_ms EXTRA-FLAGS: median total ms of 5 verdicts in one process
	i=0; while [ $i -lt 5 ]; do echo "$MSG"; i=$((i + 1)); done |
	    ./guard filter -m "$M/lg3-1b-bf16.gguf" --batch 1 --exit-zero $1 2>/dev/null |
	    sed 's/.*"total":\([0-9.]*\).*/\1/' | med
}
ntok=$(printf '%s' "$MSG" | ./guard tokenize -m "$M/lg3-1b-bf16.gguf" | wc -w)
echo "== classifier: one verdict for a $ntok-token user message (median of 5, ms)"
echo "   prefix cached:     $(verdict_ms '')"
echo "   prefix not cached: $(verdict_ms --no-cache)"
echo "== guard filter: 32 such lines, batches of 4"
i=0; while [ $i -lt 32 ]; do echo "$MSG $i"; i=$((i + 1)); done |
    ./guard filter -m "$M/lg3-1b-bf16.gguf" --batch 4 --exit-zero 2>&1 >/dev/null | tail -1
echo "== guard filter: the same lines one at a time"
i=0; while [ $i -lt 32 ]; do echo "$MSG $i"; i=$((i + 1)); done |
    ./guard filter -m "$M/lg3-1b-bf16.gguf" --batch 1 --exit-zero 2>&1 >/dev/null | tail -1

# guardd: 1, 4 and 16 concurrent clients on the same model (batches of up to 4)
T=$(mktemp -d)
cat > $T/guardd.yaml <<CONF
listen: $T/g.sock
model: $PWD/$M/lg3-1b-bf16.gguf
batch: 4
limits: {max_queue: 256, deadline_ms: 600000}
CONF
./guardd -f -c $T/guardd.yaml 2> $T/err &
pid=$!
i=0
until ./guard ping --socket $T/g.sock > /dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 600 ] && { cat $T/err; kill $pid; exit 1; }; sleep 0.1
done
echo "== guardd: the $ntok-token message from C clients over the socket"
"$B/tests/loadgen" $T/g.sock 1 6 "$MSG"
"$B/tests/loadgen" $T/g.sock 4 3 "$MSG"
"$B/tests/loadgen" $T/g.sock 16 2 "$MSG"
kill -TERM $pid
wait $pid
rm -rf "$T"

# issue 8: the chat generator beside the guard (guard vs llama.cpp decode, chats through guardd)
BUILD=$B sh tests/bench_chat.sh

# issue 12: the vision tower's encode time per tile (a 4-tile image), wall and process CPU,
# on tiny-mllama and on the 11B-Vision tower's shape (BF16 hash-noise weights built in
# memory, 2 local + 1 global layers measured, the full 32 + 8 extrapolated from their per-layer
# times), beside this run's OpenBLAS SGEMM rate (GFLOP/s) as the yardstick
make -s BUILD="$B" "$B/tests/bench_vision" "$B/tests/bench_sgemm" >/dev/null
echo "== vision tower: bench_vision (median of ${BENCH_VRUNS:-3}; GFLOP/s against bench_sgemm's)"
"$B/tests/bench_sgemm" 2
"$B/tests/bench_vision" tiny "$M/tiny-mllama" 2 ${BENCH_VRUNS:-3}
"$B/tests/bench_vision" 11b 2 1 2 1
