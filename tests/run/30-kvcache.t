#!/bin/sh
# KV cache: prefill, token by token, copied prefixes and batches give identical logits.
B=${BUILD:-build}
M=$B/models
sh tests/tapcat.sh <<LIST
$B/tests/t_kv $M/tiny-l3-bf16.gguf
GUARD_AMX=0 $B/tests/t_kv $M/tiny-l3-bf16.gguf
$B/tests/t_kv $M/tiny-l3
$B/tests/t_kv $M/tiny-l2-f16.gguf
GUARDD_GENERIC=1 $B/tests/t_kv $M/tiny-l2-f32.gguf
LIST
