#!/bin/sh
# guard logits/generate with --image on Llama 3.2-Vision (tiny-mllama): the reference's top 10
# and greedy tokens for l32v_image_first, and clear refusals: an image for a text-only model,
# images not matching the <|image|> tokens, a truncated PNG; the preprocessor config the
# shared attach code reads.   t_mllama_cli.sh BUILD
. tests/tap.sh
. tests/dlib.sh
mllama_ref "$1"
G=./guard
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
IDS=$(jq -r '.cases[1].ids | join(" ")' "$R/reference.json")
IMG=$R/images/$(jq -r '.cases[1].images[0]' "$R/reference.json")

out=$($G logits -m "$M" --ids "$IDS" --image "$IMG" --top 10 2>"$T/err"); rc=$?
is "$rc" 0 "logits with --image runs"
is "$(printf '%s\n' "$out" | awk '{ print $1 }' | tr '\n' ' ')" \
    "$(jq -r '[.cases[1].top10[][0]] | join(" ")' "$R/reference.json") " \
    "the top 10 ids are the reference's, in its order"
out=$($G generate -m "$M" --ids "$IDS" --image "$IMG" -n 8 2>"$T/err"); rc=$?
is "$rc" 0 "generate with --image runs"
is "$(echo $out)" "$(jq -r '.cases[1].greedy | join(" ")' "$R/reference.json")" \
    "the 8 greedy tokens are the reference's"

$G logits -m "$B/models/tiny-l3" --ids "128000 9906" --image "$IMG" --top 1 >/dev/null 2>"$T/err"
rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "a text-only model refuses --image (exit $rc)"
like "$(cat "$T/err")" "text-only model takes no --image" "and says so"
$G logits -m "$M" --ids "$IDS" --top 1 >/dev/null 2>"$T/err"; rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "an <|image|> token without --image fails (exit $rc)"
like "$(cat "$T/err")" "the <|image|> token at position 5 is image 1, and the sequence has 0" \
    "and names the token's position"
$G logits -m "$M" --ids "128000 9906" --image "$IMG" --top 1 >/dev/null 2>"$T/err"; rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "an --image without an <|image|> token fails (exit $rc)"
like "$(cat "$T/err")" "1 image(s) for 0 <|image|> token(s)" "and counts both"
head -c 3000 "$IMG" > "$T/cut.png"
$G logits -m "$M" --ids "$IDS" --image "$T/cut.png" --top 1 >/dev/null 2>"$T/err"; rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "a truncated PNG fails (exit $rc)"
like "$(cat "$T/err")" "$T/cut.png" "and the message names the file: $(cat "$T/err")"
# the images go through core/mllama_image.c as the guard's do: a directory without a
# preprocessor_config.json gets Meta's values (the Hub file's, so the same logits) and a
# warning; one of another geometry than the vision tower's is refused naming the key
cp -al "$M" "$T/nopre" && rm "$T/nopre/preprocessor_config.json"
$G logits -m "$M" --ids "$IDS" --image "$IMG" -o "$T/l.hub" >/dev/null 2>"$T/err"
$G logits -m "$T/nopre" --ids "$IDS" --image "$IMG" -o "$T/l.none" >/dev/null 2>"$T/err"; rc=$?
is "$rc" 0 "logits --image with no preprocessor_config.json runs"
cmp -s "$T/l.hub" "$T/l.none"; ok $? "... with Meta's values: the Hub config's logits, bit for bit"
like "$(cat "$T/err")" "no preprocessor_config.json in the directory; image preprocessing uses Meta's defaults" \
    "... and a warning says so: $(cat "$T/err")"
jq '.max_image_tiles = 2' "$M/preprocessor_config.json" > "$T/nopre/preprocessor_config.json"
$G logits -m "$T/nopre" --ids "$IDS" --image "$IMG" --top 1 >/dev/null 2>"$T/err"; rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "a preprocessor config of 2 tiles for a 4-tile tower is refused (exit $rc)"
like "$(cat "$T/err")" "preprocessor_config.json: max_image_tiles: 2 is not the model's max_num_tiles (4)" \
    "... naming the key: $(cat "$T/err")"
done_testing
