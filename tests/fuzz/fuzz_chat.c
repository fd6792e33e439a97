/* fuzz_chat.c - chats from JSON and their prompt text in both chat formats. A render that
 * succeeds must start with its format's structure and hold every message's text. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "generator/chat.h"
#include "util/utext.h"

static void
check(const struct chat *c, enum chat_format f, const char *start)
{
	struct buf t = { 0 };
	struct err e;

	if (chat_render(c, f, "25 Sep 2024", NULL, &t, NULL, &e) == 0) {
		if (t.n < strlen(start) || memcmp(t.p, start, strlen(start)) != 0)
			abort();
		for (size_t i = 0; i < c->n; i++) {
			size_t a, n;
			utext_trim(c->msg[i].text, c->msg[i].len, &a, &n);
			if (n && memmem(t.p, t.n, c->msg[i].text + a, n) == NULL)
				abort();
		}
	}
	buf_free(&t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
	struct chat c;
	struct err e;

	if (root == NULL)
		return 0;
	if (chat_from_json(&c, root, 64, &e) == 0) {
		check(&c, CHAT_FMT_LLAMA3, "<|begin_of_text|><|start_header_id|>system");
		check(&c, CHAT_FMT_LLAMA2, "<s>[INST] ");
		chat_free(&c);
	}
	json_decref(root);
	return 0;
}
