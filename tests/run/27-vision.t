#!/bin/sh
# The vision tower's fast paths (issue 12, t_vision): the blocked attention bit for bit
# against attn_row, the vector GELU and LayerNorm against the double formulas, and the
# tiny-mllama tower's bits on 1 and 2 threads; then the portable kernels
# (GUARD_KERNELS=generic) against the same references.
B=${BUILD:-build}
M=$B/models/tiny-mllama
[ -f "$M/config.json" ] || M=
sh tests/tapcat.sh <<LIST
$B/tests/t_vision $M
GUARD_KERNELS=generic $B/tests/t_vision
LIST
