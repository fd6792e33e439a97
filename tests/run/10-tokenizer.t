#!/bin/sh
# Tokenizer parity: Llama 3 (tokenizer.json and GGUF) and Llama 2 SentencePiece.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
GUARDD_L3_GGUF=$B/models/tiny-l3-f32.gguf $B/tests/t_tok
LIST
