#!/bin/sh
# Chat with images (issue 12) on tiny-mllama as both the vision generator and the vision
# guard: the generator's image sequences (tests/t_genv.c), then guard chat --image in-process
# and over --socket, msgpack chat and /v1/chat/completions with image parts, the proxy with a
# vision guard, and the refusals (tests/t_imgchat.sh).
B=${BUILD:-build}
M=$B/models
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
if [ ! -f "$M/tiny-mllama/config.json" ]; then
	echo "1..0 # SKIP tiny-mllama not built (../shared absent)"
	exit 0
fi
python3 tests/mkpng.py "$T" || { echo "Bail out! tests/mkpng.py failed"; exit 1; }
sh tests/tapcat.sh <<LIST
$B/tests/t_genv $B/guard $M/tiny-mllama $M/tiny-l3 $T/red.png $T/blue.png
BUILD=$B IMGDIR=$T sh tests/t_imgchat.sh
LIST
