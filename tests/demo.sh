#!/bin/sh
# make demo: the main job on a model anyone can rebuild (the Llama 3.2-shaped hash-noise
# reference model with the real Llama 3 tokenizer): tokenize, score, continue.
set -eu
B=${1:-build}
M=$B/models/tiny-l3
if [ ! -d "$M" ]; then
	echo "demo: no test model ($B/models/tiny-l3): ../shared/reference is needed to build it" >&2
	exit 1
fi
echo "== guard tokenize: 'Is this message safe?'"
ids=$(printf 'Is this message safe?' | ./guard tokenize -m "$M")
echo "$ids"
echo "== guard logits --top 5 (BOS + those ids)"
./guard logits -m "$M" --ids "128000 $ids" --top 5
echo "== guard generate -n 8"
./guard generate -m "$M" --ids "128000 $ids" -n 8
