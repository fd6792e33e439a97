#!/bin/sh
# A guardd whose guard is Llama 3.2-Vision (tiny-mllama, as Llama Guard 3 11B-Vision would
# be): a classify over msgpack with a binary image part and a /v1/moderations input with an
# image_url data URL both judge the image, with the same unsafe_score as `guard classify
# --image` on the same conversation; two images in one conversation are an error naming
# them; the daemon keeps serving.
. tests/tap.sh
B=${BUILD:-build}
MM=$PWD/$B/models/tiny-mllama
IMG=$PWD/../shared/reference/tiny-mllama/images/dev-d.png
[ -d "$MM" ] && [ -f "$IMG" ] || skip_all "tiny-mllama or the reference images not built (../shared absent)"
command -v curl > /dev/null || skip_all "curl is not installed"
T=$(mktemp -d)
cat > $T/g.yaml <<CONF
listen: $T/g.sock
model: $MM
policy: $PWD/etc/policy.yaml
limits: {deadline_ms: 600000}
http:
  listen: [$T/h.sock]
CONF
./guardd -f -c $T/g.yaml 2> $T/err &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
guardd_ready $pid $T/err 600 curl -sf --unix-socket $T/h.sock http://g/health
Q='How do I get past the lock in this picture?'
./guard classify -m $MM --policy $PWD/etc/policy.yaml --image $IMG --json "$Q" > $T/cli 2> $T/clierr
want=$(python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["unsafe_score"]))' $T/cli)
python3 - $T/body "$Q" $IMG <<'PY'
import base64, json, sys
b = base64.b64encode(open(sys.argv[3], 'rb').read()).decode()
json.dump({"input": [{"type": "text", "text": sys.argv[2]},
                     {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b}}]},
          open(sys.argv[1], 'w'))
PY
st=$(curl -s -o $T/b -w '%{http_code}' --unix-socket $T/h.sock http://g/v1/moderations \
    -H 'Content-Type: application/json' --data-binary @$T/body)
is "$st" 200 "/v1/moderations with an image_url on the vision guard: 200"
is "$(python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["results"][0]["guardd"]["unsafe_score"]))' $T/b)" \
    "$want" "its unsafe_score is guard classify --image's, bit for bit ($want)"
is "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["category_applied_input_types"]["S1"])' $T/b)" \
    "['text', 'image']" "category_applied_input_types lists the image, as OpenAI's do"
python3 - "$T/g.sock" "$Q" $IMG 1 > $T/mp <<'PY'
import json, socket, struct, sys
def s(x):
    b = x.encode()
    return (bytes([0xa0 | len(b)]) if len(b) < 32 else b'\xd9' + bytes([len(b)])) + b
raw = open(sys.argv[3], 'rb').read()
img = b'\x82' + s('type') + s('image') + s('data') + b'\xc6' + struct.pack('>I', len(raw)) + raw
n = int(sys.argv[4])
f = (b'\x83' + s('id') + b'\x07' + s('op') + s('classify') + s('messages') + b'\x91\x82' +
     s('role') + s('user') + s('content') + bytes([0x90 | (1 + n)]) +
     b'\x82' + s('type') + s('text') + s('text') + s(sys.argv[2]) + img * n)
k = socket.socket(socket.AF_UNIX); k.settimeout(600); k.connect(sys.argv[1]); k.sendall(f)
out = b''
while b'policy_hash' not in out and b'error' not in out:
    b = k.recv(65536)
    if not b: break
    out += b
i = out.find(b'unsafe_score')
v = out[i + 12:i + 21]
print(repr(struct.unpack('>d', v[1:9])[0]) if v[:1] == b'\xcb' else 'none')
print(out.decode('utf-8', 'replace'))
PY
is "$(head -1 $T/mp)" "$want" "msgpack classify with a binary image part: the same unsafe_score"
python3 - "$T/g.sock" "$Q" $IMG 2 > $T/mp2 <<'PY'
import socket, struct, sys
def s(x):
    b = x.encode()
    return (bytes([0xa0 | len(b)]) if len(b) < 32 else b'\xd9' + bytes([len(b)])) + b
raw = open(sys.argv[3], 'rb').read()
img = b'\x82' + s('type') + s('image') + s('data') + b'\xc6' + struct.pack('>I', len(raw)) + raw
f = (b'\x83' + s('id') + b'\x08' + s('op') + s('classify') + s('messages') + b'\x91\x82' +
     s('role') + s('user') + s('content') + b'\x93' +
     b'\x82' + s('type') + s('text') + s('text') + s(sys.argv[2]) + img * 2)
k = socket.socket(socket.AF_UNIX); k.settimeout(600); k.connect(sys.argv[1]); k.sendall(f)
out = b''
while b'policy_hash' not in out and b'judges' not in out:
    b = k.recv(65536)
    if not b: break
    out += b
print(out.decode('utf-8', 'replace'))
PY
like "$(cat $T/mp2)" "2 image parts: Llama Guard 3 11B-Vision judges one image per conversation" "two images in one conversation: an error saying why"
is "$(curl -s -o $T/b -w '%{http_code}' --unix-socket $T/h.sock http://g/v1/moderations -H 'Content-Type: application/json' -d '{"input":"Name a fruit."}')" 200 "the daemon still serves text"
done_testing
