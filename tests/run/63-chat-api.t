#!/bin/sh
# The chat API (tests/t_chat.c): trimming, JSON errors, dates, formats, end tokens, and random
# chats whose ids equal the tokenizer's ids of their text on the tiny-l3 and tiny-l2 vocabularies.
B=${BUILD:-build}
GUARDD_L3_GGUF=$B/models/tiny-l3-f32.gguf GUARDD_L2_GGUF=$B/models/tiny-l2-f32.gguf exec $B/tests/t_chat
