#!/bin/sh
# Policy files, answer parsing and decisions, and the classifier on the rigged and random models
# (and on vocabularies without Llama Guard's answer tokens, made by tests/dropvocab.py).
B=${BUILD:-build}
M=$B/models
NOVOCAB=
if [ -f "$M/tiny-l3/tokenizer.json" ] && command -v python3 >/dev/null; then
	[ -f "$M/no-unsafe-l3/tokenizer.json" ] || python3 tests/dropvocab.py "$M/tiny-l3" "$M/no-unsafe-l3" unsafe
	[ -f "$M/no-nn-l3/tokenizer.json" ] || python3 tests/dropvocab.py "$M/tiny-l3" "$M/no-nn-l3" '\n\n'
	NOVOCAB="$M/no-unsafe-l3 $M/no-nn-l3"
fi
sh tests/tapcat.sh <<LIST
$B/tests/t_policy
$B/tests/t_verdict
$B/tests/t_guard $M/rig-l3.gguf $M/tiny-l3-bf16.gguf $NOVOCAB
LIST
