#!/bin/sh
# Incremental checks of a streamed response: every check bit-identical to classifier_run on
# the conversation plus the response so far (rigged model: real verdicts, forced category
# lines; hash-noise models: malformed answers), and only new tokens + the closing part
# evaluated per check. The rigged model again with the generic kernels.
# Under the sanitizers (build-asan) the noise models and the generic-kernel rerun are
# skipped, saying so: they repeat the same code paths as the run kept, at 3x the time.
B=${BUILD:-build}
M=$B/models
if [ "$B" = build-asan ]; then
	sh tests/tapcat.sh <<LIST
$B/tests/t_gstream $M/rig-l3.gguf
echo "1..0 # skip under ASan: tiny-l3-bf16 (the same stream paths as rig-l3; run by make check)"
echo "1..0 # skip under ASan: tiny-l3-f32 (same paths as tiny-l3-bf16; run by make check)"
echo "1..0 # skip under ASan: GUARD_KERNELS=generic rig-l3 (run by make check)"
LIST
else
	sh tests/tapcat.sh <<LIST
$B/tests/t_gstream $M/rig-l3.gguf
$B/tests/t_gstream $M/tiny-l3-f32.gguf
$B/tests/t_gstream $M/tiny-l3-bf16.gguf
GUARD_KERNELS=generic $B/tests/t_gstream $M/rig-l3.gguf
LIST
fi
