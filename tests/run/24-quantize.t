#!/bin/sh
# The quantizers (core/quant_make.c: byte-exact replicas of ggml's reference quantizers) and
# the GGUF writer (core/gguf_write.c): t_quantize.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_quantize
LIST
