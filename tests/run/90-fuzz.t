#!/bin/sh
# Every parser's fuzz target: its committed corpus replayed, then deterministic mutations.
B=${BUILD:-build}
N=${FUZZ_N:-20000}
sh tests/tapcat.sh <<LIST
$B/tests/fuzz_gguf -n $N tests/fuzz/corpus/gguf
$B/tests/fuzz_safetensors -n $N tests/fuzz/corpus/safetensors
$B/tests/fuzz_policy -n $N tests/fuzz/corpus/policy
$B/tests/fuzz_proto -n 100000 tests/fuzz/corpus/proto
$B/tests/fuzz_conv -n $N tests/fuzz/corpus/conv
$B/tests/fuzz_tok -n 3000 tests/fuzz/corpus/tok
$B/tests/fuzz_config -n $N tests/fuzz/corpus/config
LIST
