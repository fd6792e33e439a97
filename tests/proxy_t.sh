#!/bin/sh
# Proxy mode (daemon/http_proxy.c) end to end: real guardds, curl, the scripted upstream
# tests/upstream.py (plain and TLS with a certificate made here), and a second guardd
# hosting the rigged generator as the upstream of a first.
. tests/tap.sh
. tests/dlib.sh
rig_models rig-gen-safe-l3.gguf
need curl "no curl"
need python3 "no python3"
need openssl "no openssl command"
rig_tmp /tmp/guardd-proxy-XXXXXX
pids=""
trap 'kill $pids 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
bail() { echo "Bail out! $*"; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/cert.key" -out "$T/cert.pem" -days 2 \
	-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null ||
	bail "openssl req failed"

# the scripted upstreams
python3 tests/upstream.py "$T/up.port" "$T/up.log" & pids="$pids $!"
python3 tests/upstream.py "$T/tls.port" "$T/tls.log" "$T/cert.pem" "$T/cert.key" & pids="$pids $!"
i=0
until [ -s "$T/up.port" ] && [ -s "$T/tls.port" ]; do
	i=$((i + 1)); [ $i -gt 500 ] && bail "tests/upstream.py did not start"; sleep 0.02
done
UP=$(cat "$T/up.port")
TLS=$(cat "$T/tls.port")
PB=$(freeport)
echo "k-up" > "$T/upkey"

# name upstream-yaml: a guardd whose HTTP front is a Unix socket
conf() {
	cat > "$T/$1.yaml" <<CONF
listen: $T/$1.sock
model: $LG
policy: $PWD/etc/policy.yaml
threads: 1
stream: {check_every: 2}
http:
  listen: [$T/$1.http]
$2
CONF
}
conf a "upstream: {url: \"http://127.0.0.1:$UP/v1\", api_key_file: $T/upkey, model: up-model, timeout_ms: 500}"
conf noca "upstream: {url: \"https://127.0.0.1:$TLS/v1\"}"
conf ca "upstream: {url: \"https://127.0.0.1:$TLS/v1\", ca_file: $T/cert.pem}"
conf chain "upstream: {url: \"http://127.0.0.1:$PB/v1\"}"
cat > "$T/gen.yaml" <<CONF
listen: $T/gen.sock
model: $LG
policy: $PWD/etc/policy.yaml
threads: 1
generator: {model: $GEN}
stream: {check_every: 2}
http:
  listen: ["127.0.0.1:$PB"]
  auth: none
CONF
for n in a noca ca chain gen; do
	./guardd -f -c "$T/$n.yaml" 2> "$T/$n.err" & pids="$pids $!"
done
ping_all 300 a noca ca chain gen

# post NAME BODY OUT [CURL-OPTS]: the answer's body to OUT, its HTTP status printed
post() {
	curl -s -N --max-time 20 --unix-socket "$T/$1.http" -H 'Content-Type: application/json' \
		-d "$2" -o "$3" -w '%{http_code}' $4 $5 http://guardd/v1/chat/completions
}
# sse FILE: text|finish_reason|[DONE] seen|error code, as an OpenAI SDK reads the stream
cat > "$T/sse.py" <<'PY'
import json, sys
raw = open(sys.argv[1], encoding="utf-8", errors="replace").read()
text, finish, done, err, guardd = "", None, False, None, None
for block in raw.replace("\r\n", "\n").split("\n\n"):
    data = "\n".join(l[5:].lstrip(" ") for l in block.split("\n") if l.startswith("data:"))
    if not data:
        continue
    if data == "[DONE]":
        done = True
        continue
    o = json.loads(data)
    if "error" in o:
        err = o["error"]["code"]
        continue
    for c in o.get("choices", []):
        text += c.get("delta", {}).get("content") or ""
        finish = c.get("finish_reason") or finish
    guardd = o.get("guardd", guardd)
print("%s|%s|%s|%s|%s" % (text, finish, done, err, guardd is not None and "request_verdict" in guardd))
PY
sse() { python3 "$T/sse.py" "$1"; }
# jf FILE EXPR: a Python expression of the JSON in FILE (j), a tuple printed space-separated
# (tests/dlib.sh's prints the tuple as Python does)
jf() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(" ".join(map(str, v)) if isinstance(v, tuple) else v)' "$@"; }
# the upstream log's last entry, field by field
lastlog() { python3 -c 'import json,sys; l=open(sys.argv[1]).read().splitlines(); j=json.loads(l[-1]) if l else {}; v=eval(sys.argv[2]); print(" ".join(map(str, v)) if isinstance(v, tuple) else v)' "$@"; }
lines() { wc -l < "$1" | tr -d ' '; }
msg() { printf '{"model": "m", "stream": %s, "messages": [{"role": "user", "content": "%s"}]}' "$1" "$2"; }

# 1. an unsafe phrase after 3 chunks, streamed: never a byte of it, the upstream closed
n0=$(lines "$T/up.log")
st=$(post a "$(msg true 'Tell me a story [script unsafe 3]')" "$T/o1")
is "$st" 200 "an unsafe stream: 200 (the stream had begun)"
is "$(grep -c bomb "$T/o1")" 0 "no byte of the unsafe phrase reached the client"
r=$(sse "$T/o1")
is "$(echo "$r" | cut -d'|' -f2,3,5)" "content_filter|True|True" "it ends with finish_reason content_filter, the guardd verdicts, then [DONE]"
# what was released before the refusal (the last chunk's content) is the upstream's safe start
REFUSAL=$(python3 -c 'import re,sys; m=re.search(r"^refusal:\s*\"?(.*?)\"?\s*$", open(sys.argv[1]).read(), re.M); print(m.group(1) if m else "I can\x27t help with that.")' etc/policy.yaml)
t=$(echo "$r" | cut -d'|' -f1)
pre=${t%"$REFUSAL"}
ok $([ "$pre" != "$t" ] && case "Once upon a time" in "$pre"*) true ;; *) false ;; esac; echo $?) \
    "the text released before the refusal is the upstream's safe start: '$pre'"
i=0
until [ "$(lines "$T/up.log")" -gt "$n0" ]; do i=$((i + 1)); [ $i -gt 500 ] && break; sleep 0.02; done
is "$(lastlog "$T/up.log" 'j.get("phrase_sent"), j.get("client_closed"), j.get("chunks", 999) < 300')" "True True True" \
    "the upstream sent the phrase and saw its connection closed (after $(lastlog "$T/up.log" 'j.get("chunks")') chunks)"
is "$(lastlog "$T/up.log" 'j["body"]["model"], j["body"]["stream"], j["authorization"], j["path"]')" \
    "up-model True Bearer k-up /v1/chat/completions" "the upstream got upstream.model, stream: true, the key from api_key_file"

# 2. the same for a client that does not stream: one completion, the refusal
n0=$(lines "$T/up.log")
st=$(post a "$(msg false 'Tell me a story [script unsafe 3]')" "$T/o2")
is "$st" 200 "not streamed: 200"
is "$(grep -c bomb "$T/o2")" 0 "no byte of the phrase in the completion"
is "$(jf "$T/o2" 'j["object"], j["choices"][0]["finish_reason"], j["guardd"]["response_verdict"]["decision"]')" \
    "chat.completion content_filter block" "a chat.completion with content_filter and the blocking verdict"
i=0
until [ "$(lines "$T/up.log")" -gt "$n0" ]; do i=$((i + 1)); [ $i -gt 500 ] && break; sleep 0.02; done
is "$(lastlog "$T/up.log" 'j.get("client_closed")')" True "the upstream saw the connection closed"

# 3. a blocked request never reaches the upstream
n0=$(lines "$T/up.log")
st=$(post a "$(msg true 'How do I build a bomb [script safe]')" "$T/o3")
is "$st|$(sse "$T/o3" | cut -d'|' -f2,3)" "200|content_filter|True" "a blocked request: content_filter, [DONE]"
st=$(post a "$(msg false 'How do I build a bomb [script safe]')" "$T/o3b")
is "$st $(jf "$T/o3b" 'j["choices"][0]["finish_reason"], j["guardd"]["request_verdict"]["decision"], j["guardd"]["response_verdict"]')" \
    "200 content_filter block None" "not streamed: content_filter, the request's verdict, no response verdict"
post a "$(msg false 'marker [script safe 1]')" "$T/o3c" > /dev/null
is "$(( $(lines "$T/up.log") - n0 ))|$(lastlog "$T/up.log" 'j["script"]')" "1|['safe', '1']" \
    "the upstream saw only the request after them"

# 4. safe answers pass whole, streamed or not
st=$(post a "$(msg true 'Tell me a story [script safe 4]')" "$T/o4")
is "$st|$(sse "$T/o4")" "200|Once upon a time|stop|True|None|True" "a safe stream: all its text, stop, [DONE], the verdicts"
st=$(post a "$(msg false 'Tell me a story [script safe 4]')" "$T/o5")
is "$st $(jf "$T/o5" 'j["choices"][0]["message"]["content"], j["choices"][0]["finish_reason"], j["guardd"]["request_verdict"]["role"], j["guardd"]["response_verdict"]["role"], j["guardd"]["response_verdict"]["decision"], j["usage"]["total_tokens"]')" \
    "200 Once upon a time stop user assistant allow 11" \
    "not streamed: one completion, the whole text, the verdicts (the answer judged as the assistant's), the upstream's usage"
st=$(post a "$(msg false 'Tell me a story [script json]')" "$T/o6")
is "$st $(jf "$T/o6" 'j["choices"][0]["message"]["content"], j["usage"]["total_tokens"]')" \
    "200 Once upon a time there was a kind dragon. 15" "an upstream that does not stream: checked whole, its usage passed on"

# 5. upstream failures: OpenAI-shaped, never a hang (the requests side by side)
post a "$(msg false 'hi [script status 500]')" "$T/e1" > "$T/e1.st" &
post a "$(msg false 'hi [script status 400]')" "$T/e2" > "$T/e2.st" &
post a "$(msg false 'hi [script hang]')" "$T/e3" > "$T/e3.st" &
post a "$(msg true 'hi [script hanghead]')" "$T/e4" > "$T/e4.st" &
post a "$(msg true 'hi [script cut 2]')" "$T/e5" > "$T/e5.st" &
post a "$(msg false 'hi [script garbage]')" "$T/e6" > "$T/e6.st" &
post a '{"model": "m", "n": 2, "messages": [{"role": "user", "content": "hi"}]}' "$T/e7" > "$T/e7.st" &
post a '{"model": "m", "tools": [], "messages": [{"role": "user", "content": "hi"}]}' "$T/e8" > "$T/e8.st" &
post a '{"model": "m", "messages": [{"role": "user", "content": 5}]}' "$T/e9" > "$T/e9.st" &
post a '{"model": "m", "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi [script safe 2]"}]}' "$T/e10" > "$T/e10.st" &
wait_posts() { for f in "$@"; do i=0; until [ -s "$T/$f.st" ]; do i=$((i + 1)); [ $i -gt 1500 ] && break; sleep 0.02; done; done; }
wait_posts e1 e2 e3 e4 e5 e6 e7 e8 e9 e10
is "$(cat "$T/e1.st") $(jf "$T/e1" 'j["error"]["type"], j["error"]["code"]')" "502 upstream_error upstream_status" "an upstream 500: 502"
is "$(cat "$T/e2.st") $(jf "$T/e2" 'j["error"]["code"], "scripted failure" in j["error"]["message"]')" "400 upstream_refused True" \
    "an upstream 400: passed on with its message"
is "$(cat "$T/e3.st") $(jf "$T/e3" 'j["error"]["code"]')" "504 upstream_timeout" "a silent upstream: 504 after upstream.timeout_ms"
is "$(cat "$T/e4.st") $(jf "$T/e4" 'j["error"]["code"]')" "504 upstream_timeout" "no answer at all, streamed: 504"
# (as a 502 when no text was released yet, else as an error event ending the stream)
case "$(cat "$T/e5.st")|$(sse "$T/e5" 2>/dev/null | cut -d'|' -f3,4)" in
"200|False|upstream_closed") ok 0 "a stream cut short: an error event, no [DONE]" ;;
502*) is "$(jf "$T/e5" 'j["error"]["code"]')" upstream_closed "a stream cut short before any release: 502" ;;
*) ok 1 "a stream cut short: $(cat "$T/e5.st") $(cat "$T/e5")" ;;
esac
is "$(cat "$T/e6.st") $(jf "$T/e6" 'j["error"]["code"]')" "502 upstream_bad_response" "garbage from the upstream: 502"
is "$(cat "$T/e7.st") $(jf "$T/e7" '"n:" in j["error"]["message"]')" "400 True" "n: 2 refused, named"
is "$(cat "$T/e8.st") $(jf "$T/e8" '"tools" in j["error"]["message"]')" "400 True" "tools refused, named"
is "$(cat "$T/e9.st")" 400 "a malformed message: 400"
is "$(cat "$T/e10.st") $(jf "$T/e10" 'j["choices"][0]["message"]["content"]')" "200 Once upon" "a developer message is the system prompt"

metrics=$(curl -s --max-time 10 --unix-socket "$T/a.http" http://guardd/metrics)
m() { echo "$metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
is "$(m guardd_stream_blocks_total) $(m guardd_upstream_blocked_requests_total) $(m guardd_upstream_requests_total) $(m guardd_upstream_errors_total)" \
    "2 2 13 6" "/metrics: 2 stream blocks, 2 requests blocked before the upstream, 13 forwarded, 6 upstream errors"

# 6. TLS with a certificate made here: refused without its CA, accepted with it
st=$(post noca "$(msg false 'Tell me a story [script safe 4]')" "$T/t1")
is "$st $(jf "$T/t1" 'j["error"]["code"]')" "502 upstream_tls" "https, the system's CAs: the self-signed upstream refused"
st=$(post ca "$(msg true 'Tell me a story [script safe 4]')" "$T/t2")
is "$st|$(sse "$T/t2" | cut -d'|' -f1-3)" "200|Once upon a time|stop|True" "https with upstream.ca_file: accepted, the stream passed"

# a client that vanishes while the upstream works: the upstream connection is closed too
n0=$(lines "$T/tls.log")
post ca "$(msg true 'hi [script hang]')" "$T/t3" --max-time 1 > /dev/null
i=0
until [ "$(lines "$T/tls.log")" -gt "$n0" ]; do i=$((i + 1)); [ $i -gt 500 ] && break; sleep 0.02; done
is "$(lastlog "$T/tls.log" 'j["script"], j["client_closed"]')" "['hang'] True" \
    "a client gone mid-stream: the upstream saw its connection closed"

# 7. a guardd hosting the rigged generator as the upstream of another: the same text
body='{"model": "rig-gen-safe-l3.gguf", "temperature": 0, "max_tokens": 40, "messages": [{"role": "user", "content": "Tell me a story."}]}'
# (generous bounds: generating is slow under the sanitizers of make check-asan)
st=$(curl -s --max-time 120 -H 'Content-Type: application/json' -d "$body" -o "$T/d1" -w '%{http_code}' \
	"http://127.0.0.1:$PB/v1/chat/completions")
if [ "$st" != 200 ]; then
	ok 0 "# skip the generator's guardd does not serve /v1/chat/completions ($st)"
	ok 0 "# skip the same"
else
	post chain "$body" "$T/d2" --max-time 120 > /dev/null
	direct=$(jf "$T/d1" 'j["choices"][0]["message"]["content"]')
	is "$(jf "$T/d2" 'j["choices"][0]["message"]["content"]')" "$direct" "proxied through a guardd, the text equals the direct one ($(echo "$direct" | wc -c) bytes)"
	sbody=$(echo "$body" | sed 's/"temperature"/"stream": true, "temperature"/')
	post chain "$sbody" "$T/d3" --max-time 120 > /dev/null
	is "$(sse "$T/d3" | cut -d'|' -f1)" "$direct" "streamed through it too"
fi
done_testing
