#!/bin/sh
# SentencePiece tokenizer.model: hostile protobufs, Llama 2's file against sentencepiece's ids
# and the GGUF vocabulary, and a Hugging Face directory holding it (model_open, guard tokenize).
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_spmodel $B/models
LIST
