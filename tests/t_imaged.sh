#!/bin/sh
# Image parts through a running guardd (the rigged text-only guard and generator): over
# msgpack (a binary image part) and HTTP (image_url data URLs in /v1/moderations and
# /v1/chat/completions). A text-only guard never judges the text alone: the request gets an
# error naming the image (or the policy's on_error); bad parts are refused naming the part;
# the daemon keeps serving.
. tests/tap.sh
B=${BUILD:-build}
M=$PWD/$B/models
LG=$M/rig-l3.gguf
GEN=$M/rig-gen-l3.gguf
[ -f "$LG" ] && [ -f "$GEN" ] || skip_all "test models not built (../shared absent)"
command -v curl > /dev/null || skip_all "curl is not installed"
T=$(mktemp -d)
S=$T/g.sock
H=$T/h.sock
cat > $T/guardd.yaml <<CONF
listen: $S
model: $LG
policy: $PWD/etc/policy.yaml
generator: {model: $GEN, temperature: 0}
limits: {max_images: 2, max_image_bytes: 1000}
http:
  listen: [$H]
CONF
./guardd -f -c $T/guardd.yaml 2> $T/err &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
guardd_ready $pid $T/err 300 curl -sf --unix-socket $H http://g/health
U="--unix-socket $H"
c() { curl -s -o $T/b -w '%{http_code}' $U -H 'Content-Type: application/json' "$@"; }
jf() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
PNG=iVBORw0KGgoAAf8=

# --- /v1/moderations --------------------------------------------------------------------
st=$(c http://g/v1/moderations -d '{"input":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,'$PNG'"}}]}')
body=$(cat $T/b)
is "$st" 200 "moderation with an image on a text-only guard: answered ($st)"
is "$(jf $T/b 'j["results"][0]["guardd"]["decision"]')" error \
    "not a verdict on the text alone: an error verdict (on_error applies)"
is "$(jf $T/b 'j["results"][0]["flagged"]')" True "the default on_error blocks: flagged"
like "$body" "reads text only" "the error says the guard reads text only: $body"
st=$(c http://g/v1/moderations -d '{"input":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}')
is "$st" 400 "a remote image URL: 400"
like "$(cat $T/b)" "input[0].image_url.url: remote image URLs are not fetched" "the part named"
st=$(c http://g/v1/moderations -d '{"input":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO*w0K"}}]}')
is "$st" 400 "bad base64: 400"
like "$(cat $T/b)" "invalid character '*' at offset 4" "the offset named"
big=$(head -c 1200 /dev/zero | base64 -w0)
st=$(c http://g/v1/moderations -d '{"input":[{"type":"image_url","image_url":{"url":"data:image/png;base64,'$big'"}}]}')
is "$st" 413 "an image over limits.max_image_bytes: 413"
like "$(cat $T/b)" "more than limits.max_image_bytes (1000)" "the limit named"
p='{"type":"image_url","image_url":{"url":"data:image/png;base64,'$PNG'"}}'
st=$(c http://g/v1/moderations -d '{"input":['$p','$p','$p']}')
is "$st" 413 "three images over limits.max_images 2: 413"
like "$(cat $T/b)" "input[2].image_url.url: more than 2 images" "the third part named"

# --- /v1/chat/completions -------------------------------------------------------------
st=$(c http://g/v1/chat/completions -d '{"messages":[{"role":"user","content":[{"type":"text","text":"describe"},'$p']}]}')
is "$st" 400 "chat with an image (no vision generator): 400"
like "$(cat $T/b)" "messages[0]: an image part, but the llama3 chat format (a text-only model) takes no images" "naming the part"

# --- msgpack: a binary image part -----------------------------------------------------
python3 - "$S" > $T/mp <<'PY'
import socket, sys
def s(x):
    b = x.encode(); return bytes([0xa0 | len(b)]) + b
raw = b'\x89PNG\r\n\x1a\n\x00\x01\xff'
f = (b'\x83' + s('id') + b'\x07' + s('op') + s('classify') + s('messages') + b'\x91\x82' +
     s('role') + s('user') + s('content') + b'\x92\x82' + s('type') + s('image') + s('data') +
     b'\xc4' + bytes([len(raw)]) + raw + b'\x82' + s('type') + s('text') + s('text') + s('hi'))
k = socket.socket(socket.AF_UNIX); k.settimeout(20); k.connect(sys.argv[1]); k.sendall(f)
out = b''
while True:
    b = k.recv(65536)
    if not b: break
    out += b
    if b'text only' in out or b'verdict' in out: break
print(out.decode('utf-8', 'replace'))
print('DECISION=error' if b'\xa8decision\xa5error' in out else 'DECISION=other')
PY
like "$(cat $T/mp)" "reads text only" "msgpack classify with a binary image part: the text-only guard says so: $(cat $T/mp | tr -cd '[:print:]' | cut -c1-160)"
like "$(cat $T/mp)" "DECISION=error" "its decision is error (on_error: block), no verdict on the text alone"

# --- still serving --------------------------------------------------------------------
is "$(c http://g/v1/moderations -d '{"input":"Name a fruit."}')" 200 "the daemon still serves text"
is "$(jf $T/b 'j["results"][0]["flagged"]')" False "with a verdict"
done_testing
