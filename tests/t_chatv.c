/* t_chatv.c - the Llama 3.2 Vision Instruct chat format: prompt bytes equal to
 * ../shared/spec/rendered-vision-prompts.json (jinja2 with the Hub's template) for every l32v
 * conversation, prompt ids equal to ../shared/reference/tiny-mllama/reference.json's (with the
 * Llama 3 tokenizer plus <|image|> = 128256, as the Hub's Vision tokenizer has it), image parts
 * from JSON, and the errors (an image for a text-only format, in a system message). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/tok.h"
#include "generator/chat.h"
#include "tap.h"

/* The Llama 3 tokenizer.json with <|image|> appended as special token 128256. */
static struct tok *
vision_tok(const char *shared, struct err *e)
{
	char path[4200], tmp[] = "/tmp/t_chatv.XXXXXX";
	json_error_t je;
	json_t *root, *added;
	struct tok *t = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama3/tokenizer.json", shared);
	if ((root = json_load_file(path, 0, &je)) == NULL) {
		err_set(e, "%s: %s", path, je.text);
		return NULL;
	}
	added = json_object_get(root, "added_tokens");
	json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", 128256,
	    "content", "<|image|>", "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
	    "special", 1));
	if ((fd = mkstemp(tmp)) >= 0) {
		close(fd);
		if (json_dump_file(root, tmp, 0) == 0)
			t = tok_load_json(tmp, e);
		else
			err_set(e, "%s: cannot write", tmp);
		unlink(tmp);
	} else {
		err_set(e, "mkstemp failed");
	}
	json_decref(root);
	return t;
}

static const char *
str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The chat of one conversation record: its messages and add_generation_prompt. */
static int
chat_of(json_t *conv, struct chat *c, struct err *e)
{
	json_t *req = json_pack("{s:O}", "messages", json_object_get(conv, "messages"));
	json_t *agp = json_object_get(json_object_get(conv, "kwargs"), "add_generation_prompt");
	int rc;

	json_object_set(req, "add_generation_prompt", agp ? agp : json_false());
	rc = chat_from_json(c, req, 0, e);
	json_decref(req);
	return rc;
}

static void
renders(json_t *convs, const struct tok *vt)
{
	size_t i, n_l32v = 0;
	json_t *conv;

	json_array_foreach(convs, i, conv) {
		const char *name = str(conv, "name"), *tmpl = str(conv, "template");
		const char *date = str(json_object_get(conv, "kwargs"), "date_string");
		const char *want = str(conv, "rendered");
		struct buf text = { 0 };
		struct chat c;
		struct err e;

		if (strcmp(tmpl, "l32v") != 0 && strcmp(tmpl, "l32v_oldrev") != 0)
			continue;	/* lg11bv: the classifier's prompt (t_prompt) */
		n_l32v++;
		if (!ok(chat_of(conv, &c, &e) == 0, "%s: chat from JSON", name)) {
			diag("%s", e.msg);
			continue;
		}
		int rc = chat_render(&c, CHAT_FMT_LLAMA3V, date ? date : "26 Jul 2024", vt, &text, NULL,
		    &e);
		if (want != NULL) {
			if (!ok(rc == 0 && text.n == strlen(want) && memcmp(text.p, want, text.n) == 0,
			    "%s: %zu prompt bytes equal the template's", name, strlen(want)))
				diag("got: %.*s", (int)text.n, text.p ? text.p : "");
		} else {
			/* the older revision refused system + image; this one is pinned and renders
			 * what the current revision does (l32v_system_and_image) */
			json_t *cur;
			size_t k;
			const char *same = NULL;

			json_array_foreach(convs, k, cur)
				if (strcmp(str(cur, "name"), "l32v_system_and_image") == 0)
					same = str(cur, "rendered");
			ok(rc == 0 && same && text.n == strlen(same) && memcmp(text.p, same, text.n) == 0,
			    "%s: the older revision's error (\"%s\") is not followed: the current "
			    "revision's bytes", name, str(conv, "error"));
		}
		buf_free(&text);
		chat_free(&c);
	}
	ok(n_l32v == 7, "7 Llama 3.2 Vision conversations rendered (%zu)", n_l32v);
}

static void
ids(json_t *convs, json_t *cases, const struct tok *vt)
{
	size_t i, k;
	json_t *cs, *conv = NULL;

	json_array_foreach(cases, i, cs) {
		const char *name = str(cs, "name");
		json_t *want = json_object_get(cs, "ids");
		struct tokvec got = { 0 };
		struct buf text = { 0 };
		struct chat c;
		struct err e;
		size_t same = 0;

		if (strcmp(str(cs, "template"), "l32v") != 0)
			continue;
		json_array_foreach(convs, k, conv)
			if (strcmp(str(conv, "name"), name) == 0)
				break;
		if (!ok(k < json_array_size(convs) && chat_of(conv, &c, &e) == 0,
		    "%s: the conversation is there", name))
			continue;
		const char *date = str(json_object_get(conv, "kwargs"), "date_string");
		int rc = chat_render(&c, CHAT_FMT_AUTO, date ? date : "26 Jul 2024", vt, &text, &got, &e);
		for (size_t j = 0; rc == 0 && j < got.n && j < json_array_size(want); j++)
			same += got.v[j] == json_integer_value(json_array_get(want, j));
		if (!ok(rc == 0 && got.n == json_array_size(want) && same == got.n,
		    "%s: %zu prompt ids equal the reference's", name, json_array_size(want)))
			diag("rc %d (%s), %zu ids, %zu equal", rc, rc ? e.msg : "", got.n, same);
		ok(rc == 0 && text.n == strlen(str(cs, "text")) && memcmp(text.p, str(cs, "text"), text.n) == 0,
		    "%s: and its text", name);
		tokvec_free(&got);
		buf_free(&text);
		chat_free(&c);
	}
}

static void
errors(const struct tok *vt)
{
	static const char req[] = "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\","
	    " \"text\": \"a\"}, {\"type\": \"image\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \"b\"}]}]}";
	json_t *root = json_loads(req, 0, NULL);
	struct buf text = { 0 };
	struct chat c;
	struct err e;

	ok(chat_from_json(&c, root, 0, &e) == 0 && c.n == 1 && c.msg[0].n_images == 2 &&
	    c.msg[0].image_at[0] == 1 && c.msg[0].image_at[1] == 1 && chat_n_images(&c) == 2,
	    "image parts recorded at their offsets");
	ok(chat_render(&c, CHAT_FMT_LLAMA3V, "1 Jan 2025", NULL, &text, NULL, &e) == 0 &&
	    strstr(text.p, "\n\na<|image|><|image|>b<|eot_id|>") != NULL && strstr(text.p, "system") == NULL,
	    "two images in a row, no system block");
	text.n = 0;
	ok(chat_render(&c, CHAT_FMT_LLAMA3, "1 Jan 2025", NULL, &text, NULL, &e) == -1 &&
	    strstr(e.msg, "takes no images") != NULL, "an image for the text-only Llama 3 format: %s",
	    e.msg);
	ok(chat_render(&c, CHAT_FMT_LLAMA2, NULL, NULL, &text, NULL, &e) == -1 &&
	    strstr(e.msg, "takes no images") != NULL, "an image for the Llama 2 format: %s", e.msg);
	chat_free(&c);
	json_decref(root);

	chat_init(&c);
	chat_add(&c, CHAT_SYSTEM, "sys", 3, &e);
	chat_add_image(&c, 0, &e);
	chat_add(&c, CHAT_USER, "hi", 2, &e);
	ok(chat_render(&c, CHAT_FMT_LLAMA3V, "1 Jan 2025", NULL, &text, NULL, &e) == -1 &&
	    strstr(e.msg, "system message cannot hold an image") != NULL, "an image in a system "
	    "message: %s", e.msg);
	ok(chat_add_image(&c, 3, &e) == -1 && strstr(e.msg, "out of order") != NULL,
	    "an image past the message's end: %s", e.msg);
	chat_free(&c);

	chat_init(&c);
	chat_add(&c, CHAT_USER, "  hi  ", 6, &e);
	text.n = 0;
	ok(chat_render(&c, CHAT_FMT_LLAMA3V, "1 Jan 2025", NULL, &text, NULL, &e) == 0 &&
	    strstr(text.p, "Today Date: 1 Jan 2025\n\n<|eot_id|>") != NULL &&
	    strstr(text.p, "\n\n  hi  <|eot_id|>") != NULL,
	    "no image: the system block with the date; user text untrimmed");
	chat_free(&c);
	buf_free(&text);

	enum chat_format f;
	ok(chat_format_parse("llama3v", &f) == 0 && f == CHAT_FMT_LLAMA3V &&
	    strcmp(chat_format_name(f), "llama3v") == 0, "llama3v parses and names itself");
	if (vt) {
		int32_t end[8];
		int n = chat_end_tokens(vt, CHAT_FMT_LLAMA3V, end), eot = 0;

		for (int k = 0; k < n; k++)
			eot |= end[k] == 128009;
		ok(chat_format_of(vt) == CHAT_FMT_LLAMA3V, "a vocabulary with <|image|> is llama3v");
		/* this tokenizer.json names 128008 reserved: <|end_of_text|> and <|eot_id|> */
		ok(n == 2 && eot, "llama3v ends turns as Llama 3 does (%d ids, <|eot_id|> among them)", n);
	}
	/* more image parts than one message may hold */
	struct buf big = { 0 };
	buf_adds(&big, "{\"messages\": [{\"role\": \"user\", \"content\": [");
	for (int k = 0; k < 65; k++)
		buf_adds(&big, k ? ", {\"type\": \"image\"}" : "{\"type\": \"image\"}");
	buf_adds(&big, "]}]}");
	root = json_loadb(big.p, big.n, 0, NULL);
	ok(chat_from_json(&c, root, 0, &e) == -1 && strstr(e.msg, "more than 64 images") != NULL,
	    "65 images in one message: %s", e.msg);
	json_decref(root);
	buf_free(&big);
}

int
main(void)
{
	const char *shared = shared_dir();
	char path[4200];
	json_t *convs, *ref;
	struct tok *vt = NULL;
	struct err e;

	if (shared != NULL && (vt = vision_tok(shared, &e)) == NULL)
		diag("vision tokenizer: %s", e.msg);
	errors(vt);
	if (shared == NULL) {
		ok(1, "# skip ../shared is absent: no template parity checked");
		return done_testing();
	}
	snprintf(path, sizeof(path), "%s/spec/rendered-vision-prompts.json", shared);
	convs = json_load_file(path, 0, NULL);
	snprintf(path, sizeof(path), "%s/reference/tiny-mllama/reference.json", shared);
	ref = json_load_file(path, 0, NULL);
	if (ok(convs != NULL && vt != NULL, "rendered-vision-prompts.json and the tokenizer load")) {
		renders(convs, vt);
		if (ok(ref != NULL, "tiny-mllama/reference.json loads"))
			ids(convs, json_object_get(ref, "cases"), vt);
	}
	json_decref(convs);
	json_decref(ref);
	tok_free(vt);
	return done_testing();
}
