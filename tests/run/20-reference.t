#!/bin/sh
# Logits parity with transformers float64 for every stored format and kernel family.
# Tolerances: F32 2e-3 (the reference README); F16 weights round to 11 significant bits
# (relative 2^-12) and land near 1e-3, so 3e-3; BF16 weights keep 8 bits (2^-9, 8x coarser)
# and the BF16 kernels also round activations to bfloat16: about 1e-2 here, so 3e-2.
# GUARD_KERNELS caps the kernel family: every family this CPU runs is checked for parity,
# for batch-independent bits (t_kern: matmul; t_kv: prefill, token by token, prefixes,
# batches); a family the CPU cannot run is reported as a skip. BF16 runs on AMX tiles where
# they run (default) and on vdpbf16ps with GUARD_AMX=0: both are checked.
B=${BUILD:-build}
M=$B/models
sh tests/tapcat.sh <<LIST
$B/tests/t_ref tiny-l3 $M/tiny-l3 2e-3
$B/tests/t_ref tiny-l3 $M/tiny-l3-f32.gguf 2e-3
$B/tests/t_ref tiny-l3 $M/tiny-l3-f16.gguf 3e-3
$B/tests/t_ref tiny-l3 $M/tiny-l3-bf16.gguf 3e-2
full: GUARD_AMX=0 $B/tests/t_ref tiny-l3 $M/tiny-l3-bf16.gguf 3e-2
$B/tests/t_ref tiny-l3 $M/tiny-l3-bf16 3e-2
full: $B/tests/t_ref tiny-l3 $M/tiny-l3-sharded 2e-3
$B/tests/t_ref tiny-l2 $M/tiny-l2 2e-3
$B/tests/t_ref tiny-l2 $M/tiny-l2-f32.gguf 2e-3
$B/tests/t_ref tiny-l2 $M/tiny-l2-f16.gguf 3e-3
$B/tests/t_ref tiny-l2 $M/tiny-l2-bf16.gguf 3e-2
GUARDD_GENERIC=1 $B/tests/t_ref tiny-l3 $M/tiny-l3-f32.gguf 2e-3
full: GUARDD_GENERIC=1 $B/tests/t_ref tiny-l3 $M/tiny-l3-bf16.gguf 3e-2
GUARDD_GENERIC=1 $B/tests/t_ref tiny-l2 $M/tiny-l2-f16.gguf 3e-3
GUARD_KERNELS=avx2 $B/tests/t_ref tiny-l3 $M/tiny-l3-f32.gguf 2e-3
full: GUARD_KERNELS=avx2 $B/tests/t_ref tiny-l3 $M/tiny-l3-bf16.gguf 3e-2
GUARD_KERNELS=avx2 $B/tests/t_ref tiny-l2 $M/tiny-l2-f16.gguf 3e-3
full: GUARD_KERNELS=avx512f $B/tests/t_ref tiny-l3 $M/tiny-l3-bf16.gguf 3e-2
$B/tests/t_kern
GUARD_AMX=0 GUARD_KERNELS=avx512bf16 $B/tests/t_kern
GUARD_KERNELS=avx512f $B/tests/t_kern
GUARD_KERNELS=avx2 $B/tests/t_kern
GUARD_KERNELS=generic $B/tests/t_kern
GUARD_KERNELS=avx512f $B/tests/t_kv $M/tiny-l3-bf16.gguf
GUARD_KERNELS=avx2 $B/tests/t_kv $M/tiny-l3-bf16.gguf
GUARD_KERNELS=avx2 $B/tests/t_kv $M/tiny-l3
GUARD_KERNELS=avx2 $B/tests/t_kv $M/tiny-l2-f16.gguf
GUARD_KERNELS=generic $B/tests/t_kv $M/tiny-l3-f32.gguf
LIST
