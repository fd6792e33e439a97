#!/bin/sh
# Llama 3.2-Vision through `guard quantize` (tests/t_mllama_gguf.c checks the files): the F16,
# Q8_0 and Q4_K_M GGUFs of tiny-mllama, a truncated one, and tests/mkmodel's own tiny-mllama
# writer, byte for byte the reference writer's (mkref.py) files.   t_mllama_gguf.sh BUILD
. tests/tap.sh
B=${1:-build}
M=$B/models/tiny-mllama
[ -f "$M/model.safetensors.index.json" ] || skip_all "tiny-mllama not built (../shared absent)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$B/tests/mkmodel" tiny-mllama hf "$T/py" f32 2>/dev/null  # $M is mkref.py's (tests/mkmodels.sh)
same=0 n=0
for f in config.json preprocessor_config.json generation_config.json spec.json chat_template.json \
    tokenizer.json tokenizer_config.json model.safetensors.index.json \
    model-00001-of-00002.safetensors model-00002-of-00002.safetensors; do
	n=$((n + 1))
	cmp -s "$M/$f" "$T/py/$f" && same=$((same + 1))
done
is "$same/$n" "$n/$n" "mkmodel tiny-mllama writes every file of mkref.py's byte for byte"
rm -rf "$T/py"
"$B/tests/mkmodel" tiny-mllama hf "$T/f16" f16 2>/dev/null
ok "$(./guard quantize -q "$T/f16" "$T/f16.gguf" F16 >/dev/null 2>"$T/err"; echo $?)" \
    "guard quantize F16 from the F16 directory"
ok "$(./guard quantize -q "$M" "$T/q8.gguf" Q8_0 >/dev/null 2>"$T/err"; echo $?)" \
    "guard quantize Q8_0 from the reference's F32 directory"
ok "$(./guard quantize -q "$M" "$T/q4.gguf" Q4_K_M >"$T/q4.out" 2>"$T/err"; echo $?)" \
    "guard quantize Q4_K_M"
like "$(cat "$T/q4.out")" "Q6_K" "and reports its Q6_K tensors: $(tr '\n' ' ' < "$T/q4.out")"
head -c 30000000 "$T/q8.gguf" > "$T/cut.gguf"
# the C test's TAP, renumbered into this stream
"$B/tests/t_mllama_gguf" "$T/f16" "$T/f16.gguf" "$T/q8.gguf" "$T/q4.gguf" "$T/cut.gguf" \
    >"$T/c.tap" 2>&1
crc=$?
while IFS= read -r line; do
	case "$line" in
	"ok "*) ok 0 "$(printf '%s\n' "$line" | sed -E 's/^ok [0-9]+ (- )?//')" ;;
	"not ok "*) ok 1 "$(printf '%s\n' "$line" | sed -E 's/^not ok [0-9]+ (- )?//')" ;;
	"1..0"*) ok 1 "t_mllama_gguf skipped: $line" ;;
	"1.."*) ;;
	*) printf '# %s\n' "$line" ;;
	esac
done <"$T/c.tap"
is "$crc" 0 "t_mllama_gguf exits 0"
./guard logits -m "$T/cut.gguf" --ids "128000 9906" --top 1 >/dev/null 2>"$T/err"
like "$(cat "$T/err")" "cut.gguf" "guard logits on the truncated file names it: $(cat "$T/err")"
done_testing
