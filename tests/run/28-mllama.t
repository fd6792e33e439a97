#!/bin/sh
# Llama 3.2-Vision ("mllama", issue 12) against ../shared/reference/tiny-mllama: loading Meta's
# Hub layout, every vision stage, the projector, hidden states per text layer, logits,
# argmax and greedy tokens for the 6 cases (tests/t_mllama.c); guard logits/generate --image.
B=${BUILD:-build}
M=$B/models
if [ "$B" = build-asan ]; then	# three of the six cases: every stage and both image counts
	sh tests/tapcat.sh <<LIST
MLLAMA_CASE=2,3,4 $B/tests/t_mllama $M/tiny-mllama $M/tiny-l3
echo "1..0 # skip under ASan: cases 0, 1 and 5 (the paths of 2, 3 and 4; run by make check)"
sh tests/t_mllama_cli.sh $B
LIST
else
	sh tests/tapcat.sh <<LIST
$B/tests/t_mllama $M/tiny-mllama $M/tiny-l3
sh tests/t_mllama_cli.sh $B
LIST
fi
