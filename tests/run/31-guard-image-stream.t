#!/bin/sh
# Llama Guard 3 11B-Vision (tiny-mllama) on a response stream over a conversation with an
# image: checks bit-identical to classifier_run, the image prefix evaluated once; a text-only
# guard refuses such a stream (t_guardv2).
B=${BUILD:-build}
M=$B/models
sh tests/tapcat.sh <<LIST
$B/tests/t_guardv2 $M/tiny-mllama $M/rig-l3.gguf ../shared/reference/tiny-mllama/images/dev-a.png \
    ../shared/reference/tiny-mllama/images/dev-c.png
LIST
