#!/bin/sh
# Builds the hash-noise test models into $1/models (once): tiny-l3 and tiny-l2 as Hugging
# Face directories (F32; tiny-l2 with Llama 2's SentencePiece tokenizer.model, tiny-l3 with
# its tokenizer.json) and GGUF files (F32, F16, BF16). Needs ../shared; without it there
# is nothing to build and the tests that need models skip.
#   sh tests/mkmodels.sh [BUILD [FROM]]
set -eu
build=${1:-build}
shared=${GUARDD_SHARED:-../shared}
out=$build/models
if [ ! -f "$shared/reference/README.md" ]; then
	echo "mkmodels: $shared is absent, no test models built"
	exit 0
fi
# bump when a model's definition changes, so stale builds are remade
version=3
# mkmodels.sh BUILD FROM (FROM another build, e.g. make check-asan's build-asan from build):
# the models are data, identical whichever build's mkmodel wrote them, so BUILD/models becomes
# a link to FROM/models, which FROM's own `make models` has just brought up to date
from=${2:-$build}
if [ "$from" != "$build" ]; then
	if [ "$(cat "$from/models/VERSION" 2>/dev/null)" != "$version" ]; then
		echo "mkmodels: $from/models is absent or stale (run make BUILD=$from models first)" >&2
		exit 1
	fi
	rm -rf "$out"
	ln -s "$(cd "$from/models" && pwd)" "$out"
	echo "mkmodels: $out -> $from/models (models are the same from every build)"
	exit 0
fi
# a link left by a FROM run: this build makes its own models again
[ -L "$out" ] && rm -f "$out"
if [ "$(cat "$out/VERSION" 2>/dev/null)" != "$version" ]; then
	rm -rf "$out"
fi
mkdir -p "$out"
echo "$version" > "$out/VERSION"
for spec in tiny-l3 tiny-l2; do
	[ -f "$out/$spec/model.safetensors" ] || "$build/tests/mkmodel" "$spec" hf "$out/$spec"
	for t in f32 f16 bf16; do
		[ -f "$out/$spec-$t.gguf" ] || "$build/tests/mkmodel" "$spec" gguf "$out/$spec-$t.gguf" "$t"
	done
done
[ -f "$out/tiny-l2/tokenizer.model" ] ||
	cp "$shared/reference/tokenizers/llama2/tokenizer.model" "$out/tiny-l2/tokenizer.model"
[ -f "$out/tiny-l3-bf16/model.safetensors" ] || "$build/tests/mkmodel" tiny-l3 hf "$out/tiny-l3-bf16" bf16
[ -f "$out/rig-l3.gguf" ] || "$build/tests/mkmodel" rig-l3 gguf "$out/rig-l3.gguf" f32
# the rigged generators: a fixed answer, with and without " bomb" (tests/mkmodel.c)
for spec in rig-gen-l3 rig-gen-safe-l3; do
	[ -f "$out/$spec.gguf" ] || "$build/tests/mkmodel" "$spec" gguf "$out/$spec.gguf" f32
done
[ -f "$out/tiny-l3-sharded/model.safetensors.index.json" ] || /usr/bin/python3 tests/shard.py "$out/tiny-l3" "$out/tiny-l3-sharded"
# pruned output heads (README "Pruned output heads"): 20 rows of tiny-l3's and rig-l3's heads
[ -f "$out/tiny-l3-pruned-bf16.gguf" ] || "$build/tests/mkmodel" tiny-l3-pruned gguf "$out/tiny-l3-pruned-bf16.gguf" bf16
[ -f "$out/tiny-l3-pruned-bf16/model.safetensors" ] || "$build/tests/mkmodel" tiny-l3-pruned hf "$out/tiny-l3-pruned-bf16" bf16
[ -f "$out/rig-l3-pruned.gguf" ] || "$build/tests/mkmodel" rig-l3-pruned gguf "$out/rig-l3-pruned.gguf" f32
[ -f "$out/rig-l3-pruned/model.safetensors" ] || "$build/tests/mkmodel" rig-l3-pruned hf "$out/rig-l3-pruned" f32
# quantized tiny-l2 in the types ../shared/reference/quant lacks (mkmodel's plain
# nearest-rounding writers, tests/mkquant.h), each with a "-deq" twin: the same values in F32
for t in q4_1 q5_0 q5_1 q8_k; do
	[ -f "$out/tiny-l2-$t.gguf" ] || "$build/tests/mkmodel" tiny-l2 gguf "$out/tiny-l2-$t.gguf" "$t"
	[ -f "$out/tiny-l2-$t-deq.gguf" ] || "$build/tests/mkmodel" tiny-l2 gguf "$out/tiny-l2-$t-deq.gguf" "$t-deq"
done
# Llama 3.2-Vision (mllama) in the Hub's layout: the reference's own writer (numpy)
[ -f "$out/tiny-mllama/model.safetensors.index.json" ] ||
	/usr/bin/python3 "$shared/reference/mkref.py" model tiny-mllama "$out/tiny-mllama" >/dev/null
