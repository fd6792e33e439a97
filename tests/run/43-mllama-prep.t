#!/bin/sh
# An mllama GGUF's image preprocessing: the preprocessor config stored in the file, and its
# parser's fuzz target (corpus replayed, then mutations).
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/fuzz_imgprep -n ${FUZZ_N:-20000} tests/fuzz/corpus/imgprep
sh tests/mllama_prep.sh $B
LIST
