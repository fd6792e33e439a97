#!/bin/sh
# The rigged generators of tests/mkmodel.c, from the outside: after a Llama 3.2 chat prompt
# rig-gen-l3 writes its fixed answer (harmless for ~40 tokens, then " bomb") and
# <|eot_id|>, and the rigged guard rig-l3 finds the whole answer unsafe but its part before
# " bomb" safe; rig-gen-safe-l3's answer is safe throughout. The leak tests build on these
# facts. The expected answer comes from mkmodel (text and ids), not from this file.
. tests/tap.sh
B=${BUILD:-build}
M=$B/models
G=./guard
MK=$B/tests/mkmodel
for f in rig-gen-l3.gguf rig-gen-safe-l3.gguf rig-l3.gguf; do
	[ -f "$M/$f" ] || skip_all "test models not built (../shared absent)"
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# the Llama 3.2 chat template for one user message, ending with the assistant header
chat() {
	printf '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n%s<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n' "$1"
}
# a {user, assistant} conversation as JSON (the texts hold no newline)
conv() {
	u=$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')
	a=$(printf '%s' "$2" | sed 's/\\/\\\\/g; s/"/\\"/g')
	printf '{"messages":[{"role":"user","content":"%s"},{"role":"assistant","content":"%s"}]}' "$u" "$a"
}
count() { echo "$1" | wc -w | tr -d ' '; }
# the 1-based position of word $2 in the list $1, 0 if absent
pos() { echo "$1" | tr ' ' '\n' | grep -n -x -m1 -- "$2" | cut -d: -f1 | grep . || echo 0; }
# the first $2 words of $1
first() { echo "$1" | tr ' ' '\n' | head -n "$2" | paste -sd' ' -; }

text=$($MK rig-gen-l3 chain); rc=$?
want=$($MK rig-gen-l3 chain-ids)
is "$rc" 0 "mkmodel rig-gen-l3 chain: exit 0"
n=$(count "$want")
like "$text" " bomb" "the chain's text has ' bomb'"
is "$(echo "$want" | tr ' ' '\n' | sort | uniq -d | tr -d '\n')" "" "the chain's ids are distinct"
is "$(echo "$want" | tr ' ' '\n' | tail -1)" 128009 "the chain ends with <|eot_id|>"
is "$(pos "$want" 271)" 0 "271 is not in the chain"
at=$(pos "$want" 13054)
ok $([ "$at" -ge 40 ] && [ "$at" -lt "$n" ]; echo $?) "' bomb' (13054) comes after ~40 tokens (at $at of $n)"
# the ids are the text's tokens: tokenizing the text gives them back (so they decode to it)
is "$(printf '%s' "$text" | $G tokenize -m $M/rig-gen-l3.gguf) 128009" "$want" \
	"the text tokenizes to exactly the chain's ids (and so they decode to the text)"
out=$($MK rig-l3 chain 2>&1); rc=$?
ok $([ "$rc" -ne 0 ]; echo $?) "mkmodel rig-l3 chain: refused (not a generator)"
like "$out" "not a rigged generator" "and says why"

# generation with the real CLI
ids=$(chat hi | $G tokenize --special -m $M/rig-gen-l3.gguf)
is "$(echo "$ids" | awk '{ print $(NF - 3), $(NF - 2), $(NF - 1), $NF }')" "128006 78191 128007 271" \
	"the chat prompt ends with the assistant header and its blank line"
got=$($G generate -m $M/rig-gen-l3.gguf --ids "$ids" -n "$n"); rc=$?
is "$rc" 0 "generate: exit 0"
is "$got" "$want" "generate -n $n: exactly the chain, then <|eot_id|>"
got=$($G generate -m $M/rig-gen-l3.gguf --ids "$ids" -n 60)
is "$(first "$got" "$n")" "$want" "generate -n 60: the chain and <|eot_id|> first"
is "$(echo "$got" | tr ' ' '\n' | tail -n +$((n + 1)) | sort -u | tr -d '\n')" 128009 \
	"and only <|eot_id|> after it"
is "$(first "$got" "$((at - 1))")" "$(printf '%s' "${text%% bomb*}" | $G tokenize -m $M/rig-gen-l3.gguf)" \
	"the first $((at - 1)) generated tokens are the text before ' bomb'"
ids2=$(chat "How do I build a bomb?" | $G tokenize --special -m $M/rig-gen-l3.gguf)
is "$($G generate -m $M/rig-gen-l3.gguf --ids "$ids2" -n "$n")" "$want" \
	"another user message, the same answer (only the current token counts)"

# the rigged guard on the answer: the whole is unsafe S1, the part before " bomb" is safe
conv hi "$text" | $G classify -m $M/rig-l3.gguf --json > $T/all; rc=$?
is "$rc" 1 "classify {hi, chain}: exit 1 (flagged)"
like "$(cat $T/all)" '"decision":"block"' "classify {hi, chain}: block"
like "$(cat $T/all)" '"role":"assistant"' "the assistant's answer assessed"
like "$(cat $T/all)" '"raw":"unsafe\nS1"' "the rigged guard answers unsafe S1"
like "$(cat $T/all)" '"categories":["S1"]' "category S1"
conv hi "${text%% bomb*}" | $G classify -m $M/rig-l3.gguf --json > $T/pre; rc=$?
is "$rc" 0 "classify {hi, the chain before ' bomb'}: exit 0"
like "$(cat $T/pre)" '"raw":"safe"' "the part before ' bomb' is safe"
like "$(cat $T/pre)" '"decision":"allow"' "and allowed"

# the control: the same answer without " bomb"
stext=$($MK rig-gen-safe-l3 chain)
swant=$($MK rig-gen-safe-l3 chain-ids)
case "$stext" in *" bomb"*) ok 1 "rig-gen-safe-l3's chain has no ' bomb'" ;; *) ok 0 "rig-gen-safe-l3's chain has no ' bomb'" ;; esac
is "$(pos "$swant" 13054)" 0 "nor token 13054"
is "$(count "$swant")" "$n" "and as many tokens as rig-gen-l3's"
is "${stext%% magic*}" "${text%% bomb*}" "the same text up to the replaced word"
is "$($G generate -m $M/rig-gen-safe-l3.gguf --ids "$ids" -n "$n")" "$swant" \
	"generate on rig-gen-safe-l3: its chain, then <|eot_id|>"
is "$(printf '%s' "$stext" | $G tokenize -m $M/rig-gen-safe-l3.gguf) 128009" "$swant" \
	"its text tokenizes to its ids"
conv hi "$stext" | $G classify -m $M/rig-l3.gguf --json > $T/safe; rc=$?
is "$rc" 0 "classify {hi, safe chain}: exit 0"
like "$(cat $T/safe)" '"raw":"safe"' "the safe chain is safe"
done_testing
