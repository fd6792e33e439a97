#!/bin/sh
# The sampler chain and the text release on hand-made inputs; the generator on the test
# models: the same ids as `guard generate` (GGUF and Hugging Face directory, Llama 3 and 2),
# batched answers equal to each alone, stop strings, limits, end tokens, cancellation.
B=${BUILD:-build}
M=$B/models
if [ ! -d "$M/tiny-l3" ]; then
	sh tests/tapcat.sh <<LIST
$B/tests/t_gen unit
echo "1..0 # SKIP test models not built (../shared absent)"
LIST
	exit $?
fi
sh tests/tapcat.sh <<LIST
$B/tests/t_gen unit
$B/tests/t_gen model $B/guard $M/tiny-l3-f32.gguf
$B/tests/t_gen model $B/guard $M/tiny-l3 parity
$B/tests/t_gen model $B/guard $M/tiny-l2-f32.gguf
$B/tests/t_gen model $B/guard $M/tiny-l2 parity
LIST
