#!/bin/sh
# Chat with images end to end, tiny-mllama as the vision generator and the vision guard:
# guard chat --image in-process, the same answer over --socket (msgpack bin parts, streamed),
# /v1/chat/completions with an image_url data URL (whole and streamed), the response check
# judging the image (its unsafe_score is guard classify --image's on the conversation plus
# the answer, bit for bit); the refusals: a text-only generator (400 naming the part), a
# text-only guard (the answer is refused, fail closed, without generating); the proxy with a
# vision guard forwarding the image_url unchanged to tests/upstream.py, and with a text-only
# one refusing it (400).
# tiny-mllama's hash-noise guard answers no verdict, so the policy lets errors through
# (on_error: allow) for the chats to go on; the scores are still the image's.
. tests/tap.sh
B=${BUILD:-build}
M=$PWD/$B/models
MM=$M/tiny-mllama
TL=$M/tiny-l3
RED=$IMGDIR/red.png
[ -f "$MM/config.json" ] && [ -f "$RED" ] || skip_all "tiny-mllama or the test image absent"
command -v curl > /dev/null || skip_all "curl is not installed"
T=$(mktemp -d)
pids=""
trap 'kill $pids 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
bail() { echo "Bail out! $*"; exit 1; }
printf 'on_error: allow\n' > $T/pol.yaml
Q='Describe the picture.'

python3 tests/upstream.py "$T/up.port" "$T/up.log" & pids="$pids $!"
# name guard generator [more yaml]: a guardd with a socket and an HTTP front
conf() {
	cat > "$T/$1.yaml" <<CONF
listen: $T/$1.sock
model: $2
policy: $T/pol.yaml
threads: 1
limits: {deadline_ms: 600000}
stream: {check_every: 64}
http:
  listen: [$T/$1.http]
$3
CONF
}
i=0
until [ -s "$T/up.port" ]; do
	i=$((i + 1)); [ $i -gt 500 ] && bail "tests/upstream.py did not start"; sleep 0.02
done
conf v $MM "generator: {model: $MM, deadline_ms: 600000}"
conf tg $TL "generator: {model: $MM}"
conf tm $MM "generator: {model: $TL}"
conf p $MM "upstream: {url: \"http://127.0.0.1:$(cat $T/up.port)/v1\", timeout_ms: 600000}"
conf pt $TL "upstream: {url: \"http://127.0.0.1:$(cat $T/up.port)/v1\"}"
for n in v tg tm p pt; do
	./guardd -f -c "$T/$n.yaml" 2> "$T/$n.err" & pids="$pids $!"
done
for n in v tg tm p pt; do
	i=0
	until ./guard ping --socket "$T/$n.sock" > /dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 600 ] && bail "guardd $n did not start: $(cat "$T/$n.err")"
		sleep 0.1
	done
done
jf() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
# body FILE [stream]: a chat with the image as an image_url data URL before the text
body() {
	python3 - "$1" "$Q" "$RED" "$2" <<'PY'
import base64, json, sys
u = "data:image/png;base64," + base64.b64encode(open(sys.argv[3], "rb").read()).decode()
json.dump({"messages": [{"role": "user", "content": [
    {"type": "image_url", "image_url": {"url": u}}, {"type": "text", "text": sys.argv[2]}]}],
    "temperature": 0, "max_tokens": 8, "stream": sys.argv[4] == "stream"}, open(sys.argv[1], "w"))
PY
}
post() {
	curl -s -N --max-time 600 --unix-socket "$T/$1.http" -H 'Content-Type: application/json' \
		--data-binary @"$2" -o "$3" -w '%{http_code}' http://g/v1/chat/completions
}

# in-process: the reference answer
./guard chat -m $MM --guard $MM --policy $T/pol.yaml --image $RED --temp 0 -n 8 -t 1 \
    --check-every 64 --json "$Q" > $T/local.json 2> $T/local.err
is "$?" 0 "guard chat --image in-process answers (exit 0)"
L=$(jf $T/local.json 'j["text"]')
ok "$([ -n "$L" ]; echo $?)" "with some text: '$L'"
./guard chat -m $MM --guard $MM --policy $T/pol.yaml --temp 0 -n 8 -t 1 --check-every 64 \
    --json "$Q" > $T/noimg.json 2> /dev/null
N=$(jf $T/noimg.json 'j["text"]')
ok "$([ -n "$N" ] && [ "$N" != "$L" ]; echo $?)" "without the image the answer differs: '$N'"

# over the socket: msgpack bin parts, streamed
./guard chat --socket $T/v.sock --image $RED --temp 0 -n 8 "$Q" > $T/sock 2> $T/sock.err
is "$?" 0 "guard chat --socket --image answers (exit 0)"
is "$(cat $T/sock)" "$L" "the same text as in-process"

# HTTP, whole and streamed
body $T/body
st=$(post v $T/body $T/h1)
is "$st" 200 "/v1/chat/completions with an image_url: 200"
is "$(jf $T/h1 'j["choices"][0]["message"]["content"]')" "$L" "the same text as in-process"
python3 - "$Q" "$L" > $T/conv.json <<'PY'
import json, sys
print(json.dumps({"messages": [{"role": "user", "content": sys.argv[1]},
                               {"role": "assistant", "content": sys.argv[2]}]}))
PY
./guard classify -m $MM --policy $T/pol.yaml --image $RED -t 1 --json < $T/conv.json > $T/cls.json 2>/dev/null
want=$(jf $T/cls.json 'repr(j["unsafe_score"])')
is "$(jf $T/h1 'repr(j["guardd"]["response_verdict"]["unsafe_score"])')" "$want" \
    "the response check judged the image: guard classify --image's score on the answer ($want)"
body $T/sbody stream
st=$(post v $T/sbody $T/h2)
is "$st" 200 "streamed: 200"
python3 - $T/h2 > $T/h2.txt <<'PY'
import json, sys
text, fin = "", None
for line in open(sys.argv[1]):
    if line.startswith("data: {"):
        c = json.loads(line[6:])["choices"][0]
        text += c["delta"].get("content") or ""
        fin = c.get("finish_reason") or fin
print(text)
print(fin)
PY
is "$(head -1 $T/h2.txt)" "$L" "the streamed deltas add up to the same text"
is "$(tail -1 $T/h2.txt)" "length" "and end with finish_reason length"

# a text-only generator: 400 naming the part; a text-only guard: refused, not generated
st=$(post tm $T/body $T/h3)
is "$st" 400 "a text-only generator: 400"
like "$(cat $T/h3)" "messages[0]: an image part, but the llama3 chat format" "naming the part"
st=$(post tg $T/body $T/h4)
is "$st" 200 "a text-only guard: 200 with a refusal"
is "$(jf $T/h4 'j["choices"][0]["finish_reason"], j["usage"]["completion_tokens"]')" \
    "('content_filter', 0)" "content_filter, and nothing was generated"
like "$(jf $T/h4 'j["guardd"]["response_verdict"]["error"]')" "this guard reads text only" \
    "the response verdict says why (fail closed despite on_error: allow)"
./guard chat -m $MM --guard $TL --policy $T/pol.yaml --image $RED -n 8 "$Q" > /dev/null 2> $T/tl.err
is "$?" 1 "in-process with a text-only guard: blocked (exit 1)"
like "$(cat $T/tl.err)" "reads text only" "and says why"

# the proxy: a vision guard judges the image, which goes upstream as received
st=$(post p $T/body $T/h5)
is "$st" 200 "proxy with a vision guard: 200"
is "$(jf $T/h5 'j["choices"][0]["message"]["content"]')" "Once upon a time" "the upstream's answer"
is "$(python3 -c 'import json,sys; b=json.loads(open(sys.argv[1]).readline())["body"]; print(b["messages"][0]["content"][0] == json.load(open(sys.argv[2]))["messages"][0]["content"][0])' $T/up.log $T/body)" \
    True "the upstream received the image_url part unchanged"
ok "$(jf $T/h5 '"unsafe_score" in j["guardd"]["response_verdict"]' | grep -qx True; echo $?)" \
    "the answer was checked"
st=$(post pt $T/body $T/h6)
is "$st" 400 "proxy with a text-only guard: 400"
like "$(cat $T/h6)" "the guard of this guardd reads text only" "saying why"
is "$(wc -l < $T/up.log)" 1 "and nothing went upstream"
for n in v tg tm p pt; do
	./guard ping --socket $T/$n.sock > /dev/null 2>&1
	is "$?" 0 "guardd $n still serves"
done
done_testing
