#!/bin/sh
# The conversation cache: re-checks of growing conversations in process (tests/t_convcache.c)
# and through guardd (tests/convcache_d.sh).
B=${BUILD:-build}
M=$B/models
sh tests/tapcat.sh <<LIST
$B/tests/t_convcache $M/rig-l3.gguf $M/tiny-l3-bf16.gguf
sh tests/convcache_d.sh
LIST
