#!/bin/sh
# guard quantize against llama-quantize (upstream 34af94cd): for each type it ships in
# ../shared/reference/quant, the same tensors, types, order and metadata, per-tensor RMSE
# against the F32 source no worse, quantized tensors byte-identical (t_quantize cmp); the
# quantizers and the GGUF writer (t_quantize); the command's errors (t_quantize.sh).
# From tiny-l2's F32 GGUF and from both Hugging Face directories the whole file is
# llama-quantize's, byte for byte. tiny-l3's F32 GGUF (tests/mkmodel.c) holds a rope_freqs.weight
# 1 ulp off the one llama-quantize was given at index 16: that copied tensor alone differs.
# From a BF16 GGUF: the same plan (tensors, types, metadata) as llama-quantize's from F32.
B=${BUILD:-build}
M=$B/models
R=../shared/reference/quant
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
G=./guard
q() {	# q SRC TYPE REF-NAME F32-SRC [whole]: quantize, compare with llama-quantize's file
	if [ -f "$R/$3.gguf" ] && [ -e "$1" ]; then
		echo "$G quantize -q $1 $T/$3-$2.gguf $2 >/dev/null && $B/tests/t_quantize load $T/$3-$2.gguf && $B/tests/t_quantize cmp $T/$3-$2.gguf $R/$3.gguf $4 $5"
	else
		echo "echo '1..0 # SKIP $R/$3.gguf or $1 absent'"
	fi
}
sh tests/tapcat.sh <<LIST
$B/tests/t_quantize
$(q $M/tiny-l2-f32.gguf Q8_0 tiny-l2-q8_0 $M/tiny-l2-f32.gguf whole)
$(q $M/tiny-l2-f32.gguf Q6_K tiny-l2-q6_k $M/tiny-l2-f32.gguf whole)
$(q $M/tiny-l2-f32.gguf Q5_K_M tiny-l2-q5_k_m $M/tiny-l2-f32.gguf whole)
$(q $M/tiny-l2-f32.gguf Q4_K_M tiny-l2-q4_k_m $M/tiny-l2-f32.gguf whole)
$(q $M/tiny-l2-f32.gguf Q4_0 tiny-l2-q4_0 $M/tiny-l2-f32.gguf whole)
$(q $M/tiny-l3-f32.gguf Q4_K_M tiny-l3-q4_k_m $M/tiny-l3-f32.gguf)
$(q $M/tiny-l3 Q4_K_M tiny-l3-q4_k_m $M/tiny-l3-f32.gguf whole)
$(q $M/tiny-l2 Q8_0 tiny-l2-q8_0 $M/tiny-l2-f32.gguf whole)
$(q $M/tiny-l2-bf16.gguf Q4_K_M tiny-l2-q4_k_m plan)
sh tests/t_quantize.sh
LIST
