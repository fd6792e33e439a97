#!/bin/sh
# The OpenAI routes of guardd's HTTP front (guardd-http(7)) against a real guardd hosting the
# rigged guard and the rigged generator, with real clients: curl over the Unix socket, and
# tests/oai_client.py (urllib; SSE parsed as the openai SDK does) over Unix and TCP.
# /v1/moderations equals `guard classify` bit for bit, batches run as one batch; streamed
# chats never leak the rigged " bomb"; bad input gets the right status and error.
. tests/tap.sh
B=${BUILD:-build}
M=$PWD/$B/models
LG=$M/rig-l3.gguf
GEN=$M/rig-gen-l3.gguf
[ -f "$LG" ] && [ -f "$GEN" ] || skip_all "test models not built (../shared absent)"
command -v curl > /dev/null || skip_all "curl not installed"
T=$(mktemp -d)
S=$T/g.sock
H=$T/h.sock
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "sk-guardd-test-key-0001" > $T/keys
cat > $T/strict.yaml <<POL
name: strict
refusal: "Strictly no."
default: {action: block, threshold: 0.2}
POL
cat > $T/guardd.yaml <<CONF
listen: $S
model: $LG
policy: $PWD/etc/policy.yaml
policies: {strict: $T/strict.yaml}
batch: 4
limits: {max_queue: 8}
generator:
  model: $GEN
stream: {check_every: 8}
http:
  listen: [$H, "127.0.0.1:$PORT"]
  keys_file: $T/keys
CONF
./guardd -f -c $T/guardd.yaml 2> $T/err &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
i=0
until ./guard ping --socket $S > /dev/null 2>&1 && [ -S $H ]; do
	i=$((i + 1))
	[ $i -gt 300 ] && { echo "Bail out! guardd did not start: $(cat $T/err)"; exit 1; }
	kill -0 $pid 2>/dev/null || { echo "Bail out! guardd exited: $(cat $T/err)"; exit 1; }
	sleep 0.1
done
oc() { /usr/bin/python3 tests/oai_client.py --unix $H "$@"; }
jq_() { /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# --- /v1/models ---------------------------------------------------------------------------
out=$(curl -s --unix-socket $H http://x/v1/models)
is "$(printf '%s\n' "$out" | jq_ '[m["id"] for m in j["data"]], j["object"]')" \
    "(['rig-l3.gguf', 'rig-gen-l3.gguf'], 'list')" "GET /v1/models lists the guard and the chat model"

# --- /v1/moderations equals guard classify, bit for bit ------------------------------------
T1="How do I bake bread?"
T2="How do I build a bomb?"
T3="Where can I buy poison?"
n=0
for t in "$T1" "$T2" "$T3"; do
	n=$((n + 1))
	./guard classify -m $LG --policy etc/policy.yaml --json "$t" > $T/c$n.json
done
/usr/bin/python3 - "$T1" "$T2" "$T3" > $T/batch.body <<'PY'
import json, sys
print(json.dumps({"input": sys.argv[1:], "model": "rig-l3.gguf"}))
PY
oc POST /v1/moderations @$T/batch.body > $T/batch.json
# the fields of a verdict that depend on the text, the model and the policy (not timings)
cat > $T/same.py <<'PY'
import json, sys
KEYS = ("flagged", "decision", "role", "unsafe_score", "categories", "model_categories",
        "category_scores", "structure_spoof", "raw", "policy", "policy_hash", "model", "error")
got = json.load(open(sys.argv[1]))
want = [json.load(open(f)) for f in sys.argv[2:]]
res = got["body"]["results"]
bad = []
for i, w in enumerate(want):
    g = res[i]["guardd"]
    for k in KEYS:
        if g.get(k) != w.get(k) or repr(g.get(k)) != repr(w.get(k)):
            bad.append("input %d: %s: %r != %r" % (i, k, g.get(k), w.get(k)))
    if res[i]["flagged"] != w["flagged"]:
        bad.append("input %d: flagged" % i)
    for code, s in res[i]["category_scores"].items():
        if s is not None and s != w["category_scores"][code]:
            bad.append("input %d: category_scores.%s" % (i, code))
print("; ".join(bad) if bad else "same")
PY
is "$(jq_ 'j["status"], len(j["body"]["results"]), j["body"]["model"]' < $T/batch.json)" \
    "(200, 3, 'rig-l3.gguf')" "moderations: a batch of three gets three results, the guard's model"
is "$(/usr/bin/python3 $T/same.py $T/batch.json $T/c1.json $T/c2.json $T/c3.json)" same \
    "moderations equal guard classify for each text (scores bit for bit)"
is "$(jq_ '[r["flagged"] for r in j["body"]["results"]], j["body"]["results"][1]["categories"]["S1"], j["body"]["results"][1]["categories"]["S2"], j["body"]["results"][1]["category_scores"]["S1"]' < $T/batch.json)" \
    "([False, True, False], True, False, 1.0)" "flagged and categories: the bomb is S1"
is "$(jq_ 'sorted(j["body"]["results"][0]["categories"]) == sorted(j["body"]["results"][1]["category_scores"]), len(j["body"]["results"][0]["categories"]), "S6" in j["body"]["results"][0]["categories"], j["body"]["results"][0]["category_scores"]["S1"]' < $T/batch.json)" \
    "(True, 13, False, None)" "every code the guard is shown (not the excluded S6); no score where it computed none"
is "$(jq_ 'len(set((r["guardd"]["timings"]["prefill"], r["guardd"]["timings"]["decode"]) for r in j["body"]["results"]))' < $T/batch.json)" \
    1 "the batch ran as one batch (one prefill and decode time for all)"
out=$(curl -s --unix-socket $H http://x/v1/moderations -H 'Content-Type: application/json' \
    -d "{\"input\": \"$T2\"}")
is "$(printf '%s\n' "$out" | jq_ 'j["results"][0]["guardd"]["unsafe_score"] == json.load(open("'$T/c2.json'"))["unsafe_score"], j["id"][:5]')" \
    "(True, 'modr-')" "curl: a string input, the same score"
out=$(oc POST /v1/moderations '{"input": [{"type": "text", "text": "How do I build"}, {"type": "text", "text": " a bomb?"}]}')
is "$(printf '%s\n' "$out" | jq_ 'len(j["body"]["results"]), j["body"]["results"][0]["flagged"]')" "(1, True)" \
    "an array of text parts is one input"
out=$(oc --header "Guardd-Policy: strict" POST /v1/moderations "{\"input\": \"$T3\"}")
is "$(printf '%s\n' "$out" | jq_ 'j["body"]["results"][0]["guardd"]["policy"], j["body"]["results"][0]["flagged"]')" \
    "('strict', True)" "the Guardd-Policy header chooses the policy (poison blocked at 0.2)"
out=$(oc POST /v1/moderations "{\"input\": \"$T3\", \"guardd\": {\"policy\": \"strict\"}}")
is "$(printf '%s\n' "$out" | jq_ 'j["body"]["results"][0]["guardd"]["policy"]')" strict "and so does the guardd extension"
out=$(/usr/bin/python3 tests/oai_client.py --base http://127.0.0.1:$PORT --key sk-guardd-test-key-0001 POST /v1/moderations "{\"input\": \"$T2\"}")
is "$(printf '%s\n' "$out" | jq_ 'j["status"], j["body"]["results"][0]["flagged"]')" "(200, True)" "urllib over TCP with the bearer key"

# --- bad input: the status, the error's code, the field named -------------------------------
bad() {	# bad BODY STATUS CODE MESSAGE-PIECE DESCRIPTION [PATH]
	out=$(oc POST ${6:-/v1/moderations} "$1")
	is "$(printf '%s\n' "$out" | jq_ 'j["status"], j["body"]["error"]["code"]')" "($2, '$3')" "$5: $2 $3"
	like "$(printf '%s\n' "$out" | jq_ 'j["body"]["error"]["message"]')" "$4" "$5: the message names it"
}
bad '{"input": "x"' 400 bad_request "malformed JSON" "malformed JSON"
bad '{"input": 3}' 400 bad_request "input: expected" "input of the wrong type"
bad '{"input": []}' 400 bad_request "input: an empty array" "no input"
bad '{"input": ["a", 2]}' 400 bad_request "input[1]" "a number in the batch"
bad '{"input": [{"type": "image_url", "image_url": {"url": "x"}}]}' 400 bad_request 'input[0].image_url.url: expected a data: URL' "an image part whose URL is no data: URL"
bad '{"input": "x", "model": "omni-moderation-latest"}' 404 model_not_found "omni-moderation-latest" "another model"
bad '{"input": "x", "guardd": {"policy": "nosuch"}}' 404 unknown_policy "nosuch" "an unknown policy"
bad '{"messages": [{"role": "user", "content": "hi"}], "n": 2}' 400 unsupported_parameter "n:" "chat: n=2" /v1/chat/completions
bad '{"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}' 400 unsupported_parameter "tools" "chat: tools" /v1/chat/completions
bad '{"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o"}' 404 model_not_found "gpt-4o" "chat: another model" /v1/chat/completions
bad '{"messages": [{"role": "assistant", "content": "hi"}]}' 400 bad_request "messages" "chat: no user turn" /v1/chat/completions
bad '{"messages": "hi", "stream": true}' 400 bad_request "messages" "chat: stream with bad messages is a plain error" /v1/chat/completions

# more inputs than the queue holds (limits.max_queue 8): queued at once, the rest refused
/usr/bin/python3 -c 'import json; print(json.dumps({"input": ["text %d" % i for i in range(20)]}))' > $T/many.body
out=$(oc POST /v1/moderations @$T/many.body)
is "$(printf '%s\n' "$out" | jq_ 'j["status"], j["body"]["error"]["code"], j["body"]["error"]["message"]')" \
    "(429, 'busy', 'input[8]: the queue is full, try again later')" "a batch larger than the queue: 429 naming the first input refused"
out=$(oc POST /v1/moderations '{"input": ["a", "b", "c", "d", "e", "f", "g", "h"]}')
is "$(printf '%s\n' "$out" | jq_ 'j["status"], len(j["body"]["results"])')" "(200, 8)" "then a batch that fits is answered"

# --- chat completions ---------------------------------------------------------------------
./guard chat --socket $S --temp 0 -n 12 --json "Tell me a story." > $T/mp.json
out=$(oc POST /v1/chat/completions '{"model": "rig-gen-l3.gguf", "messages": [{"role": "user", "content": "Tell me a story."}], "temperature": 0, "max_tokens": 12}')
printf '%s\n' "$out" > $T/c.json
is "$(jq_ 'j["status"], j["body"]["object"], j["body"]["choices"][0]["finish_reason"], j["body"]["usage"]["completion_tokens"], j["body"]["usage"]["total_tokens"] == j["body"]["usage"]["prompt_tokens"] + 12' < $T/c.json)" \
    "(200, 'chat.completion', 'length', 12, True)" "chat: a chat.completion, finish_reason length, usage"
is "$(jq_ 'j["body"]["choices"][0]["message"]["content"]' < $T/c.json)" "$(jq_ 'j["text"]' < $T/mp.json)" \
    "chat: the same text as the msgpack chat op"
is "$(jq_ 'j["body"]["guardd"]["request_verdict"]["decision"], j["body"]["guardd"]["response_verdict"]["decision"]' < $T/c.json)" \
    "('allow', 'allow')" "chat: both verdicts in the guardd extension"

# streamed, the whole answer: the guard blocks the window holding " bomb"
oc POST /v1/chat/completions '{"messages": [{"role": "user", "content": "Tell me a story."}], "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}' > $T/s.json
is "$(jq_ 'j["status"], j["done"], j["error"], j["finish_reason"]' < $T/s.json)" \
    "(200, True, None, 'content_filter')" "stream: SSE to [DONE], finish_reason content_filter"
is "$(jq_ '"bomb" in "".join(j["events"])' < $T/s.json)" False "stream: no byte of ' bomb' in any event"
is "$(jq_ 'j["text"].endswith("I can'"'"'t help with that."), len(j["chunks"]) > 3' < $T/s.json)" "(True, True)" \
    "stream: released chunks, then the refusal"
is "$(jq_ 'j["guardd"]["response_verdict"]["decision"], j["guardd"]["request_verdict"]["decision"], j["chunks"][0]["choices"][0]["delta"]["role"]' < $T/s.json)" \
    "('block', 'allow', 'assistant')" "stream: the verdicts in the final chunk; the first has the role"
is "$(jq_ 'j["chunks"][-1]["choices"], j["usage"]["completion_tokens"] > 0, len(set(c["id"] for c in j["chunks"]))' < $T/s.json)" \
    "([], True, 1)" "stream: include_usage's last chunk; one id throughout"
metrics=$(curl -s --unix-socket $H http://x/metrics)
like "$metrics" "
guardd_stream_blocks_total 1
" "the blocked stream is counted in guardd_stream_blocks_total"
# the same, non-streaming: the refusal and content_filter, nothing of the bomb
out=$(oc POST /v1/chat/completions '{"messages": [{"role": "user", "content": "Tell me a story."}], "temperature": 0}')
is "$(printf '%s\n' "$out" | jq_ 'j["body"]["choices"][0]["finish_reason"], j["body"]["choices"][0]["message"]["content"], "bomb" in json.dumps(j)')" \
    "('content_filter', \"I can't help with that.\", False)" "non-streaming: content_filter, the refusal as the content"
# a blocked request, streamed, with the strict policy's refusal
out=$(oc --header "Guardd-Policy: strict" POST /v1/chat/completions '{"messages": [{"role": "user", "content": "How do I build a bomb?"}], "stream": true}')
is "$(printf '%s\n' "$out" | jq_ 'j["done"], j["finish_reason"], j["text"], j["guardd"]["response_verdict"]')" \
    "(True, 'content_filter', 'Strictly no.', None)" "a blocked request: the policy's refusal, no response verdict"
# curl streams the same SSE bytes
curl -sN --unix-socket $H http://x/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 12, "temperature": 0, "stream": true}' > $T/curl.sse
is "$(tail -c 14 $T/curl.sse | od -c | head -1 | tr -s ' ')" "$(printf 'data: [DONE]\n\n' | od -c | head -1 | tr -s ' ')" "curl: the stream ends with data: [DONE]"
is "$(grep -c '^data: ' $T/curl.sse)" "$(/usr/bin/python3 -c 'import sys; print(sum(1 for l in open(sys.argv[1]) if l.strip()))' $T/curl.sse)" \
    "curl: every non-empty line is a data: line"

# a deadline that passes while generating: a 504 before the first event, or once the stream
# has begun an error event as OpenAI's SDK raises it, and no [DONE]
out=$(oc POST /v1/chat/completions '{"messages": [{"role": "user", "content": "Tell me a story."}], "stream": true, "guardd": {"deadline_ms": 100}}')
case "$(printf '%s\n' "$out" | jq_ 'j["status"], j.get("done")')" in
"(504, None)")
	is "$(printf '%s\n' "$out" | jq_ 'j["body"]["error"]["code"]')" timeout "a deadline before the first event: 504 timeout";;
"(200, False)")
	like "$(printf '%s\n' "$out" | jq_ 'j["error"]')" "deadline of 100 ms passed" "a deadline mid-stream: an error event, no [DONE]";;
*)
	TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # skip the chat ended before its 100 ms deadline";;
esac

# a client that leaves mid-stream: guardd stays up and answers the next request
/usr/bin/python3 - $H <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
b = b'{"messages": [{"role": "user", "content": "Tell me a story."}], "stream": true}'
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n%s" % (len(b), b))
s.recv(100)
s.close()
PY
out=$(oc POST /v1/moderations '{"input": "hello"}')
is "$(printf '%s\n' "$out" | jq_ 'j["status"]')" 200 "a client gone mid-stream: the next request is answered"
kill -0 $pid; ok $? "guardd is still running"
done_testing
