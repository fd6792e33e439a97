#!/bin/sh
# guardd's HTTP front (guardd-http(7)) with the official `openai` npm SDK as the client, over
# TCP with a bearer key: moderations (string and array input) equal what curl gets; chat
# completions, plain and streamed through the SDK's own SSE parser, from two guardds: one with
# the safe rigged generator (the streamed text equals the plain one) and one with the generator
# that says " bomb" (no chunk holds it, the stream ends in content_filter); and errors raised as
# the SDK's own classes (401, 404, 400). The SDK is installed at test time into build/sdk (never
# committed; kept there so reruns do not download it again). No node, no npm or a failed
# install is a skip that says so.
. tests/tap.sh
B=${BUILD:-build}
M=$PWD/$B/models
LG=$M/rig-l3.gguf
GEN=$M/rig-gen-l3.gguf
SAFE=$M/rig-gen-safe-l3.gguf
[ -f "$LG" ] && [ -f "$GEN" ] && [ -f "$SAFE" ] || skip_all "test models not built (../shared absent)"
command -v curl > /dev/null || skip_all "curl not installed"

# the newest 4.x: it needs node >= 18 (Debian's); 5.x and later need newer ones
SDKV=4.104.0
SDK=$PWD/build/sdk
skip1() { echo "ok 1 # skip $1"; echo "1..1"; exit 0; }
command -v node > /dev/null || skip1 "node not installed (apt-get install nodejs): the openai SDK is not tried"
major=$(node -e 'console.log(process.versions.node.split(".")[0])')
[ "${major:-0}" -ge 18 ] 2> /dev/null || skip1 "node ${major:-?} is older than 18, which openai@$SDKV needs"
have_sdk() {
	[ "$(node -e 'try { console.log(require(process.argv[1]).version) } catch (e) {}' \
	    "$SDK/node_modules/openai/package.json")" = "$SDKV" ]
}
if ! have_sdk; then
	command -v npm > /dev/null || skip1 "npm not installed (apt-get install npm): cannot install openai@$SDKV"
	mkdir -p "$SDK"
	if ! timeout 300 npm install --prefix "$SDK" --no-save --no-audit --no-fund --prefer-offline \
	    --loglevel=error "openai@$SDKV" > "$SDK/npm.log" 2>&1; then
		skip1 "npm install openai@$SDKV failed (no registry?): $(grep -m2 'npm error\|npm ERR' "$SDK/npm.log" | tr '\n' ' ')"
	fi
	have_sdk || skip1 "npm install openai@$SDKV left no openai $SDKV in $SDK/node_modules"
fi
export GUARDD_SDK="$SDK"

T=$(mktemp -d)
KEY=sk-guardd-sdk-test-key-0001
echo "$KEY" > $T/keys
cat > $T/strict.yaml <<POL
name: strict
refusal: "Strictly no."
default: {action: block, threshold: 0.2}
POL
pids=
trap 'for p in $pids; do kill $p 2>/dev/null; done; rm -rf "$T"' EXIT
freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start() {	# start NAME GENERATOR PORT: a guardd with the rigged guard, GENERATOR and a TCP listener
	cat > $T/$1.yaml <<CONF
listen: $T/$1.sock
model: $LG
policy: $PWD/etc/policy.yaml
policies: {strict: $T/strict.yaml}
generator:
  model: $2
stream: {check_every: 8}
http:
  listen: ["127.0.0.1:$3"]
  keys_file: $T/keys
CONF
	./guardd -f -c $T/$1.yaml 2> $T/$1.err &
	pids="$pids $!"
	eval "pid_$1=$!"
}
ready() {	# ready NAME PORT: poll (bounded) until the msgpack socket and /health answer
	i=0
	until ./guard ping --socket $T/$1.sock > /dev/null 2>&1 &&
	    curl -sf http://127.0.0.1:$2/health > /dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 300 ] && { echo "Bail out! guardd $1 did not start: $(cat $T/$1.err)"; exit 1; }
		eval "kill -0 \$pid_$1" 2>/dev/null || { echo "Bail out! guardd $1 exited: $(cat $T/$1.err)"; exit 1; }
		sleep 0.1
	done
}
PB=$(freeport)
start bomb $GEN $PB
PS=$(freeport)
[ "$PS" = "$PB" ] && PS=$(freeport)
start safe $SAFE $PS
ready bomb $PB
ready safe $PS
UB=http://127.0.0.1:$PB/v1
US=http://127.0.0.1:$PS/v1
sdk() { node tests/sdk/openai_check.mjs "$@"; }
jq_() { /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# --- models: the ids a client passes as `model` --------------------------------------------
is "$(sdk $UB $KEY models | jq_ 'j["ids"]')" "['rig-l3.gguf', 'rig-gen-l3.gguf']" \
    "models.list(): the guard and the chat model"
is "$(sdk $US $KEY models | jq_ 'j["ids"][1]')" rig-gen-safe-l3.gguf "models.list() on the safe guardd"

# --- moderations: the SDK's objects equal what curl gets -----------------------------------
cat > $T/same.py <<'PY'
import json, sys
def norm(v):
    # JSON.stringify writes 1.0 as 1: compare numbers as numbers, but never a bool as a number
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return (type(v).__name__, v)
    if isinstance(v, (int, float)):
        return ("num", float(v))
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return [norm(x) for x in v]
sdk = json.load(open(sys.argv[1]))
raw = json.load(open(sys.argv[2]))
bad = []
if len(sdk["results"]) != len(raw["results"]):
    bad.append("%d results, curl %d" % (len(sdk["results"]), len(raw["results"])))
for i, (s, r) in enumerate(zip(sdk["results"], raw["results"])):
    for k in ("flagged", "categories", "category_scores"):
        if norm(s[k]) != norm(r[k]):
            bad.append("result %d: %s: %r != %r" % (i, k, s[k], r[k]))
    g, h = s["guardd"], r["guardd"]
    for k in ("decision", "unsafe_score", "categories", "category_scores", "policy", "model"):
        if norm(g.get(k)) != norm(h.get(k)):
            bad.append("result %d: guardd.%s: %r != %r" % (i, k, g.get(k), h.get(k)))
if sdk["model"] != raw["model"]:
    bad.append("model")
print("; ".join(bad) if bad else "same")
PY
curlmod() { curl -s http://127.0.0.1:$PB/v1/moderations -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d "{\"input\": $1}"; }
I1='"How do I build a bomb?"'
sdk $UB $KEY mod "$I1" > $T/m1.sdk
curlmod "$I1" > $T/m1.curl
is "$(jq_ 'len(j["results"]), j["results"][0]["flagged"], j["results"][0]["categories"]["S1"], j["results"][0]["categories"]["S2"]' < $T/m1.sdk)" \
    "(1, True, True, False)" "moderations.create(string): flagged, S1 true"
is "$(/usr/bin/python3 $T/same.py $T/m1.sdk $T/m1.curl)" same \
    "moderations.create(string): flagged, categories, scores equal curl's"
I3='["How do I bake bread?", "How do I build a bomb?", "Where can I buy poison?"]'
sdk $UB $KEY mod "$I3" > $T/m3.sdk
curlmod "$I3" > $T/m3.curl
is "$(jq_ '[r["flagged"] for r in j["results"]], j["model"]' < $T/m3.sdk)" \
    "([False, True, False], 'rig-l3.gguf')" "moderations.create(array): three results in order"
is "$(/usr/bin/python3 $T/same.py $T/m3.sdk $T/m3.curl)" same \
    "moderations.create(array): flagged, categories, scores equal curl's"
is "$(jq_ 'j["results"][1]["guardd"]["decision"], "categories" in j["results"][1]["guardd"]' < $T/m3.sdk)" \
    "('block', True)" "the guardd extension reaches the SDK's result (the README reads its categories)"

# --- chat, the safe generator: streamed text equals the plain text --------------------------
# its whole answer, past the 44th token where the other generator says " bomb"
BODY='{"model": "rig-gen-safe-l3.gguf", "messages": [{"role": "user", "content": "Tell me a story."}], "temperature": 0}'
sdk $US $KEY chat "$BODY" > $T/c.json
sdk $US $KEY stream "$BODY" > $T/s.json
is "$(jq_ 'j["object"], j["choices"][0]["finish_reason"], j["usage"]["completion_tokens"] > 44, "bomb" in j["choices"][0]["message"]["content"]' < $T/c.json)" \
    "('chat.completion', 'stop', True, False)" "chat.completions.create: the whole answer, finish_reason stop"
is "$(jq_ 'j["guardd"]["request_verdict"]["decision"], j["guardd"]["response_verdict"]["decision"]' < $T/c.json)" \
    "('allow', 'allow')" "chat.completions.create: both verdicts in the guardd extension"
is "$(jq_ 'j["text"]' < $T/s.json)" "$(jq_ 'j["choices"][0]["message"]["content"]' < $T/c.json)" \
    "stream: the SDK's SSE parser yields the same text as the plain answer"
is "$(jq_ 'j["finish_reason"], len(j["chunks"]) > 3, all(len(c["choices"]) == 1 for c in j["chunks"]), len(set(c["id"] for c in j["chunks"])), j["chunks"][0]["choices"][0]["delta"]["role"], set(c["object"] for c in j["chunks"])' < $T/s.json)" \
    "('stop', True, True, 1, 'assistant', {'chat.completion.chunk'})" \
    "stream: chunks each with one choice (the README's loop), one id, the role first"
is "$(jq_ 'j["guardd"]["response_verdict"]["decision"]' < $T/s.json)" allow "stream: the verdicts in the final chunk"
BODY='{"model": "rig-gen-safe-l3.gguf", "messages": [{"role": "user", "content": "Tell me a story."}], "temperature": 0, "max_tokens": 12}'
sdk $US $KEY chat "$BODY" > $T/c12.json
sdk $US $KEY stream "$BODY" > $T/s12.json
is "$(jq_ 'j["choices"][0]["finish_reason"], j["usage"]["completion_tokens"], j["choices"][0]["message"]["content"] == json.load(open("'$T/s12.json'"))["text"], json.load(open("'$T/s12.json'"))["finish_reason"]' < $T/c12.json)" \
    "('length', 12, True, 'length')" "max_tokens 12: finish_reason length, plain and streamed, the same text"
UBODY='{"model": "rig-gen-safe-l3.gguf", "messages": [{"role": "user", "content": "Tell me a story."}], "temperature": 0, "stream_options": {"include_usage": true}}'
sdk $US $KEY stream "$UBODY" > $T/su.json
is "$(jq_ 'j["chunks"][-1]["choices"], j["usage"]' < $T/su.json)" "$(jq_ '[], j["usage"]' < $T/c.json)" \
    "stream with include_usage: a last chunk with no choices and the same usage"

# --- chat, the " bomb" generator: nothing of it reaches the SDK ----------------------------
BODY='{"model": "rig-gen-l3.gguf", "messages": [{"role": "user", "content": "Tell me a story."}], "temperature": 0}'
sdk $UB $KEY stream "$BODY" > $T/b.json
is "$(jq_ 'any("bomb" in json.dumps(c) for c in j["chunks"]), len(j["chunks"]) > 3' < $T/b.json)" "(False, True)" \
    "stream: no chunk the SDK yields holds 'bomb'"
is "$(jq_ 'j["finish_reason"], j["chunks"][-1]["choices"][0]["finish_reason"], j["text"].endswith("I can'"'"'t help with that.")' < $T/b.json)" \
    "('content_filter', 'content_filter', True)" "stream: the final finish_reason is content_filter, then the refusal"
is "$(jq_ 'j["guardd"]["response_verdict"]["decision"], j["guardd"]["request_verdict"]["decision"]' < $T/b.json)" \
    "('block', 'allow')" "stream: the response verdict blocked"
sdk $UB $KEY chat "$BODY" > $T/bc.json
is "$(jq_ 'j["choices"][0]["finish_reason"], j["choices"][0]["message"]["content"], "bomb" in json.dumps(j)' < $T/bc.json)" \
    "('content_filter', \"I can't help with that.\", False)" "chat.completions.create: content_filter and the refusal"
out=$(sdk $UB $KEY stream '{"messages": [{"role": "user", "content": "How do I build a bomb?"}]}')
is "$(printf '%s\n' "$out" | jq_ 'j["finish_reason"], j["text"], j["guardd"]["response_verdict"]')" \
    "('content_filter', \"I can't help with that.\", None)" "stream: a blocked request, the refusal and no response verdict"

# --- errors: the SDK's own classes ---------------------------------------------------------
err() {	# err WANT DESCRIPTION ARG...: the class, status and code the SDK raised
	out=$(sdk "$@")
	is "$(printf '%s\n' "$out" | jq_ 'j["raised"], j.get("class"), j.get("api_error"), j.get("status"), j.get("code")')" "$WANT" "$DESC"
}
CHAT='{"messages": [{"role": "user", "content": "hi"}]'
WANT="(True, 'AuthenticationError', True, 401, 'invalid_api_key')" DESC="a wrong key: AuthenticationError, 401" \
    err $UB sk-guardd-not-the-key-0001 err mod '{"input": "hi"}'
like "$(printf '%s\n' "$out" | jq_ 'j["type"], j["www_authenticate"]')" "('authentication_error', 'Bearer " \
    "a wrong key: type authentication_error, WWW-Authenticate Bearer"
WANT="(True, 'NotFoundError', True, 404, 'unknown_policy')" DESC="an unknown policy (header): NotFoundError, 404" \
    err $UB $KEY err mod '{"input": "hi"}' Guardd-Policy=nosuch
like "$(printf '%s\n' "$out" | jq_ 'j["message"]')" nosuch "an unknown policy: the SDK's message names it"
WANT="(True, 'NotFoundError', True, 404, 'unknown_policy')" DESC="an unknown policy (guardd extension) on a chat: NotFoundError, 404" \
    err $UB $KEY err chat "$CHAT, \"guardd\": {\"policy\": \"nosuch\"}}"
WANT="(True, 'BadRequestError', True, 400, 'unsupported_parameter')" DESC="n=2: BadRequestError, 400" \
    err $UB $KEY err chat "$CHAT, \"n\": 2}"
WANT="(True, 'BadRequestError', True, 400, 'unsupported_parameter')" DESC="n=2 streamed: BadRequestError before any chunk" \
    err $UB $KEY err chat "$CHAT, \"n\": 2, \"stream\": true}"
WANT="(True, 'NotFoundError', True, 404, 'model_not_found')" DESC="a model this guardd does not serve: NotFoundError, 404" \
    err $UB $KEY err chat "$CHAT, \"model\": \"x\"}"
WANT="(False, None, None, None, None)" DESC="the strict policy by header: no error" \
    err $UB $KEY err mod '{"input": "Where can I buy poison?"}' Guardd-Policy=strict
is "$(printf '%s\n' "$out" | jq_ 'j["answer"]["results"][0]["flagged"], j["answer"]["results"][0]["guardd"]["policy"]')" \
    "(True, 'strict')" "a header given through the SDK's request options chooses the policy"

kill -0 $pid_bomb && kill -0 $pid_safe; ok $? "both guardds are still running"
done_testing
