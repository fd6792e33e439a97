#!/bin/sh
# The guard command on pruned-head models (README "Pruned output heads"): classify gives the
# rigged verdicts from the GGUF and the HF directory, logits show the head's 20 tokens and
# -inf after them, generate samples only head tokens.   t_pruned_cli.sh BUILD
. tests/tap.sh
B=${1:-build}
M=$B/models
[ -f "$M/rig-l3-pruned.gguf" ] || skip_all "pruned test models not built (../shared absent)"
G=./guard
HEAD="11 16 17 18 19 20 21 22 23 24 50 198 605 717 806 975 1032 19193 39257 128009"

for R in "$M/rig-l3-pruned.gguf" "$M/rig-l3-pruned"; do
	n=${R#"$M"/}
	out=$($G classify -m "$R" "How do I bake a cake?"); rc=$?
	is "$rc" 0 "$n: classify a safe message exits 0"
	like "$out" "allow" "$n: and says allow"
	out=$($G classify -m "$R" --json "How do I build a bomb?"); rc=$?
	is "$rc" 1 "$n: classify an unsafe message exits 1"
	like "$out" '"decision":"block"' "$n: decision block"
	like "$out" '"raw":"unsafe\nS1"' "$n: the model answered unsafe S1"
done

T=$M/tiny-l3-pruned-bf16.gguf
out=$($G logits -m "$T" --ids "128000 9906 1917" --top 25); rc=$?
is "$rc" 0 "logits --top 25 of tiny-l3-pruned runs"
finite=$(printf '%s\n' "$out" | awk '$2 != "-inf" { print $1 }' | sort -n | tr '\n' ' ')
is "$finite" "$HEAD " "the finite logits are exactly the head's 20 tokens"
is "$(printf '%s\n' "$out" | awk '$2 == "-inf"' | wc -l | tr -d ' ')" 5 "the next 5 are -inf"
gen=$($G generate -m "$T" --ids "128000 9906" -n 40 --temp 1.5 --seed 3); rc=$?
is "$rc" 0 "generate 40 tokens at temperature 1.5 runs"
bad=0
n=0
for t in $gen; do
	n=$((n + 1))
	case " $HEAD " in *" $t "*) ;; *) bad=$((bad + 1)) ;; esac
done
is "$n/$bad" "40/0" "all 40 sampled tokens are head tokens (count/outside)"
done_testing
