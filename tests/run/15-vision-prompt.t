#!/bin/sh
# Llama 3.2 Vision prompts: the Instruct chat format (t_chatv: bytes equal to the Hub template's
# renders, ids equal to tiny-mllama's reference) and the Llama Guard 3 11B-Vision prompt
# (t_guardv: "<|image|> " after the first header), with the text-only paths refusing images.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_chatv
$B/tests/t_guardv
LIST
