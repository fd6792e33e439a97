#!/bin/sh
# Llama 3.2-Vision as one GGUF (issue 12): guard quantize's F16, Q8_0 and Q4_K_M files of
# tiny-mllama load back and match the F16 directory bit for bit / the reference within a
# measured bound (tests/t_mllama_gguf.sh, tests/t_mllama_gguf.c); tests/mkmodel's tiny-mllama
# equals mkref.py's byte for byte.
B=${BUILD:-build}
if [ "$B" = build-asan ]; then	# one case (two images) of six: every path, a sixth of the time
	sh tests/tapcat.sh <<LIST
MLLAMA_CASE=3 sh tests/t_mllama_gguf.sh $B
echo "1..0 # skip under ASan: cases 0-2, 4 and 5 (the paths of case 3; run by make check)"
LIST
else
	sh tests/tapcat.sh <<LIST
sh tests/t_mllama_gguf.sh $B
LIST
fi
