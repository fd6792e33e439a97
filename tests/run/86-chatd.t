#!/bin/sh
# guardd hosting a chat model (tests/t_chatd.c): the chat op, leak-free streaming under a
# rigged generator and guard, on_error per direction with a noise guard, concurrency.
B=${BUILD:-build}
M=$B/models
exec $B/tests/t_chatd ./guardd $M/rig-l3.gguf $M/tiny-l3-f32.gguf $M/tiny-l3-f32.gguf \
	$M/rig-gen-l3.gguf $M/rig-gen-safe-l3.gguf $B/tests/mkmodel $M/tiny-l2
