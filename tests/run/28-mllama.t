#!/bin/sh
# Llama 3.2-Vision ("mllama", issue 12) against ../shared/reference/tiny-mllama: loading Meta's
# Hub layout, every vision stage, the projector, hidden states per text layer, logits,
# argmax and greedy tokens for the 6 cases (tests/t_mllama.c); guard logits/generate --image.
B=${BUILD:-build}
M=$B/models
sh tests/tapcat.sh <<LIST
$B/tests/t_mllama $M/tiny-mllama $M/tiny-l3
sh tests/t_mllama_cli.sh $B
LIST
