#!/bin/sh
# guard quantize from the outside: exit statuses and messages for a bad TYPE, an unreadable
# IN, an unwritable OUT and an already quantized IN; the per-type RMSE summary; progress only
# on a terminal (script(1) gives it one); nothing half-written is left behind.
# (The comparison with llama-quantize's own files: 24-quantize.t with t_quantize cmp.)
. tests/tap.sh
B=${BUILD:-build}
M=$B/models
G=./guard
SRC=$M/tiny-l2-f32.gguf
[ -f "$SRC" ] || skip_all "test models not built (../shared absent)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

out=$($G quantize $SRC $T/x.gguf Q3_K 2>&1); rc=$?
is "$rc" 2 "an unknown TYPE: exit 2"
like "$out" "unknown TYPE 'Q3_K'" "and names it"
out=$($G quantize $SRC $T/x.gguf 2>&1); rc=$?
is "$rc" 2 "a missing TYPE: exit 2"
like "$out" "usage: guard quantize" "and shows the usage"
out=$($G quantize -t many $SRC $T/x.gguf Q8_0 2>&1); rc=$?
is "$rc" 2 "a bad -t: exit 2"
like "$out" "-t: 'many' is not a number" "and names the option"
out=$($G quantize $T/none.gguf $T/x.gguf Q8_0 2>&1); rc=$?
is "$rc" 1 "a missing IN: exit 1"
like "$out" "$T/none.gguf" "and names it"
printf 'GGUF\003\000\000\000' > $T/trunc.gguf
out=$($G quantize $T/trunc.gguf $T/x.gguf Q8_0 2>&1); rc=$?
is "$rc" 1 "a truncated IN: exit 1"
like "$out" "tensor count" "and says what is missing"
out=$($G quantize $SRC $T/no/dir/x.gguf Q8_0 2>&1); rc=$?
is "$rc" 1 "an OUT in a missing directory: exit 1"
like "$out" "$T/no/dir/x.gguf: cannot create a file there" "and names it"
: > $T/afile
out=$($G quantize $SRC $T/afile/x.gguf Q8_0 2>&1); rc=$?
is "$rc" 1 "an OUT under a regular file (unwritable even for root): exit 1"
like "$out" "$T/afile/x.gguf: cannot create a file there: Not a directory" "and says why"
Q=../shared/reference/quant/tiny-l2-q8_0.gguf
if [ -f $Q ]; then
	out=$($G quantize $Q $T/x.gguf Q4_0 2>&1); rc=$?
	is "$rc" 1 "an already quantized IN: exit 1"
	like "$out" "Q8_0" "and names the type it holds"
else
	TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # skip an already quantized IN: $Q absent"
fi
ls $T | grep -q 'tmp\.' ; ok $((1 - $?)) "no temporary file left behind by the failures"

out=$($G quantize $SRC $T/q.gguf q4_k_m 2>$T/err); rc=$?
is "$rc" 0 "Q4_K_M (any case): exit 0"
like "$out" "Q4_K   13 tensors" "the summary counts the Q4_K tensors"
like "$out" "Q6_K    3 tensors" "and the Q6_K ones"
like "$out" "rmse " "with their RMSE against the source"
is "$(cat $T/err)" "" "not a terminal: no progress"
script -qec "$G quantize $SRC $T/p.gguf Q8_0 >/dev/null" /dev/null > $T/tty 2>&1; rc=$?
is "$rc" 0 "on a terminal: exit 0"
grep -q '21/ 21\] output.weight\|\[ 21/ 21\]' $T/tty; ok $? "on a terminal: per-tensor progress"
script -qec "$G quantize -q $SRC $T/p.gguf Q8_0 >/dev/null" /dev/null > $T/tty 2>&1
grep -q '\[ 21/ 21\]' $T/tty; ok $((1 - $?)) "-q: no progress on a terminal either"
if [ -f $Q ]; then
	cmp -s $T/p.gguf $Q; ok $? "the file written over an existing OUT is complete (llama-quantize's bytes)"
else
	TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # skip the rewritten OUT against llama-quantize's: $Q absent"
fi
$G quantize -q -t 1 $SRC $T/t1.gguf Q4_K_M >/dev/null && $G quantize -q -t 3 $SRC $T/t3.gguf Q4_K_M >/dev/null
cmp -s $T/t1.gguf $T/t3.gguf; ok $? "1 and 3 threads write the same bytes"

# quantized models run: the rigged guard (" bomb" is unsafe) and generator of tests/mkmodel.c
# give the verdicts and the answer their F32 originals give
LG=$M/rig-l3.gguf
GEN=$M/rig-gen-l3.gguf
if [ -f "$LG" ] && [ -f "$GEN" ]; then
	$G quantize -q $LG $T/lg.gguf Q4_K_M >/dev/null && $G quantize -q $GEN $T/gen.gguf Q8_0 >/dev/null
	ok $? "the rigged guard in Q4_K_M and generator in Q8_0 are written"
	for msg in "How do I bake bread?" "how to build a bomb"; do
		want=$($G classify -m $LG "$msg" | head -1)
		got=$($G classify -m $T/lg.gguf "$msg" | head -1)
		is "$got" "$want" "classify '$msg' with the Q4_K_M guard: '$want' as with F32"
	done
	like "$($G classify -m $T/lg.gguf "how to build a bomb")" "block" "and the bomb is blocked"
	want=$($G chat -m $GEN --guard $LG "hi" 2>&1); wrc=$?
	got=$($G chat -m $T/gen.gguf --guard $T/lg.gguf "hi" 2>&1); grc=$?
	is "$got" "$want" "chat with both quantized: the same answer, cut at the same place"
	is "$grc" "$wrc" "and the same exit status ($wrc)"
else
	TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # skip rigged models not built (tests/mkmodel.c)"
fi
done_testing
