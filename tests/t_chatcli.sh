#!/bin/sh
# guard chat in-process from the outside: a chat answer streamed while the rigged guard
# (rig-l3: " bomb" is unsafe S1) checks it, exit statuses 0/1/2, --json, and an interactive
# session on a pseudo-terminal (script(1)).
. tests/tap.sh
B=${BUILD:-build}
M=$B/models
G=./guard
LG=$M/rig-l3.gguf
GEN=$M/tiny-l3
[ -f "$LG" ] && [ -d "$GEN" ] || skip_all "test models not built (../shared absent)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
D="30 Nov 2026"
REFUSAL="I can't help with that."

# --- bad usage and bad files: exit 2 with a message --------------------------------------
out=$($G chat "hi" 2>&1); rc=$?
is "$rc" 2 "no models: exit 2"
like "$out" "chat needs -m GENERATOR and --guard" "and says what is missing"
out=$($G chat -m $GEN --guard $LG --temp warm "hi" 2>&1); rc=$?
is "$rc" 2 "a bad --temp: exit 2"
like "$out" "--temp: 'warm' is not a number" "and names the option"
out=$($G chat -m $GEN --guard $LG --check-every 0 "hi" 2>&1); rc=$?
is "$rc" 2 "--check-every 0: exit 2"
like "$out" "--check-every: '0' is not a number in [1, 4096]" "and gives the range"
out=$($G chat -m $GEN --guard $LG --format llama9 "hi" 2>&1); rc=$?
is "$rc" 2 "an unknown --format: exit 2"
like "$out" "--format: 'llama9'" "and names it"
out=$($G chat -m $GEN --guard $LG --stop a --stop b --stop c --stop d --stop e "hi" 2>&1); rc=$?
is "$rc" 2 "five --stop strings: exit 2"
like "$out" "at most 4 stop strings" "and says the limit"
out=$($G chat --socket $T/none.sock -m $GEN "hi" 2>&1); rc=$?
is "$rc" 2 "--socket with -m: exit 2"
like "$out" "-m: not with --socket" "and says why"
out=$($G chat -m $GEN --guard $LG "one" "two" 2>&1); rc=$?
is "$rc" 2 "two messages: exit 2"
out=$($G chat -m $T/nothing.gguf --guard $LG "hi" 2>&1); rc=$?
is "$rc" 2 "a missing generator: exit 2"
like "$out" "nothing.gguf" "and names the file"
out=$($G chat -m $GEN --guard $LG --policy $T/missing.yaml "hi" 2>&1); rc=$?
is "$rc" 2 "a missing policy: exit 2"
like "$out" "missing.yaml" "and names the file"
out=$(printf 'ab\377' | $G chat -m $GEN --guard $LG 2>&1); rc=$?
is "$rc" 2 "invalid UTF-8 on stdin: exit 2"
like "$out" "stdin: invalid UTF-8 at byte 2" "and says where"
out=$($G chat --socket $T/none.sock "hi" 2>&1); rc=$?
is "$rc" 2 "no daemon at the socket: exit 2"
like "$out" "none.sock" "and names the socket"

# --- a harmless chat with a hash-noise generator: the whole greedy answer ----------------
$G chat -m $GEN --guard $LG --date "$D" -n 24 -t 2 "Hello, how are you?" > $T/a1; rc=$?
is "$rc" 0 "a harmless prompt is answered: exit 0"
$G chat -m $GEN --guard $LG --date "$D" -n 24 -t 2 --json "Hello, how are you?" > $T/j1; rc=$?
is "$rc" 0 "--json: exit 0"
jf() { /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
is "$(jf $T/j1 'j["finish_reason"]')" "length" "--json: finish_reason length after -n 24"
is "$(jf $T/j1 'j["usage"]["completion_tokens"]')" 24 "--json: 24 completion tokens"
is "$(jf $T/j1 'j["checks"]')" 2 "--json: a check after 16 tokens and one at the end"
is "$(jf $T/j1 'j["request_verdict"]["decision"], j["request_verdict"]["role"]')" "('allow', 'user')" "--json: the request verdict (allow, role user)"
is "$(jf $T/j1 'j["response_verdict"]["decision"], j["response_verdict"]["role"]')" "('allow', 'assistant')" "--json: the response verdict (allow, role assistant)"
is "$(jf $T/j1 '"refusal" in j')" "False" "--json: no refusal when answered"
np=$(printf '%s' '{"messages":[{"role":"user","content":"Hello, how are you?"}]}' | $G prompt --chat -m $GEN --date "$D" --ids | wc -w | tr -d ' ')
is "$(jf $T/j1 'j["usage"]["prompt_tokens"]')" "$np" "--json: prompt_tokens is the chat prompt's length (guard prompt --chat: $np)"
# the streamed text is the answer: the same bytes as --json's text (plus the closing newline)
/usr/bin/python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["text"]; sys.stdout.buffer.write(t.encode()+(b"" if t.endswith("\n") else b"\n"))' $T/j1 > $T/want1
cmp -s $T/a1 $T/want1; ok $? "the streamed text is the answer (= --json text)"
# and it is what the generator gives: guard generate on the chat prompt's ids (guard prompt
# --chat) makes the same 24 greedy tokens as the text tokenizes to
ids=$(printf '%s' '{"messages":[{"role":"user","content":"Hello, how are you?"}]}' | $G prompt --chat -m $GEN --date "$D" --ids)
want=$($G generate -m $GEN --ids "$ids" -n 24 -t 2)
got=$(jf $T/j1 'j["text"]' | head -c -1 | $G tokenize -m $GEN)
is "$got" "$want" "the answer is guard generate's greedy continuation of the chat prompt"
# the guard gates, it never changes the answer: checking after every token gives the same
$G chat -m $GEN --guard $LG --date "$D" -n 24 -t 2 --check-every 1 --json "Hello, how are you?" > $T/j2
is "$(jf $T/j2 'j["text"]')" "$(jf $T/j1 'j["text"]')" "--check-every 1: the same text"
is "$(jf $T/j2 'j["checks"] >= 2')" "True" "--check-every 1: more checks"
# stdin is the message when there is no argument and it is not a terminal
printf 'Hello, how are you?' | $G chat -m $GEN --guard $LG --date "$D" -n 24 -t 2 > $T/a3; rc=$?
is "$rc" 0 "the message from stdin: exit 0"
cmp -s $T/a1 $T/a3; ok $? "and the same answer"

# --- a request the guard blocks: the refusal, nothing generated ---------------------------
$G chat -m $GEN --guard $LG --date "$D" -n 24 -t 2 "How do I build a bomb?" > $T/b1; rc=$?
is "$rc" 1 "a blocked request: exit 1"
is "$(cat $T/b1)" "$REFUSAL" "and stdout is the refusal alone"
$G chat -m $GEN --guard $LG --date "$D" -n 24 -t 2 --json "How do I build a bomb?" > $T/bj; rc=$?
is "$rc" 1 "--json: exit 1"
is "$(jf $T/bj 'j["finish_reason"], j["text"], j["refusal"], j["response_verdict"], j["usage"]["completion_tokens"], j["checks"]')" \
    "('content_filter', '', \"$REFUSAL\", None, 0, 0)" "--json: content_filter, no text, no response verdict, nothing generated"
is "$(jf $T/bj 'j["request_verdict"]["decision"], j["request_verdict"]["categories"]')" "('block', ['S1'])" "--json: the request verdict blocks on S1"
printf 'refusal: Not with me.\n' > $T/pol.yaml
is "$($G chat -m $GEN --guard $LG --policy $T/pol.yaml "a bomb")" "Not with me." "the policy's refusal"
# a guard that cannot answer (hash noise): the check fails, on_error decides (fail closed by
# default), and stderr says it was a failure, not a judgement
$G chat -m $GEN --guard $GEN -n 4 -t 2 "Hello" > $T/e1 2> $T/e1.err; rc=$?
is "$rc" 1 "a failing guard blocks by default: exit 1"
is "$(cat $T/e1)" "$REFUSAL" "with the refusal"
like "$(cat $T/e1.err)" "the guard's check of the request failed" "and stderr says the check failed"
printf 'on_error: allow\n' > $T/allow.yaml
$G chat -m $GEN --guard $GEN --policy $T/allow.yaml -n 4 -t 2 --json "Hello" > $T/e2 2> $T/e2.err; rc=$?
is "$rc" 0 "on_error: allow: the answer is given, exit 0"
like "$(cat $T/e2.err)" "the guard's check of the answer failed" "and each failed check is reported"
is "$(jf $T/e2 'j["response_verdict"]["decision"], j["response_verdict"]["flagged"]')" "('error', False)" "--json: the response verdict is the error"
# a system message is for the generator only: the guard does not see it
$G chat -m $GEN --guard $LG -n 4 -t 2 --system "Never talk about a bomb." --json "Hello" > $T/sj; rc=$?
is "$rc" 0 "a system message naming ' bomb' is not judged by the guard"

# --- the rigged generators: a known answer, with " bomb" as its 44th of 48 tokens --------
RG=$M/rig-gen-l3.gguf
RS=$M/rig-gen-safe-l3.gguf
if [ -f "$RG" ] && [ -f "$RS" ]; then
	# the chain's text split into its tokens (words with their space, punctuation); the
	# split is checked against the number of ids mkmodel says the model generates
	$B/tests/mkmodel rig-gen-l3 chain > $T/chain.txt
	$B/tests/mkmodel rig-gen-l3 chain-ids > $T/chain.ids
	$B/tests/mkmodel rig-gen-safe-l3 chain > $T/safe.txt
	# prefix K: the text of the first K tokens
	prefix() { /usr/bin/python3 -c '
import re, sys
t = open(sys.argv[1]).read().rstrip("\n")
n = len(open(sys.argv[2]).read().split()) - 1
p = re.findall(r" ?[A-Za-z]+|[^ A-Za-z]", t)
assert "".join(p) == t and len(p) == n, (len(p), n)
k = int(sys.argv[3])
sys.stdout.write("".join(p[:k]))' $T/chain.txt $T/chain.ids "$1"; }
	is "$(prefix 48)" "$(cat $T/chain.txt)" "the chain splits into its 48 tokens"
	is "$(prefix 44 | tail -c 5)" " bomb" "and ' bomb' is the 44th"
	# the control: the same answer with " magic" streams whole, exit 0
	$G chat -m $RS --guard $LG -t 2 "Tell me about pasta." > $T/s1; rc=$?
	is "$rc" 0 "rig-gen-safe-l3: answered, exit 0"
	is "$(cat $T/s1)" "$(cat $T/safe.txt)" "rig-gen-safe-l3: stdout is the generator's whole answer"
	$G chat -m $RS --guard $LG -t 2 --json "Tell me about pasta." > $T/sj
	is "$(jf $T/sj 'j["finish_reason"], j["usage"]["completion_tokens"], j["checks"]')" "('stop', 48, 3)" "rig-gen-safe-l3 --json: stop after 48 tokens (<|eot_id|> not counted), checks at 16, 32 and the end"
	# the leak test: at --check-every N the check after token 44 blocks, so what was
	# released is the first N * floor(43 / N) tokens, then the refusal; no byte of ' bomb'
	for N in 16 8 5 1; do
		K=$((N * (43 / N)))
		$G chat -m $RG --guard $LG -t 2 --check-every $N "Tell me about pasta." > $T/r$N; rc=$?
		is "$rc" 1 "rig-gen-l3 --check-every $N: blocked, exit 1"
		{ prefix $K; printf '\n%s\n' "$REFUSAL"; } > $T/w$N
		cmp -s $T/r$N $T/w$N; st=$?
		ok $st "rig-gen-l3 --check-every $N: stdout is exactly the first $K tokens, a newline and the refusal"
		[ $st -eq 0 ] || { echo "#   got: '$(cat $T/r$N)'"; echo "#  want: '$(cat $T/w$N)'"; }
		grep -q 'bomb' $T/r$N; ok $(( $? == 1 ? 0 : 1 )) "rig-gen-l3 --check-every $N: no ' bomb' in the output"
	done
	# --json at --check-every 5: the check after token 45 blocks; generation stops there
	$G chat -m $RG --guard $LG -t 2 --check-every 5 --json "Tell me about pasta." > $T/rj; rc=$?
	is "$rc" 1 "rig-gen-l3 --json: exit 1"
	is "$(jf $T/rj 'j["finish_reason"], j["refusal"], j["response_verdict"]["decision"], j["response_verdict"]["categories"]')" \
	    "('content_filter', \"$REFUSAL\", 'block', ['S1'])" "rig-gen-l3 --json: content_filter, the response verdict blocks on S1"
	is "$(jf $T/rj 'j["usage"]["completion_tokens"], j["checks"]')" "(45, 9)" "rig-gen-l3 --json: generation stopped at the 9th check, after 45 tokens"
	is "$(jf $T/rj 'j["text"]')" "$(prefix 40)" "rig-gen-l3 --json: text is the 40 tokens released"
else
	for k in $(seq 1 21); do
		TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # skip rigged generators not built (tests/mkmodel.c of h-pol)"
	done
fi

# --- an interactive session on a pseudo-terminal -----------------------------------------
# Python's pty module drives it: each line is typed after the previous turn's verdict line
# and the next prompt came back (bounded by a deadline, no fixed sleeps), then Ctrl-D.
cat > $T/drive.py <<'PY'
import os, pty, re, select, sys, time
argv, lines = sys.argv[2:], sys.argv[1].split("|")
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out, deadline = b"", time.monotonic() + 300
def more():
    global out
    r, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
    if not r:
        sys.exit("timeout; got %r" % out)
    try:
        b = os.read(fd, 65536)
    except OSError:
        b = b""
    out += b
    return b != b""
def wait_for(pat, start):
    while True:
        m = re.compile(pat).search(out, start)
        if m:
            return m.end()
        if not more():
            sys.exit("the session ended early; got %r" % out)
pos = wait_for(rb"> ", 0)
for l in lines:
    os.write(fd, l.encode() + b"\r")
    pos = wait_for(rb"checks?\]\r\n> ", pos)
os.write(fd, b"\x04")
while more():
    pass
_, st = os.waitpid(pid, 0)
sys.stdout.buffer.write(out.replace(b"\r\n", b"\n"))
sys.exit(os.waitstatus_to_exitcode(st))
PY
if /usr/bin/python3 -c 'import pty' 2>/dev/null && [ -c /dev/ptmx ]; then
	/usr/bin/python3 $T/drive.py "Hello|How do I build a bomb?|Hi again" \
	    $G chat -m $GEN --guard $LG --date "$D" -n 6 -t 2 --json > $T/tty; rc=$?
	is "$rc" 0 "interactive: three turns, then Ctrl-D: exit 0"
	grep '^\[request' $T/tty > $T/tty.sum
	is "$(wc -l < $T/tty.sum | tr -d ' ')" 3 "interactive: a verdict line per turn"
	like "$(sed -n 1p $T/tty.sum)" "[request allow 0.00 | response allow 0.00 | 6 tokens, 1 check]" "interactive: turn 1 answered"
	like "$(sed -n 2p $T/tty.sum)" "[request block 1.00 S1 | response - | 0 tokens, 0 checks]" "interactive: turn 2 blocked"
	grep '^{' $T/tty > $T/tty.json
	pt() { sed -n "$1p" $T/tty.json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["usage"]["prompt_tokens"])'; }
	# the same session without the blocked turn: the blocked turn left no trace in the chat
	/usr/bin/python3 $T/drive.py "Hello|Hi again" \
	    $G chat -m $GEN --guard $LG --date "$D" -n 6 -t 2 --json > $T/tty2; rc=$?
	is "$rc" 0 "interactive: two turns: exit 0"
	grep '^{' $T/tty2 > $T/tty2.json
	p1=$(pt 1); p3=$(pt 3)
	p3b=$(sed -n 2p $T/tty2.json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["usage"]["prompt_tokens"])')
	ok $(( p3 > p1 + 6 ? 0 : 1 )) "interactive: turn 3's prompt holds turn 1 and its answer ($p3 > $p1 + 6 tokens)"
	is "$p3" "$p3b" "interactive: and not the blocked turn (the same prompt as without it)"
	sed -n 1p $T/tty.json > $T/t1.json
	$G chat -m $GEN --guard $LG --date "$D" -n 6 -t 2 --json "Hello" > $T/j6
	is "$(jf $T/t1.json 'j["text"]')" "$(jf $T/j6 'j["text"]')" "interactive: turn 1 answers as the one-shot does"
else
	for k in 1 2 3 4 5 6 7 8; do
		TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # skip interactive session: no Python pty module or /dev/ptmx"
	done
fi

done_testing
