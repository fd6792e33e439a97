#!/bin/sh
# Image parts in requests: base64, msgpack binary parts, OpenAI image_url data URLs, limits;
# then the image-part fuzz target over its corpus and deterministic mutations of it.
B=${BUILD:-build}
N=${FUZZ_N:-20000}
sh tests/tapcat.sh <<LIST
$B/tests/t_imgpart
$B/tests/fuzz_imgpart -n $N tests/fuzz/corpus/imgpart
LIST
