#!/bin/sh
# Every parser's fuzz target: its committed corpus (minimised from the libFuzzer campaign in
# tests/fuzz/CAMPAIGN.md) replayed, then deterministic mutations of it. A crash, a sanitizer
# report (make check-asan) or a target's own consistency check failing ends the run non-zero.
B=${BUILD:-build}
N=${FUZZ_N:-20000}
sh tests/tapcat.sh <<LIST
$B/tests/fuzz_gguf -n $N tests/fuzz/corpus/gguf
$B/tests/fuzz_safetensors -n $N tests/fuzz/corpus/safetensors
$B/tests/fuzz_policy -n $N tests/fuzz/corpus/policy
$B/tests/fuzz_request -n 100000 tests/fuzz/corpus/request
$B/tests/fuzz_frame -n 100000 tests/fuzz/corpus/frame
$B/tests/fuzz_conv -n $N tests/fuzz/corpus/conv
$B/tests/fuzz_tok -n 3000 tests/fuzz/corpus/tok
$B/tests/fuzz_spmodel -n $N tests/fuzz/corpus/spmodel
$B/tests/fuzz_config -n $N tests/fuzz/corpus/config
$B/tests/fuzz_evalset -n $N tests/fuzz/corpus/evalset
LIST
