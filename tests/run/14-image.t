#!/bin/sh
# Images: PNG/JPEG decoding of every colour type and of hostile files (t_image), the decoders'
# fuzz target on its corpus and mutations of it, and MllamaImageProcessor parity with
# transformers' PIL backend (bit for bit) and torchvision backend (one uint8 level) on
# ../shared/reference/tiny-mllama (t_imgprep).
B=${BUILD:-build}
N=${FUZZ_N:-20000}
sh tests/tapcat.sh <<LIST
$B/tests/t_image
$B/tests/fuzz_image -n $N tests/fuzz/corpus/image
$B/tests/t_imgprep
LIST
