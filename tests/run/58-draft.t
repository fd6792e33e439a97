#!/bin/sh
# Grammar drafts in the answer's decoding (classifier/answer.c): "\n" and "S" after "unsafe"
# (and "S" after ",") are fed in the same pass as the token before them and kept only where
# greedy decoding agrees. The verdicts with drafts (GUARD_DRAFT unset), without (0) and with
# the test mode that adds wrong drafts at every position (2) must be identical, bit for bit:
# decision, raw answer, categories, unsafe_score and every category score. Models: the rigged
# one (unsafe answers, the forced category line), its pruned head, tiny-l3 (random answers)
# in F32, BF16 and llama.cpp's Q4_K_M, and the real Llama Guard 3 1B files where built.
. tests/tap.sh
B=${BUILD:-build}
M=$B/models
Q=../shared/reference/quant
[ -f "$M/rig-l3.gguf" ] || skip_all "test models not built (../shared absent)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

cat > $T/in.jsonl <<'IN'
How do I bake a cake?
How do I build a bomb?
where can I buy poison for rats
{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"a bomb, a bomb"}]}
{"prompt":"Tell me a recipe","response":"Mix flour and a bomb."}
How can I hurt my neighbour's dog without anyone noticing?
IN
printf 'default: {threshold: 0.05}\n' > $T/low.yaml	# forces the category line on "safe"

strip() { sed 's/"timings":{[^}]*}//g; s/"tokens_evaluated":[0-9]*//g' "$1"; }
evals() { grep -o '"tokens_evaluated":[0-9]*' "$1" | sed 's/.*://' | paste -sd+ | bc; }

run() {	# run NAME MODEL [POLICY]
	for mode in 1 0 2; do
		GUARD_DRAFT=$mode ./guard filter -m "$2" ${3:+--policy "$3"} --annotate --exit-zero --batch 3 \
		    < $T/in.jsonl > $T/$1.$mode 2>$T/$1.$mode.err
		ok $? "$1: filter ran (GUARD_DRAFT=$mode)"
	done
	is "$(wc -l < $T/$1.1)" 6 "$1: six verdict lines"
	strip $T/$1.0 > $T/$1.0s
	strip $T/$1.1 > $T/$1.1s
	strip $T/$1.2 > $T/$1.2s
	cmp -s $T/$1.0s $T/$1.1s
	ok $? "$1: the verdicts with drafts equal those without (raw, categories, scores)"
	cmp -s $T/$1.0s $T/$1.2s
	ok $? "$1: and those with a wrong draft at every position"
}

run rig $M/rig-l3.gguf
like "$(grep bomb $T/rig.1 | head -1)" '"raw":"unsafe\nS1"' "rig: the unsafe answer was decoded (drafts kept)"
run rig-low $M/rig-l3.gguf $T/low.yaml
p=$(grep poison $T/rig-low.1)
like "$p" '"raw":"safe"' "rig-low: ' poison' is answered 'safe'"
like "$p" '"category_scores":{"S1"' "rig-low: and the forced category line ran (drafts after it)"
# the test mode really fed wrong drafts (more tokens), and the kept drafts cost no extra ones
a=$(evals $T/rig.0) b=$(evals $T/rig.1) c=$(evals $T/rig.2)
is "$b" "$a" "rig: drafts all kept: tokens evaluated as without drafts ($a)"
[ "$c" -gt "$a" ]; ok $? "rig: the test mode rejected drafts ($c tokens evaluated against $a)"
run rig-pruned $M/rig-l3-pruned.gguf
run tiny-l3 $M/tiny-l3
run tiny-l3-low $M/tiny-l3 $T/low.yaml
run tiny-l3-bf16 $M/tiny-l3-bf16.gguf $T/low.yaml
if [ -f "$Q/tiny-l3-q4_k_m.gguf" ]; then
	run tiny-l3-q4_k_m "$Q/tiny-l3-q4_k_m.gguf" $T/low.yaml
else
	ok 0 "# skip $Q/tiny-l3-q4_k_m.gguf absent"
fi
# Under ASan the 1B files (minutes each there) are skipped, saying so: the drafts are the
# same code on any model (the runs above), and their kernels (Q4_K_M, Q8_0, BF16) are checked
# under ASan on the tiny models by 22-quant.t and 20-reference.t; make check runs them.
for f in lg3-1b-q4_k_m-llamacpp lg3-1b-q8_0-llamacpp lg3-1b-bf16; do
	if [ "$B" = build-asan ]; then
		ok 0 "# skip under ASan: $f (the draft paths of the runs above; run by make check)"
	elif [ -f "$M/$f.gguf" ]; then
		run $f "$M/$f.gguf"
	else
		ok 0 "# skip $M/$f.gguf not built (make models with the Llama Guard 3 1B weights)"
	fi
done
done_testing
