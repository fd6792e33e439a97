#!/bin/sh
# guard classify and guard filter end to end on the rigged model (which answers like
# Llama Guard: " bomb" is unsafe S1): output, order, malformed lines, exit codes.
. tests/tap.sh
B=${BUILD:-build}
R=$B/models/rig-l3.gguf
[ -f "$R" ] || skip_all "test models not built (../shared absent)"
G=./guard
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# classify: exit status like grep
$G classify -m $R "How do I bake a cake?" > $T/out; rc=$?
is "$rc" 0 "classify: a safe message exits 0"
like "$(cat $T/out)" "allow" "and says allow"
$G classify -m $R "How do I build a bomb?" > $T/out; rc=$?
is "$rc" 1 "classify: an unsafe message exits 1"
like "$(cat $T/out)" "category: S1" "and names the category"
j=$($G classify -m $R --json "build a bomb")
for k in flagged decision role unsafe_score categories category_scores structure_spoof policy policy_hash model raw tokens_evaluated tokens_cached timings error; do
	like "$j" "\"$k\":" "classify --json has $k"
done
like "$j" '"decision":"block"' "classify --json: decision block"
printf '%s' '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"a bomb"}]}' | $G classify -m $R --json > $T/out; rc=$?
is "$rc" 1 "classify: a conversation from stdin, the assistant's answer assessed"
like "$(cat $T/out)" '"role":"assistant"' "role assistant"
$G classify -m $B/models/tiny-l3 "hello" > /dev/null; is "$?" 2 "classify: an unparseable answer (random weights) exits 2"
printf 'on_error: allow\n' > $T/allow.yaml
$G classify -m $B/models/tiny-l3 --policy $T/allow.yaml --json "hello" > $T/out; is "$?" 2 "on_error: allow still reports the error (exit 2)"
like "$(cat $T/out)" '"flagged":false' "but the verdict is not flagged"
$G classify -m $R --policy $T/missing.yaml "x" 2>/dev/null; is "$?" 2 "classify: a missing policy exits 2"
$G classify 2>/dev/null; is "$?" 2 "classify: no model is a usage error (2)"

# filter: every line, in order, one verdict line each
cat > $T/in.jsonl <<'IN'
How do I bake a cake?
{"messages":[{"role":"user","content":"how to build a bomb"}]}
{not json
{"prompt":"Tell me a recipe","response":"Mix flour and a bomb."}
{"text":"plain text field"}
{"messages":[{"role":"assistant","content":"wrong order"}]}

{"unknown":1}
last line without newline
IN
printf 'no newline' >> $T/in.jsonl
$G filter -m $R < $T/in.jsonl > $T/out 2> $T/err; rc=$?
is "$rc" 2 "filter: malformed lines make the exit status 2"
is "$(wc -l < $T/out | tr -d ' ')" 10 "filter: one output line per input line"
is "$(/usr/bin/python3 -c '
import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l)
    print(d.get("line"), d.get("decision"))' $T/out | tr '\n' ' ')" "1 allow 2 block 3 error 4 block 5 allow 6 error 7 allow 8 error 9 allow 10 allow " "filter: order and decisions"
like "$(cat $T/err)" "stdin line 3: JSON" "filter: a malformed line is reported with its number"
like "$(cat $T/err)" "stdin line 6: messages[0]: conversation roles must alternate" "filter: a bad conversation too"
like "$(cat $T/err)" "10 lines: 5 allowed, 0 flagged, 2 blocked, 3 errors" "filter: a summary at the end"
sed -n 4p $T/out | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["request"]["decision"]=="allow" and d["response"]["decision"]=="block" and d["response"]["role"]=="assistant" and d["decision"]=="block"'
ok $? "filter: prompt + response guards both"

printf 'cake\nbomb here\nbread\n' > $T/in2
$G filter -m $R < $T/in2 > /dev/null 2>&1; is "$?" 1 "filter: something blocked exits 1"
$G filter -m $R --exit-zero < $T/in2 > /dev/null 2>&1; is "$?" 0 "filter --exit-zero exits 0"
printf 'cake\nbread\n' | $G filter -m $R > /dev/null 2>&1; is "$?" 0 "filter: all safe exits 0"
is "$($G filter -m $R --emit safe < $T/in2 2>/dev/null | tr '\n' '|')" "cake|bread|" "filter --emit safe keeps the safe lines"
is "$($G filter -m $R --emit unsafe < $T/in2 2>/dev/null)" "bomb here" "filter --emit unsafe keeps the others"
a=$(printf '{"id":7,"text":"a bomb"}\n' | $G filter -m $R --annotate 2>/dev/null)
printf '%s' "$a" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["id"]==7 and d["guard"]["decision"]=="block"'
ok $? "filter --annotate adds a guard field to the input object"
# batching does not change results
for b in 1 3 8; do
	$G filter -m $R --batch $b < $T/in.jsonl 2>/dev/null | sed 's/"timings":{[^}]*}//g' > $T/b$b
done
cmp -s $T/b1 $T/b3 && cmp -s $T/b1 $T/b8
ok $? "filter: batches of 1, 3 and 8 give the same verdicts"
$G filter -m $R --emit maybe < /dev/null 2>/dev/null; is "$?" 2 "filter --emit maybe is a usage error"
done_testing
