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
