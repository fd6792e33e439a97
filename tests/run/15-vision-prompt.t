#!/bin/sh
# Llama 3.2 Vision prompts: the Instruct chat format (t_chatv: bytes equal to the Hub template's
# renders, ids equal to tiny-mllama's reference) and the Llama Guard 3 11B-Vision prompt
# (t_guardv: "<|image|> " after the first header), with the text-only paths refusing images;
# fuzz_visionchat: both parsers and renders on mutated conversations with image parts.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_chatv
$B/tests/t_guardv
$B/tests/fuzz_visionchat -n ${FUZZ_N:-20000} tests/fuzz/corpus/visionchat
LIST
