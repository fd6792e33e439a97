#!/bin/sh
# Quantized-weight SIMD kernels (t_kq): every family this CPU runs, bit for bit against the
# canonical per-row sum, batch-independent bits, activation quantizer bytes, and the pick
# under each GUARD_KERNELS cap (a family the CPU or the cap excludes is reported as a skip);
# The prefill's groups of 16 tokens run on AMX tiles where the probe says they run (GUARD_AMX=1),
# on the VNNI tiles under GUARD_AMX=0.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_kq
GUARD_AMX=1 $B/tests/t_kq
GUARD_AMX=0 $B/tests/t_kq
GUARD_KERNELS=avx512f $B/tests/t_kq
GUARD_KERNELS=avx2 $B/tests/t_kq
GUARD_KERNELS=generic $B/tests/t_kq
LIST
