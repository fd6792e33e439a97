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
