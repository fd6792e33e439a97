#!/bin/sh
# Pruned output heads (README "Pruned output heads"): a head with fewer rows than the
# vocabulary, mapped to token ids, gives the unpruned model's logits for those tokens and
# -inf for the rest, classifies, and stays bit-identical batched, prefix-cached and token by
# token, through the library and the guard command; bad maps are refused.
B=${BUILD:-build}
M=$B/models
sh tests/tapcat.sh <<LIST
$B/tests/t_pruned $M
$B/tests/t_kv $M/tiny-l3-pruned-bf16.gguf
$B/tests/t_kv $M/rig-l3-pruned
sh tests/t_pruned_cli.sh $B
LIST
