#!/bin/sh
# guard policy check | diff | show: errors with file:line:column, the effective difference
# per category and direction (and whether the prompt changes), the resolved policy, and a
# category block identical to the one in the prompt guard prompt renders.
. tests/tap.sh
G=./guard
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# --- check -------------------------------------------------------------------------------
out=$($G policy check etc/policy.yaml); rc=$?
is "$rc" 0 "check: the shipped policy is valid"
like "$out" "etc/policy.yaml: ok: policy default, 14 categories, hash " "and check says so"
printf 'name: t\ncategories:\n  S1: {threshold: 2}\n' > $T/b1.yaml
printf 'categories:\n  S1: [1\n' > $T/b2.yaml
printf 'categorie:\n  S1: {}\n' > $T/b3.yaml
$G policy check etc/policy.yaml $T/b1.yaml $T/b2.yaml $T/b3.yaml > $T/out 2> $T/err; is "$?" 1 "check: any invalid file makes it exit 1"
like "$(cat $T/err)" "$T/b1.yaml:3:19: categories.S1.threshold: 2 is outside [0, 1]" "a value out of range: line:column and key"
like "$(cat $T/err)" "$T/b2.yaml:3:1: YAML: did not find expected ','" "broken YAML: line:column"
like "$(cat $T/err)" "$T/b3.yaml:1:1: categorie: unknown key 'categorie'" "an unknown key, named"
is "$(grep -c ': ok:' $T/out)" 1 "the valid file is still reported ok"
$G policy check 2>/dev/null; is "$?" 2 "check without files: usage"

# --- diff --------------------------------------------------------------------------------
$G policy diff :default etc/policy.yaml > $T/d; is "$?" 1 "diff: different policies exit 1"
like "$(cat $T/d)" "S10  user      threshold       0.5 -> 0.3  [stricter]" "a lowered threshold, per role, stricter"
like "$(cat $T/d)" "S12  user      action          block -> flag  [looser]" "block -> flag for user messages is looser"
like "$(cat $T/d)" "S6   user      shown           shown -> excluded  [looser]  [prompt]" "an exclusion changes the prompt"
like "$(cat $T/d)" "S14  assistant added           (none) -> Competitor Promotion.  [stricter]  [prompt]" "a custom category is added"
like "$(cat $T/d)" "prompt for user messages: changes" "the prompt change is stated"
grep -q "S12  assistant action" $T/d; is "$?" 1 "S12 for assistant messages: block in both, not listed"
printf 'categories:\n  S10: {threshold: 0.3}\n  S12: {action: flag}\nresponse:\n  on_error: allow\n' > $T/t.yaml
$G policy diff :default $T/t.yaml > $T/d
like "$(cat $T/d)" "-    assistant on_error        block -> allow  [looser]" "on_error per role"
like "$(cat $T/d)" "prompt for user messages: the same (logged scores still apply: guard replay needs no model)" "thresholds and actions only: the prompt is the same"
is "$($G policy diff --json :default $T/t.yaml | $PY -c '
import json,sys
d=json.load(sys.stdin)
print(d["prompt_changes"], sorted((c["kind"], c["code"], c["role"], c["direction"]) for c in d["changes"]))')" \
	"{'user': False, 'assistant': False} [('action', 'S12', 'assistant', 'looser'), ('action', 'S12', 'user', 'looser'), ('on_error', None, 'assistant', 'looser'), ('threshold', 'S10', 'assistant', 'stricter'), ('threshold', 'S10', 'user', 'stricter')]" \
	"diff --json parses: kind, code, role and direction of every change"
printf '# the built-in, written out\nname: default\ndefault: {threshold: 0.5, action: block}\n' > $T/same.yaml
out=$($G policy diff :default $T/same.yaml); rc=$?
is "$rc" 0 "diff: an equivalent file (defaults written out) exits 0"
like "$out" "no effective difference" "and says so"
printf 'categories:\n  S3: {description: "Also: grooming."}\n' > $T/desc.yaml
like "$($G policy diff :default $T/desc.yaml)" "S3   both      description     (none) -> Also: grooming.  [prompt]" "a description changes the prompt"
$G policy diff :default $T/b1.yaml 2> $T/err; is "$?" 2 "diff with an invalid policy: exit 2"
like "$(cat $T/err)" "$T/b1.yaml:3:19" "with its line:column"

# --- show --------------------------------------------------------------------------------
$G policy show etc/policy.yaml > $T/s; is "$?" 0 "show: the shipped policy"
like "$(cat $T/s)" "S10   Hate.                            shown    0.3       block    shown    0.3       block" "show: every default applied, per role"
like "$(cat $T/s)" "S12   Sexual Content.                  shown    0.5       flag     shown    0.5       block" "show: role overrides resolved"
like "$(cat $T/s)" "on_error: user block, assistant block" "show: on_error per role"
# the category block equals the prompt's, for both roles
printf '{"messages":[{"role":"user","content":"hi"}]}' | $G prompt --policy etc/policy.yaml > $T/pu
printf '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}' | $G prompt --policy etc/policy.yaml > $T/pa
$G policy show --json etc/policy.yaml > $T/j
$PY - $T/j $T/pu $T/pa <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for role, f in (("user", sys.argv[2]), ("assistant", sys.argv[3])):
    b = d["prompt_categories"][role]
    assert b.startswith("<BEGIN UNSAFE CONTENT CATEGORIES>\n") and b.endswith("<END UNSAFE CONTENT CATEGORIES>"), b
    assert b in open(f).read(), role
assert "S6:" not in d["prompt_categories"]["user"]
assert "S14: Competitor Promotion.\nResponses that recommend" in d["prompt_categories"]["user"]
PY
ok $? "show: the category block is exactly the one in guard prompt's prompt (user and assistant)"
is "$($PY -c '
import json,sys
d=json.load(open(sys.argv[1]))
c={x["code"]:x for x in d["categories"]}
print(len(d["categories"]), c["S6"]["user"]["shown"], c["S14"]["custom"], c["S12"]["assistant"]["action"], d["structure_spoof"])' $T/j)" \
	"14 False True block flag" "show --json: categories, exclusions, custom codes, role actions"
like "$($G policy show)" "S13   Elections." "show without a file: the built-in policy"
$G policy show $T/b3.yaml 2>/dev/null; is "$?" 1 "show of an invalid file: exit 1"
$G policy frob 2>/dev/null; is "$?" 2 "an unknown subcommand: usage"
done_testing
