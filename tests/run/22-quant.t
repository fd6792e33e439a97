#!/bin/sh
# Quantized GGUF weights (issue 9, core/quant.h), by default and with the portable kernels:
# - t_quant kernels: int8 activation rows (known values) and matmul on random blocks of all 9
#   types against float64, batch- and thread-independent bits;
# - t_quant deq: every quantized matrix's rows against tests/qdeq.py (independent Python) bit
#   for bit; for mkmodel's files, every element against the F32 values written beside them;
# - t_quant ref: llama-quantize's files in ../shared/reference/quant against their float64
#   reference logits, within llama.cpp's own deviation on each file (printed beside ours),
#   and greedy tokens;
# - t_quant pair: Q4_1, Q5_0, Q5_1, Q8_K (types llama-quantize's shipped files lack) against the
#   same weights in float32, within 2.25e-2 (llama.cpp's largest deviation on tiny-l2);
# - t_kv: prefill, token by token, copied prefixes, batches, snapshots bit-identical per type.
B=${BUILD:-build}
M=$B/models
Q=${GUARDD_SHARED:-../shared}/reference/quant
{
	echo "$B/tests/t_quant kernels"
	echo "GUARDD_GENERIC=1 $B/tests/t_quant kernels"
	for f in tiny-l2-q8_0 tiny-l2-q6_k tiny-l2-q5_k_m tiny-l2-q4_k_m tiny-l2-q4_0 tiny-l3-q4_k_m; do
		echo "$B/tests/t_quant deq $Q/$f.gguf"
		echo "$B/tests/t_quant ref $f"
		echo "GUARDD_GENERIC=1 $B/tests/t_quant ref $f"
		echo "$B/tests/t_kv $Q/$f.gguf"
	done
	echo "GUARDD_GENERIC=1 $B/tests/t_kv $Q/tiny-l2-q4_k_m.gguf"
	for t in q4_1 q5_0 q5_1 q8_k; do
		echo "$B/tests/t_quant deq $M/tiny-l2-$t.gguf $M/tiny-l2-$t-deq.gguf"
		echo "$B/tests/t_quant pair $M/tiny-l2-$t.gguf $M/tiny-l2-$t-deq.gguf 2.25e-2"
		echo "$B/tests/t_kv $M/tiny-l2-$t.gguf"
	done
} | sh tests/tapcat.sh
