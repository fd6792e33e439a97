#!/bin/sh
# Tokenizer parity: Llama 3 (tokenizer.json and GGUF) and Llama 2 SentencePiece. And the
# lazily built process-wide tables under ThreadSanitizer (a race there is a failure).
B=${BUILD:-build}
tsan=$B/tests/t_once-tsan
if ! cc -std=c11 -D_GNU_SOURCE -O1 -g -pthread -fsanitize=thread -I. \
	$(pkg-config --cflags libpcre2-8 jansson) -o "$tsan" tests/t_once.c core/tok*.c \
	core/cpu.c core/gguf.c util/*.c $(pkg-config --libs libpcre2-8 jansson) -lm 2>"$tsan.log"; then
	tsan="echo '1..0 # SKIP cannot build with -fsanitize=thread: $(head -c 200 "$tsan.log" | tr -d "\n'")'"
else
	tsan="TSAN_OPTIONS=halt_on_error=1:exitcode=66 $tsan"
fi
sh tests/tapcat.sh <<LIST
GUARDD_L3_GGUF=$B/models/tiny-l3-f32.gguf $B/tests/t_tok
$B/tests/t_once
$tsan
LIST
