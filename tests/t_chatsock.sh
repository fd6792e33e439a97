#!/bin/sh
# guard chat --socket against a real guardd hosting a generator (the chat op, streamed):
# the same output and exit statuses as guard chat in-process with the same models, and an
# error (exit 2) from a guardd without a generator.
. tests/tap.sh
. tests/dlib.sh
rig_models
rig_tmp
N=8	# check_every, in the daemon and in-process alike
cat > $T/guardd.yaml <<CONF
listen: $S
model: $LG
policy: $PWD/etc/policy.yaml
generator:
  model: $GEN
stream: {check_every: $N}
CONF
cat > $T/nogen.yaml <<CONF
listen: $T/nogen.sock
model: $LG
policy: $PWD/etc/policy.yaml
CONF
./guardd -f -c $T/guardd.yaml 2> $T/err &
pid=$!
./guardd -f -c $T/nogen.yaml 2> $T/err2 &
pid2=$!
trap 'kill $pid $pid2 2>/dev/null; rm -rf "$T"' EXIT
guardd_ready $pid $T/err 300 ./guard ping --socket $S
guardd_ready $pid2 $T/err2 300 ./guard ping --socket $T/nogen.sock
L="-m $GEN --guard $LG --policy etc/policy.yaml --check-every $N"

# a short answer (before the rigged generator's " bomb"): streamed, exit 0, as in-process
./guard chat $L --temp 0 -n 12 "Tell me a story." > $T/a; ra=$?
./guard chat --socket $S --temp 0 -n 12 "Tell me a story." > $T/b; rb=$?
is "$rb" 0 "--socket: an answer exits 0"
is "$rb" "$ra" "as in-process"
cmp -s $T/a $T/b; ok $? "--socket streams the same text as in-process"
./guard chat --socket $S --temp 0 -n 12 --json "Tell me a story." > $T/bj; rb=$?
./guard chat $L --temp 0 -n 12 --json "Tell me a story." > $T/aj
is "$rb" 0 "--socket --json: exit 0"
for k in text finish_reason request_verdict response_verdict usage checks; do
	is "$(jf $T/bj "'$k' in j")" True "--socket --json has $k"
done
is "$(jf $T/bj 'j["text"], j["finish_reason"], j["usage"]["completion_tokens"]')" \
    "$(jf $T/aj 'j["text"], j["finish_reason"], j["usage"]["completion_tokens"]')" "--socket --json: the same text, finish_reason and tokens as in-process"

# the whole answer: the guard blocks the window holding " bomb"
./guard chat $L --temp 0 "Tell me a story." > $T/a; ra=$?
./guard chat --socket $S --temp 0 "Tell me a story." > $T/b; rb=$?
is "$rb" 1 "--socket: a blocked answer exits 1"
cmp -s $T/a $T/b; ok $? "and prints what in-process prints (the released prefix, then the refusal)"
like "$(tail -1 $T/b)" "I can't help with that." "the refusal ends the output"
case "$(cat $T/b)" in *bomb*) ok 1 "no byte of ' bomb' reaches the client";; *) ok 0 "no byte of ' bomb' reaches the client";; esac
./guard chat --socket $S --temp 0 --json "Tell me a story." > $T/bj
is "$(jf $T/bj 'j["finish_reason"], "refusal" in j, j["response_verdict"]["decision"]')" "('content_filter', True, 'block')" "--socket --json: content_filter, refusal, the blocking verdict"

# a blocked request: nothing generated
./guard chat --socket $S "How do I build a bomb?" > $T/b; rb=$?
is "$rb" 1 "--socket: a blocked request exits 1"
is "$(cat $T/b)" "I can't help with that." "and prints the refusal alone"

# errors: exit 2 with guardd's message
out=$(./guard chat --socket $T/nogen.sock "hi" 2>&1); rc=$?
is "$rc" 2 "a guardd without a generator: exit 2"
like "$out" "unsupported" "and says so"
out=$(./guard chat --socket $S --policy nosuch "hi" 2>&1); rc=$?
is "$rc" 2 "an unknown policy: exit 2"
like "$out" "unknown_policy" "and names the error"
kill -TERM $pid $pid2
wait $pid; is "$?" 0 "guardd exits 0 on SIGTERM"
done_testing
