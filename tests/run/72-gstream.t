#!/bin/sh
# Incremental checks of a streamed response: every check bit-identical to classifier_run on
# the conversation plus the response so far (rigged model: real verdicts, forced category
# lines; hash-noise models: malformed answers), and only new tokens + the closing part
# evaluated per check. The rigged model again with the generic kernels.
B=${BUILD:-build}
M=$B/models
sh tests/tapcat.sh <<LIST
$B/tests/t_gstream $M/rig-l3.gguf
$B/tests/t_gstream $M/tiny-l3-f32.gguf
$B/tests/t_gstream $M/tiny-l3-bf16.gguf
GUARD_KERNELS=generic $B/tests/t_gstream $M/rig-l3.gguf
LIST
