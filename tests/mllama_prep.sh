#!/bin/sh
# An mllama GGUF preprocesses images with the preprocessor_config.json `guard quantize` stored
# in it (guardd.mllama.preprocessor_json), not with files next to it: a GGUF of a directory
# whose preprocessor config has other image_mean/image_std gives that directory's logits, bit
# for bit (F16 from an F16 directory), and not the default one's; a GGUF with no stored copy
# uses Meta's values and says so; a malformed stored copy is refused naming the key, by
# guard and by guardd -t. `guard logits --image` runs the shared attach code
# (core/mllama_image.c), so this also checks that it does.   mllama_prep.sh BUILD
. tests/tap.sh
. tests/dlib.sh
mllama_ref "$1"
command -v python3 >/dev/null || skip_all "python3 absent (needed to patch a GGUF)"
T=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$T"' EXIT
IDS=$(jq -r '.cases[1].ids | join(" ")' "$R/reference.json")
IMG=$R/images/$(jq -r '.cases[1].images[0]' "$R/reference.json")
logits() {	# logits MODEL OUT: the full logits of the image case, raw floats
	./guard logits -m "$1" --ids "$IDS" --image "$IMG" -o "$2" > /dev/null 2> "$2.err"
}

"$B/tests/mkmodel" tiny-mllama hf "$T/def" f16 2>/dev/null
ok $? "an F16 tiny-mllama directory (the Hub's preprocessor config)"
cp -al "$T/def" "$T/mod"	# the same weights; a preprocessor config of its own
rm "$T/mod/preprocessor_config.json"
jq '.image_mean = [0.5, 0.5, 0.5] | .image_std = [0.5, 0.5, 0.5]' "$T/def/preprocessor_config.json" \
    > "$T/mod/preprocessor_config.json"
cp -al "$T/def" "$T/none"	# no preprocessor config at all
rm "$T/none/preprocessor_config.json"
for d in def mod none; do
	./guard quantize -q "$T/$d" "$T/$d.gguf" F16 > /dev/null 2> "$T/$d.qerr"
	ok $? "guard quantize F16 of the '$d' directory: $(cat "$T/$d.qerr")"
done

logits "$T/mod" "$T/mod.dir"; ok $? "logits of the 'mod' directory"
logits "$T/mod.gguf" "$T/mod.f"; ok $? "logits of its GGUF"
cmp -s "$T/mod.dir" "$T/mod.f"
ok $? "the GGUF preprocesses with its stored copy: the directory's logits, bit for bit"
logits "$T/def.gguf" "$T/def.f"; ok $? "logits of the default directory's GGUF"
! cmp -s "$T/def.f" "$T/mod.f"
ok $? "other image_mean/image_std in the stored copy change the logits"
logits "$T/def" "$T/def.dir"
cmp -s "$T/def.dir" "$T/def.f"; ok $? "the default GGUF: its directory's logits, bit for bit"
is "$(cat "$T/mod.f.err" "$T/def.f.err")" "" "no warning for files that store a preprocessor config"
# the stored copy wins over a file next to the GGUF (there is none for a file anyway)
mkdir "$T/side" && ln "$T/mod.gguf" "$T/side/m.gguf" && cp "$T/def/preprocessor_config.json" "$T/side/"
logits "$T/side/m.gguf" "$T/side.f"
cmp -s "$T/side.f" "$T/mod.f"; ok $? "a preprocessor_config.json beside the GGUF is not read"

logits "$T/none.gguf" "$T/none.f"; ok $? "logits of a GGUF with no stored preprocessor config"
cmp -s "$T/none.f" "$T/def.f"; ok $? "... Meta's defaults: the Hub config's logits, bit for bit"
like "$(cat "$T/none.f.err")" "stores no preprocessor_config.json (guardd.mllama.preprocessor_json); image preprocessing uses Meta's defaults (560 px tiles" \
    "... and a warning says so: $(cat "$T/none.f.err")"

# malformed stored copies, patched in place (the last: not JSON, named by line and column);
# a geometry other than the vision tower's would have it read past the pixels: refused too (same length: the GGUF's layout is unchanged)
patch() {	# patch FROM TO: def.gguf with every FROM of its stored JSON made TO
	python3 - "$T/def.gguf" "$T/bad.gguf" "$1" "$2" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
key = b'guardd.mllama.preprocessor_json'
k = b.index(key) + len(key)
assert struct.unpack_from('<I', b, k)[0] == 8	# a string: u64 length, then the bytes
n = struct.unpack_from('<Q', b, k + 4)[0]
i = k + 12
f, t = sys.argv[3].encode(), sys.argv[4].encode()
assert len(f) == len(t) and f in b[i:i + n]
open(sys.argv[2], 'wb').write(b[:i] + b[i:i + n].replace(f, t) + b[i + n:])
PY
}
for case in '0.26130258|"0.261302"|: image_std[1]: expected a number' \
    '"resample": 2|"resample": 3|: resample: 3 is not 2 (bilinear)' \
    '"height": 560|"height": 561|: size: expected equal height and width, got 561x560' \
    '"do_pad": true|"do_pad": 1234|: do_pad: expected true or false' \
    '"max_image_tiles": 4|"max_image_tiles": 2|: max_image_tiles: 2 is not the model'"'"'s max_num_tiles (4)' \
    '": 560|": 448|: size: 448 is not the model'"'"'s image_size (560)' \
    '{|[|:2:19: '"']' expected near ':'"; do
	from=${case%%|*} rest=${case#*|}
	to=${rest%%|*} want=${rest#*|}
	patch "$from" "$to" || { ok 1 "patching $from"; continue; }
	./guard logits -m "$T/bad.gguf" --ids "$IDS" --image "$IMG" --top 1 > /dev/null 2> "$T/err"
	rc=$?
	isnt "$rc" 0 "stored '$to' for '$from': guard refuses the file (exit $rc)"
	like "$(cat "$T/err")" "bad.gguf: guardd.mllama.preprocessor_json$want" "... naming the key: $(cat "$T/err")"
done
# guardd with that guard: its log says so at start
cat > "$T/n.yaml" <<CONF
listen: $T/n.sock
model: $T/none.gguf
policy: $PWD/etc/policy.yaml
CONF
./guardd -f -c "$T/n.yaml" 2> "$T/n.err" &
pid=$!
guardd_ready $pid "$T/n.err" 600 ./guard ping --socket "$T/n.sock"
like "$(cat "$T/n.err")" "none.gguf: the file stores no preprocessor_config.json (guardd.mllama.preprocessor_json); image preprocessing uses Meta's defaults" \
    "guardd logs the same warning at start"
kill $pid
patch '"resample": 2' '"resample": 3'
cat > "$T/g.yaml" <<CONF
listen: $T/g.sock
model: $T/bad.gguf
policy: $PWD/etc/policy.yaml
CONF
out=$(./guardd -t -c "$T/g.yaml" 2>&1); rc=$?
isnt "$rc" 0 "guardd -t refuses a guard whose stored preprocessor config is malformed (exit $rc)"
like "$out" "guardd.mllama.preprocessor_json: resample: 3 is not 2" "... naming the key: $out"
done_testing
