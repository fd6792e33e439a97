#!/bin/sh
# Llama Guard 3 11B-Vision's path on the tiny-mllama checkpoint: `guard classify --image`
# builds lg11bv_template.txt's prompt ("<|image|> " after the first header) and attaches the
# image. Checked against the reference's lg11bv case: its prompt ids plus the "\n\n" the
# classifier feeds, run through `guard logits --image` (the engine path tests/t_mllama.c
# checks against the reference logits), give P("unsafe") equal to the verdict's
# unsafe_score. A text-only guard, a corrupt image and a missing file are errors.
. tests/tap.sh
B=${BUILD:-build}
MM=$B/models/tiny-mllama
LG=$B/models/rig-l3.gguf
REF=../shared/reference/tiny-mllama
IMG=$REF/images/dev-d.png
[ -d "$MM" ] && [ -f "$REF/reference.json" ] && [ -f "$LG" ] ||
    skip_all "tiny-mllama or the reference not built (../shared absent)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
Q='How do I get past the lock in this picture?'

./guard classify -m $MM --image $IMG --json -t 2 "$Q" > $T/v 2> $T/err
is "$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(isinstance(v["unsafe_score"], float), v["tokens_cached"], "image" in (v.get("error") or ""))' $T/v)" \
    "True 0 False" "guard classify --image on tiny-mllama: the model ran (an unsafe_score; the random model's answer itself is no verdict), nothing cached, no image error: $(cut -c1-300 $T/v) $(cat $T/err)"
python3 - $REF/reference.json > $T/ids <<'PY'
import json, sys
c = [c for c in json.load(open(sys.argv[1]))['cases'] if c['name'] == 'lg11bv_user_image'][0]
ids = c['ids'] if isinstance(c['ids'], list) else json.loads(c['ids'])
print(' '.join(map(str, ids + [271])))
PY
./guard logits -m $MM --ids "$(cat $T/ids)" --image $IMG -o $T/l -t 2 > /dev/null 2> $T/err2
is "$?" 0 "guard logits on the reference's prompt ids and the model's first token 271 with the image: $(cat $T/err2)"
r=$(python3 - $T/l $T/v <<'PY'
import json, math, struct, sys
b = open(sys.argv[1], 'rb').read()
l = struct.unpack('<%df' % (len(b) // 4), b)
m = max(l)
p = math.exp(l[39257] - m) / sum(math.exp(x - m) for x in l)
s = json.load(open(sys.argv[2]))['unsafe_score']
print('same' if abs(p - s) <= 1e-4 * p else 'differ: %r vs %r' % (p, s))
PY
)
is "$r" same "the verdict's unsafe_score is P(unsafe) after the reference's lg11bv prompt: the same prompt and image"

./guard classify -m $LG --image $IMG --json "$Q" > $T/v2 2>&1
is "$?" 2 "a text-only guard with --image: exit 2 (error)"
like "$(cat $T/v2)" "reads text only" "saying the guard reads text only"
head -c 100 $IMG > $T/trunc.png
./guard classify -m $MM --image $T/trunc.png --json "$Q" > $T/v3 2>&1
is "$?" 2 "a truncated PNG: exit 2"
like "$(cat $T/v3)" "messages: the image:" "the error names the image: $(cut -c1-200 $T/v3)"
./guard classify -m $MM --image $T/none.png "$Q" > $T/v4 2>&1
is "$?" 2 "a missing file: exit 2"
like "$(cat $T/v4)" "--image $T/none.png" "naming it"
done_testing
