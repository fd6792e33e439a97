#!/bin/sh
# Llama 3.2-Vision at the 11B shape (issue 12), not part of make check: a hash-noise BF16
# checkpoint in the Hub's layout (tests/mkmodel mllama-11b, 21 GB), then Q4_K_M and Q8_0 GGUFs
# made from it by guard quantize (text stack quantized, vision tower BF16 as stored), and for
# each: load, one 1-tile image encoded (wall and CPU), a 32-token prefill (<|begin_of_text|>,
# <|image|>, 30 text ids) and 8 decoded tokens at n_ctx 512 (tests/mllama_bench.c), peak RSS
# against file size + KV + 10 %. Needs 21 GB of disk under $BIG plus the largest GGUF (about
# 12 GB for Q8_0): each GGUF is removed after its run, the BF16 directory at the end (KEEP=1: kept).
#   BIG=DIR (default $BUILD/big)  TYPES="bf16 q4_k_m q8_0"  KEEP=1: keep the files
#   IMAGE=PNG (default the reference's 560x560 dev-a; "none": text only)  THREADS=n
set -eu
B=${BUILD:-build}
BIG=${BIG:-$B/big}
TYPES=${TYPES:-bf16 q4_k_m q8_0}
SH=${GUARDD_SHARED:-../shared}
IMAGE=${IMAGE:-$SH/reference/tiny-mllama/images/dev-a.png}
THREADS=${THREADS:-0}
mkdir -p "$BIG"
make -s "$B/tests/mllama_bench" "$B/tests/mkmodel" "$B/tests/mkmllama" guard
D=$BIG/m11b-bf16
if [ ! -f "$D/model.safetensors.index.json" ]; then
	echo "bench_11b: writing $D (Llama 3.2 11B Vision shape, hash noise, BF16, 21 GB)"
	df -h "$BIG"
	"$B/tests/mkmodel" mllama-11b hf "$D" bf16
fi
for t in $TYPES; do
	case $t in
	bf16) f=$D ;;
	*)
		f=$BIG/m11b-$t.gguf
		if [ ! -f "$f" ]; then
			T=$(echo "$t" | tr 'a-z' 'A-Z')
			echo "bench_11b: guard quantize $D $f $T"
			/usr/bin/time -f "quantize_wall_s %e quantize_cpu_s %U quantize_maxrss_kib %M" \
			    ./guard quantize -q "$D" "$f" "$T"
		fi
		;;
	esac
	echo "== $t: $B/tests/mllama_bench $f $IMAGE 32 8 512 $THREADS"
	size=$(du -sbL "$f" | cut -f1)
	echo "file_mib $((size / 1048576))"
	"$B/tests/mllama_bench" "$f" "$IMAGE" 32 8 512 "$THREADS" | tee "$BIG/.bench-$t.txt"
	# KV: 32 self-attention layers x 512 positions x 1024 (8 kv heads x 128) x 2 x 4 bytes;
	# the image's cross-attention keys: 8 layers x 1601 rows x 1024 x 2 x 4 bytes
	awk -v file="$size" '/^peak_rss_mib/ { kv = 32 * 512 * 1024 * 8 / 1048576; img = 8 * 1601 * 1024 * 8 / 1048576;
		lim = (file / 1048576 + kv + img) * 1.1;
		printf "rss_bound_mib %.0f (file %.0f + KV %.0f + image K/V %.0f, + 10%%): %s\n", lim,
		    file / 1048576, kv, img, $2 <= lim ? "within" : "ABOVE" }' "$BIG/.bench-$t.txt"
	if [ "$t" != bf16 ] && [ -z "${KEEP:-}" ]; then
		rm -f "$f"
	fi
done
[ -n "${KEEP:-}" ] || rm -rf "$D"
