#!/bin/sh
# report.sh - make eval: guard eval on both shipped sets, one report (text and JSON).
# Usage: eval/report.sh GUARD MODEL OUTDIR [POLICY]. Resumable: the per-item verdicts stay
# in OUTDIR/*.jsonl, so a rerun after an interruption finishes the rest.
set -e
guard=$1 model=$2 out=$3 policy=$4
[ -n "$model" ] || { echo "usage: make eval MODEL=model.gguf [POLICY=policy.yaml]" >&2; exit 2; }
mkdir -p "$out"
set -- ${policy:+--policy "$policy"}
for s in openai:eval/openai-moderation-samples-1680.jsonl.gz xstest:eval/xstest_prompts.csv; do
	name=${s%%:*} set=${s#*:}
	"$guard" eval -m "$model" "$@" --out "$out/$name.jsonl" --plot "$out/$name.svg" --json "$set" \
		> "$out/$name.json"
	"$guard" eval -m "$model" "$@" --out "$out/$name.jsonl" "$set" > "$out/$name.txt" 2>/dev/null
done
{
	echo "guard eval, $(date -u +%Y-%m-%dT%H:%MZ), model $model${policy:+, policy $policy}"
	echo "Reference (Meta's model card, Llama Guard 3 1B): F1 0.899, FPR 0.090 on Meta's"
	echo "English test set; F1 0.821 on XSTest. Test models give meaningless numbers."
	echo
	cat "$out/openai.txt"
	echo
	cat "$out/xstest.txt"
} > "$out/report.txt"
cat "$out/report.txt"
echo "make eval: report in $out/report.txt, JSON in $out/{openai,xstest}.json, plots in $out/*.svg" >&2
