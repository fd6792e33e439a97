/* fuzz_visionchat.c - chats and guard conversations with image parts from arbitrary JSON: the
 * Llama 3.2 Vision chat (chat_from_json, chat_render in llama3v) and the Llama Guard 3
 * 11B-Vision conversation (conv_from_json_vision, prompt_prefix_image + prompt_body), text
 * only. Every image offset must lie inside its message, in order, and the rendered prompt must
 * hold exactly one <|image|> per image part (the guard prompt: one in all), or it aborts. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/conv.h"
#include "classifier/prompt.h"
#include "generator/chat.h"
#include "policy/policy.h"

static size_t
count(const char *p, size_t n, const char *needle)
{
	size_t k = 0, m = strlen(needle);

	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(p + i, needle, m) == 0)
			k++;
	return k;
}

static void
chat(const json_t *root)
{
	struct chat c;
	struct err e;
	struct buf text = { 0 };
	size_t in_text = 0;

	if (chat_from_json(&c, root, 64, &e) != 0)
		return;
	for (size_t i = 0; i < c.n; i++) {
		for (size_t k = 0; k < c.msg[i].n_images; k++)
			if (c.msg[i].image_at[k] > c.msg[i].len ||
			    (k && c.msg[i].image_at[k] < c.msg[i].image_at[k - 1]))
				abort();
		in_text += count(c.msg[i].text, c.msg[i].len, "<|image|>");
	}
	/* message text is data: "<|image|>" typed by a user is counted apart from image parts */
	if (chat_render(&c, CHAT_FMT_LLAMA3V, "1 Jan 2025", NULL, &text, NULL, &e) == 0 &&
	    count(text.p, text.n, "<|image|>") != chat_n_images(&c) + in_text)
		abort();
	buf_free(&text);
	chat_free(&c);
}

static void
guard(const json_t *root)
{
	static struct policy *p;
	struct conv c;
	struct err e;
	struct buf text = { 0 };
	struct tokvec ids = { 0 };
	enum role r;

	if (p == NULL)
		p = policy_default();
	if (conv_from_json_vision(&c, root, 64, 8, &e) != 0)
		return;
	if (conv_n_images(&c) > 8)
		abort();
	if (prompt_body(&c, NULL, &text, &ids, &r, &e) == 0 && conv_n_images(&c) &&
	    prompt_prefix_image(p, r, NULL, &text, &ids, &e) == 0 &&
	    strstr(text.p, "<|end_header_id|>\n\n<|image|> Task: ") == NULL)
		abort();
	buf_free(&text);
	tokvec_free(&ids);
	conv_free(&c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);

	if (root == NULL)
		return 0;
	chat(root);
	guard(root);
	json_decref(root);
	return 0;
}
