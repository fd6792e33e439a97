#!/bin/sh
# guard tokenize | logits | generate | bench from the outside: output, exit codes, errors.
. tests/tap.sh
B=${BUILD:-build}
M=$B/models
G=./guard
[ -d "$M/tiny-l3" ] || skip_all "test models not built (../shared absent)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# tokenize: all of stdin, byte for byte, no BOS
is "$(printf 'Hello world' | $G tokenize -m $M/tiny-l3)" "9906 1917" "tokenize: 'Hello world'"
is "$(printf 'Hello world\n' | $G tokenize -m $M/tiny-l3-bf16.gguf)" "9906 1917 198" "tokenize: the final newline is kept (GGUF vocabulary)"
is "$(printf '<|eot_id|>' | $G tokenize -m $M/tiny-l3)" "27 91 68 354 851 91 29" "tokenize: special-token text is plain text"
is "$(printf '<|eot_id|>' | $G tokenize -m $M/tiny-l3 --special)" "128009" "tokenize --special: recognised"
is "$(printf '' | $G tokenize -m $M/tiny-l3)" "" "tokenize: empty input, empty line"
is "$(printf 'Hello' | $G tokenize -m $M/tiny-l2-f32.gguf)" "15043" "tokenize: Llama 2 SentencePiece"
out=$(printf 'ab\377' | $G tokenize -m $M/tiny-l3 2>&1); rc=$?
is "$rc" 1 "tokenize: invalid UTF-8 exits 1"
like "$out" "invalid UTF-8 at byte offset 2" "tokenize: and names the offset"
is "$(printf 'Hello' | $G tokenize -m $M/tiny-l2)" "15043" "tokenize: Llama 2 SentencePiece from a HF directory's tokenizer.model"
# the same directory without its tokenizer.model (links to the other files)
mkdir $T/notok && ln -s "$(pwd)/$M/tiny-l2/config.json" "$(pwd)/$M/tiny-l2/model.safetensors" $T/notok/
out=$(printf 'x' | $G tokenize -m $T/notok 2>&1); rc=$?
is "$rc" 1 "tokenize: a model without a tokenizer exits 1"
like "$out" "the model has no tokenizer" "tokenize: and says so"

# logits
ids="128000 9906 11 856 5679 374 19369"
$G logits -m $M/tiny-l3 --ids "$ids" -o $T/l.f32; rc=$?
is "$rc" 0 "logits: exit 0"
is "$(wc -c < $T/l.f32 | tr -d ' ')" "$((128256 * 4))" "logits: one float32 per vocabulary entry"
cmp -s $T/l.f32 ../shared/reference/tiny-l3/logits-0.f32
ok $(( $? == 1 ? 0 : 1 )) "logits: float32, not a byte copy of the float64-derived reference"
top=$($G logits -m $M/tiny-l3 --ids "$ids" --top 3)
is "$(echo "$top" | wc -l | tr -d ' ')" 3 "logits --top 3: three lines"
is "$(echo "$top" | head -1 | cut -d' ' -f1)" 55472 "logits --top: the reference's best id first"
out=$($G logits -m $M/tiny-l3 --ids "1 2 abc" --top 1 2>&1); rc=$?
is "$rc" 1 "logits: a bad id list exits 1"
like "$out" "'abc' at offset 4 is not a token id" "logits: and says where"
out=$($G logits -m $M/tiny-l3 --ids "999999" --top 1 2>&1); rc=$?
is "$rc" 1 "logits: an id outside the vocabulary exits 1"
like "$out" "outside the vocabulary" "logits: and says so"
out=$($G logits -m $T/nothing.gguf --ids 1 --top 1 2>&1); rc=$?
is "$rc" 1 "logits: a missing model exits 1"
like "$out" "nothing.gguf" "logits: and names the file"

# a sharded checkpoint whose index names a tensor no shard has
cp -r $M/tiny-l3-sharded $T/shard
/usr/bin/python3 -c 'import json,sys; p=sys.argv[1]; j=json.load(open(p)); j["weight_map"]["model.layers.9.mlp.up_proj.weight"]="model-00001-of-00002.safetensors"; json.dump(j,open(p,"w"))' $T/shard/model.safetensors.index.json
out=$($G logits -m $T/shard --ids 1 --top 1 2>&1); rc=$?
is "$rc" 1 "a broken shard index: exit 1"
like "$out" "tensor 'model.layers.9.mlp.up_proj.weight' is listed but not in model-00001-of-00002.safetensors" "and the index entry is named"
printf '{"weight_map": {"x": "../escape.safetensors"}}' > $T/shard/model.safetensors.index.json
out=$($G logits -m $T/shard --ids 1 --top 1 2>&1)
like "$out" "not a plain file name" "a shard outside the directory is refused"

# generate: greedy continuation (reference case 'hello', first 8 tokens)
is "$($G generate -m $M/tiny-l3-f32.gguf --ids "$ids" -n 8)" "55472 55472 55472 55472 55472 55472 55472 55472" "generate: greedy ids"

# sampling: a seed reproduces a run; top-k 1 and temperature 0 are greedy
greedy=$($G generate -m $M/tiny-l3-f32.gguf --ids "$ids" -n 6)
is "$($G generate -m $M/tiny-l3-f32.gguf --ids "$ids" -n 6 --temp 1.5 --top-k 1)" "$greedy" "sampling with top-k 1 is greedy"
is "$($G generate -m $M/tiny-l3-f32.gguf --ids "$ids" -n 6 --temp 2 --top-p 0.000001)" "$greedy" "sampling with a tiny top-p is greedy"
a=$($G generate -m $M/tiny-l3-f32.gguf --ids "$ids" -n 12 --temp 5 --top-k 0 --top-p 1 --seed 7)
b=$($G generate -m $M/tiny-l3-f32.gguf --ids "$ids" -n 12 --temp 5 --top-k 0 --top-p 1 --seed 7)
c=$($G generate -m $M/tiny-l3-f32.gguf --ids "$ids" -n 12 --temp 5 --top-k 0 --top-p 1 --seed 8)
is "$a" "$b" "the same seed gives the same sample"
ok $([ "$a" != "$c" ] && [ "$a" != "$($G generate -m $M/tiny-l3-f32.gguf --ids "$ids" -n 12)" ] && echo 0 || echo 1) "another seed, or greedy, gives another sequence (flat random logits)"

# usage errors exit 2
$G logits --ids 1 >/dev/null 2>&1; is "$?" 2 "logits without -m: exit 2"
$G tokenize -m x --bogus >/dev/null 2>&1; is "$?" 2 "unknown option: exit 2"
$G frobnicate >/dev/null 2>&1; is "$?" 2 "unknown command: exit 2"
$G >/dev/null 2>&1; is "$?" 2 "no command: exit 2"
out=$($G generate -m $M/tiny-l3 --ids 1 2>&1); is "$?" 2 "generate without -n: exit 2"
like "$out" "usage: guard generate" "and prints the usage"

# bench --json
js=$($G bench -m $M/tiny-l3-bf16.gguf -p 16 -n 4 -r 1 --json); rc=$?
is "$rc" 0 "bench: exit 0"
for k in prefill_tok_s decode_tok_s load_s rss_mb threads weight_type; do
	like "$js" "\"$k\":" "bench --json has $k"
done
like "$js" '"weight_type": "BF16"' "bench: reports the stored type"
if command -v python3 >/dev/null; then
	echo "$js" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["prefill_tok_s"] > 0 and d["decode_tok_s"] > 0' 2>/dev/null
	ok $? "bench --json parses, with positive rates"
fi
done_testing
