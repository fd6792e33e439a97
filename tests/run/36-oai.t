#!/bin/sh
# OpenAI's request and answer shapes (proto/oai.c): unit tests, then the fuzz target's
# committed corpus replayed with deterministic mutations.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_oai
$B/tests/fuzz_oai -n 20000 tests/fuzz/corpus/oai
LIST
