#!/bin/sh
# An mllama GGUF's image preprocessing: the preprocessor config stored in the file.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
sh tests/mllama_prep.sh $B
LIST
