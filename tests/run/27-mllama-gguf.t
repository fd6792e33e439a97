#!/bin/sh
# Llama 3.2-Vision as one GGUF (issue 12): guard quantize's F16, Q8_0 and Q4_K_M files of
# tiny-mllama load back and match the F16 directory bit for bit / the reference within a
# measured bound (tests/t_mllama_gguf.sh, tests/t_mllama_gguf.c); tests/mkmodel's tiny-mllama
# equals mkref.py's byte for byte.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
sh tests/t_mllama_gguf.sh $B
LIST
