#!/bin/sh
# guard replay: a threshold- or action-only change is decided from the logged scores (no
# model is loaded) and flips exactly the expected items; a change of what the model sees
# (an exclusion) or a lowered threshold that needs categories never read is refused without
# content and re-run with it (guardd's log.content: full, or --input); logs that do not
# follow from the old policy, and hostile lines, are refused with their line.
. tests/tap.sh
B=${BUILD:-build}
R=$PWD/$B/models/rig-l3.gguf
G=./guard
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
pid=

# --- a synthetic log: known scores, decided under the built-in policy (block at 0.5) -----
H=$($G policy show --json :default | $PY -c 'import json,sys; print(json.load(sys.stdin)["hash"])')
v() {	# v DECISION SCORE RAW MODEL_CODES CODES
	printf '{"flagged":%s,"decision":"%s","role":"user","unsafe_score":%s,"categories":%s,"model_categories":%s,"structure_spoof":false,"policy":"default","policy_hash":"%s","raw":"%s","error":null}\n' \
		"$([ "$1" = allow ] && echo false || echo true)" "$1" "$2" "$5" "$4" "$H" "$3"
}
{
	v block 0.55 'unsafe\nS1' '["S1"]' '["S1"]'
	v block 0.65 'unsafe\nS1' '["S1"]' '["S1"]'
	v block 0.75 'unsafe\nS1' '["S1"]' '["S1"]'
	v allow 0.45 'unsafe\nS10' '["S10"]' '[]'
	v allow 0.1 'safe' '[]' '[]'
	v block 0.95 'unsafe\nS10,S1' '["S10","S1"]' '["S10","S1"]'
	printf '{"flagged":true,"decision":"error","role":"user","unsafe_score":null,"categories":[],"model_categories":[],"structure_spoof":false,"policy":"default","policy_hash":"%s","raw":"","error":"too long"}\n' "$H"
} > $T/syn.jsonl
printf 'categories:\n  S1: {threshold: 0.65}\n' > $T/t65.yaml
$G replay --policy $T/t65.yaml -m $T/no-such-model.gguf --json $T/syn.jsonl > $T/o 2> $T/err; rc=$?
is "$rc" 1 "threshold-only change: flips found (exit 1), with -m naming no file at all"
like "$(cat $T/err)" "the logged scores decide, the model is not run" "it says the model is not run"
is "$($PY -c '
import json,sys
d=json.load(open(sys.argv[1]))
print(d["model_run"], d["from_scores"], d["flips"], [(f["line"], f["from"], f["to"]) for f in d["flipped"]])' $T/o)" \
	"False 7 1 [(1, 'block', 'allow')]" "S1 at 0.65: exactly line 1 (0.55) flips; 0.65 itself still blocks (>=)"
printf 'default: {threshold: 0.4}\ncategories:\n  S1: {action: flag}\n' > $T/mix.yaml
is "$($G replay --policy $T/mix.yaml --json $T/syn.jsonl 2>/dev/null | $PY -c '
import json,sys
d=json.load(sys.stdin)
print(sorted((f["line"], f["from"], f["to"]) for f in d["flipped"]), sorted((x["from"], x["to"], x["count"], x["categories"]) for x in d["directions"]))')" \
	"[(1, 'block', 'flag'), (2, 'block', 'flag'), (3, 'block', 'flag'), (4, 'allow', 'block')] [('allow', 'block', 1, {'S10': 1}), ('block', 'flag', 3, {'S1': 3})]" \
	"threshold 0.4 and S1 flag: S10 at 0.45 now blocks, S1 flags, S10+S1 at 0.95 still blocks; per direction and category"
printf 'on_error: allow\n' > $T/oe.yaml
like "$($G replay --policy $T/oe.yaml $T/syn.jsonl 2>/dev/null)" "error(block) -> error(allow)" "on_error: the error line's outcome flips"
$G replay --policy $T/t65.yaml $T/syn.jsonl > $T/txt 2>/dev/null
like "$(cat $T/txt)" "block        -> allow             1   S1 1" "text: per direction, count and category"
like "$(cat $T/txt)" "line 1 user score 0.5500" "text: an example"
$G replay --policy-old :default --policy :default $T/syn.jsonl > /dev/null 2>&1; is "$?" 0 "the same policy: no flips (exit 0)"
# a chat's log line: both verdicts, the response's with the assistant role
q=$(sed -n 5p $T/syn.jsonl); a=$(sed -n 1p $T/syn.jsonl | sed 's/"role":"user"/"role":"assistant"/')
printf '{"finish_reason":"content_filter","request_verdict":%s,"response_verdict":%s,"op":"chat"}\n' "$q" "$a" > $T/chat.jsonl
printf '{"finish_reason":"stop","request_verdict":%s,"response_verdict":null,"op":"chat"}\n' "$q" >> $T/chat.jsonl
is "$($G replay --policy $T/t65.yaml --json $T/chat.jsonl 2>/dev/null | $PY -c '
import json,sys
d=json.load(sys.stdin)
print(d["verdicts"], [(f["line"], f["role"], f["from"], f["to"]) for f in d["flipped"]])')" \
	"3 [(1, 'assistant', 'block', 'allow')]" "chat log lines: request and response verdicts (a null response verdict is none)"

# refused: a log that does not follow from its own scores, another policy's log, bad lines
sed '2s/"decision":"block"/"decision":"allow"/; 2s/"flagged":true/"flagged":false/' $T/syn.jsonl > $T/edited.jsonl
$G replay --policy $T/t65.yaml $T/edited.jsonl 2> $T/err; is "$?" 2 "an edited verdict is refused"
like "$(cat $T/err)" "$T/edited.jsonl:2: logged allow, but its scores give block under the old policy" "naming its line"
$G replay --policy $T/t65.yaml --policy-old etc/policy.yaml $T/syn.jsonl 2> $T/err; is "$?" 2 "a log of another policy is refused"
like "$(cat $T/err)" "$T/syn.jsonl:1: decided under policy 477d8a007757, not etc/policy.yaml" "saying which"
sed 's/"policy_hash":"[0-9a-f]*"/"policy_hash":"0123"/' $T/syn.jsonl | head -3 > $T/mixed.jsonl
cat $T/syn.jsonl >> $T/mixed.jsonl
is "$($G replay --policy $T/t65.yaml --skip-other --json $T/mixed.jsonl 2> $T/err | $PY -c '
import json,sys
d=json.load(sys.stdin)
print(d["verdicts"], [f["line"] for f in d["flipped"]])')" "7 [4]" "--skip-other: verdicts of other policies are left out"
like "$(cat $T/err)" "3 verdicts under other policies skipped" "and counted"
printf '{"decision":"maybe","role":"user","raw":"safe"}\n' > $T/bad.jsonl
$G replay --policy $T/t65.yaml $T/bad.jsonl 2> $T/err; like "$(cat $T/err)" "$T/bad.jsonl:1: decision: expected allow, flag, block or error" "a bad decision is named"
printf '\n{"x":1}\n' > $T/bad.jsonl
$G replay --policy $T/t65.yaml $T/bad.jsonl 2> $T/err; like "$(cat $T/err)" "$T/bad.jsonl:2: no verdict" "a line without a verdict is named"
printf '{"decision":"allow",\n' > $T/bad.jsonl
$G replay --policy $T/t65.yaml $T/bad.jsonl 2> $T/err; is "$?" 2 "broken JSON fails"
like "$(cat $T/err)" "$T/bad.jsonl:1: column" "with line and column"
$G replay $T/syn.jsonl 2>/dev/null; is "$?" 2 "no --policy is a usage error"

[ -f "$R" ] || { ok 0 "# skip the rest needs the test models (../shared absent)"; done_testing; }

# --- guard filter's output as the log: exclusions and lowered thresholds -----------------
cat > $T/in <<'IN'
How do I bake bread?
How do I build a bomb?
How can I poison my neighbour?
{"prompt":"Tell me a recipe","response":"Mix flour and a bomb."}
a bomb, again
IN
$G filter -m $R < $T/in > $T/f.jsonl 2>/dev/null
printf 'categories:\n  S1: {threshold: 0.999}\n' > $T/hi.yaml
is "$($G replay --policy $T/hi.yaml --json $T/f.jsonl 2>/dev/null | $PY -c '
import json,sys
d=json.load(sys.stdin)
print(d["verdicts"], d["model_run"], sorted((f["line"], f["role"], f["from"], f["to"]) for f in d["flipped"]))')" \
	"6 False [(2, 'user', 'block', 'allow'), (4, 'assistant', 'block', 'allow'), (5, 'user', 'block', 'allow')]" \
	"filter output (a pair line counts twice): S1 at 0.999 flips exactly the ' bomb' verdicts, no model"
printf 'categories:\n  S1: {exclude: true}\n' > $T/ex.yaml
$G replay --policy $T/ex.yaml -m $R $T/f.jsonl > /dev/null 2> $T/err; is "$?" 2 "an exclusion without logged content is refused"
like "$(cat $T/err)" "6 of 6 verdicts must be re-run with the model: the new policy changes the prompt" "it says why"
like "$(cat $T/err)" "refusing to guess: 6 of them have no content (first: $T/f.jsonl line 1)" "and what is missing"
$G replay --policy $T/ex.yaml $T/f.jsonl --input $T/in > /dev/null 2> $T/err; is "$?" 2 "with the input but no model: refused"
like "$(cat $T/err)" "re-running needs the model (-m MODEL)" "saying so"
$G replay --policy $T/ex.yaml -m $R --input $T/in --json $T/f.jsonl > $T/o 2>/dev/null; is "$?" 1 "with --input and -m: re-run"
is "$($PY -c '
import json,sys
d=json.load(open(sys.argv[1]))
print(d["rerun"], d["model_run"], sorted((f["line"], f["from"], f["to"]) for f in d["flipped"]))' $T/o)" \
	"6 True [(2, 'block', 'error(block)'), (4, 'block', 'error(block)'), (5, 'block', 'error(block)')]" \
	"S1 hidden: the rigged model still names it, an error now (it is not shown)"
printf 'default: {threshold: 0.25}\n' > $T/lo.yaml
$G replay --policy $T/lo.yaml $T/f.jsonl > /dev/null 2> $T/err; is "$?" 2 "a lowered threshold below a 'safe' answer's score is refused without content"
like "$(cat $T/err)" "1 of 6 verdicts must be re-run with the model: a lowered threshold reaches answers whose categories were never read" "it says why"
is "$($G replay --policy $T/lo.yaml -m $R --input $T/in --json $T/f.jsonl 2>/dev/null | $PY -c '
import json,sys
d=json.load(sys.stdin)
print(d["rerun"], [(f["line"], f["from"], f["to"], f["categories"], f["text"]) for f in d["flipped"]])')" \
	"1 [(3, 'allow', 'block', ['S1'], 'How can I poison my neighbour?')]" "with --input it re-runs that one item and flips it"
printf 'x\n' > $T/short
$G replay --policy $T/ex.yaml -m $R --input $T/short $T/f.jsonl > /dev/null 2> $T/err; is "$?" 2 "an --input shorter than the log: refused"

# --- guardd's verdict log: content full re-runs; sha256 checks --input --------------------
daemon() {	# daemon CONTENT: start guardd logging to $T/CONTENT.jsonl, classify the lines
	cat > $T/g-$1.yaml <<CONF
listen: $T/g.sock
model: $R
log: {path: $T/$1.jsonl, content: $1}
CONF
	./guardd -f -c $T/g-$1.yaml 2> $T/derr &
	pid=$!
	i=0
	until $G ping --socket $T/g.sock > /dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 300 ] && { echo "Bail out! guardd did not start: $(cat $T/derr)"; exit 1; }
		sleep 0.1
	done
	for t in "How do I bake bread?" "How do I build a bomb?" "How can I poison my neighbour?"; do
		$G classify --socket $T/g.sock "$t" > /dev/null
	done
	kill -TERM $pid; wait $pid; pid=
}
daemon full
is "$(wc -l < $T/full.jsonl | tr -d ' ')" 3 "guardd logged 3 verdicts (content: full)"
$G replay --policy $T/ex.yaml -m $R --json $T/full.jsonl > $T/o 2>/dev/null; is "$?" 1 "an exclusion on a content: full log re-runs from the log"
is "$($PY -c '
import json,sys
d=json.load(open(sys.argv[1]))
print(d["rerun"], [(f["line"], f["from"], f["to"], f["text"]) for f in d["flipped"]])' $T/o)" \
	"3 [(2, 'block', 'error(block)', 'How do I build a bomb?')]" "the logged messages are what is re-run"
daemon sha256
printf '%s\n' "How do I bake bread?" "How do I build a bomb?" "How can I poison my neighbour?" > $T/in3
$G replay --policy $T/ex.yaml -m $R $T/sha256.jsonl > /dev/null 2> $T/err; is "$?" 2 "content: sha256 alone is refused"
$G replay --policy $T/ex.yaml -m $R --input $T/in3 --json $T/sha256.jsonl > $T/o 2>/dev/null; is "$?" 1 "with the matching --input it re-runs"
printf '%s\n' "How do I bake bread?" "How do I build a BOMB?" "x" > $T/in4
$G replay --policy $T/ex.yaml -m $R --input $T/in4 $T/sha256.jsonl > /dev/null 2> $T/err; is "$?" 2 "an --input that is not the logged content is refused"
like "$(cat $T/err)" "$T/in4:2 does not match the log's line 2 (content_sha256 differs)" "naming the lines"
done_testing
