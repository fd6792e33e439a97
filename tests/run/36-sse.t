#!/bin/sh
# The proxy's SSE parser (proto/sse.c): unit tests, then its fuzz target (the committed
# corpus and deterministic mutations; whole and chunked parses must agree).
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_sse
$B/tests/fuzz_sse -n 100000 tests/fuzz/corpus/sse
LIST
