/* t_guardv.c - the Llama Guard 3 11B-Vision prompt: for each lg11bv conversation of
 * ../shared/spec/rendered-vision-prompts.json, conv_from_json_vision + prompt_prefix_image +
 * prompt_body give the template's bytes, and for tiny-mllama's guard case the reference's 205 ids
 * (Llama 3 tokenizer plus <|image|> = 128256). Also: the text-only parser still refuses image
 * parts, a text-only vocabulary cannot render the image prompt, and the image limit. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classifier/conv.h"
#include "classifier/prompt.h"
#include "core/tok.h"
#include "policy/policy.h"
#include "tap.h"

static struct tok *
load_tok(const char *shared, int with_image, struct err *e)
{
	char path[4200], tmp[] = "/tmp/t_guardv.XXXXXX";
	json_error_t je;
	json_t *root;
	struct tok *t = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama3/tokenizer.json", shared);
	if (!with_image)
		return tok_load_json(path, e);
	if ((root = json_load_file(path, 0, &je)) == NULL) {
		err_set(e, "%s: %s", path, je.text);
		return NULL;
	}
	json_array_append_new(json_object_get(root, "added_tokens"),
	    json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", 128256, "content", "<|image|>",
	    "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1));
	if ((fd = mkstemp(tmp)) >= 0) {
		close(fd);
		if (json_dump_file(root, tmp, 0) == 0)
			t = tok_load_json(tmp, e);
		unlink(tmp);
	}
	json_decref(root);
	return t;
}

/* the policy of a conversation record: the template's categories minus excluded_category_keys */
static struct policy *
policy_of(json_t *conv, struct err *e)
{
	json_t *ex = json_object_get(json_object_get(conv, "kwargs"), "excluded_category_keys");
	struct buf y = { 0 };
	struct policy *p;
	size_t i;
	json_t *k;

	if (ex == NULL)
		return policy_default();
	buf_adds(&y, "name: t\ncategories:\n");
	json_array_foreach(ex, i, k)
		buf_printf(&y, "  %s: {exclude: true}\n", json_string_value(k));
	p = policy_parse(y.p, y.n, "excluded", e);
	buf_free(&y);
	return p;
}

/* the whole prompt of a conversation, as the classifier would build it */
static int
render(const struct policy *p, const struct conv *c, const struct tok *t, struct buf *text,
    struct tokvec *ids, struct err *e)
{
	struct buf btext = { 0 };
	struct tokvec bids = { 0 };
	enum role r;
	int rc = -1;

	if (prompt_body(c, t, &btext, &bids, &r, e) == 0 &&
	    (conv_n_images(c) ? prompt_prefix_image : prompt_prefix)(p, r, t, text, ids, e) == 0 &&
	    buf_add(text, btext.p, btext.n) == 0 && tokvec_append(ids, bids.v, bids.n) == 0)
		rc = 0;
	buf_free(&btext);
	tokvec_free(&bids);
	return rc;
}

int
main(void)
{
	const char *shared = shared_dir();
	char path[4200];
	json_t *convs, *ref, *conv;
	struct tok *vt, *t3;
	struct err e;
	size_t i, n = 0;

	if (shared == NULL)
		skip_all("../shared is absent: no Llama Guard 3 11B-Vision prompt to compare with");
	vt = load_tok(shared, 1, &e);
	t3 = load_tok(shared, 0, &e);
	snprintf(path, sizeof(path), "%s/spec/rendered-vision-prompts.json", shared);
	convs = json_load_file(path, 0, NULL);
	snprintf(path, sizeof(path), "%s/reference/tiny-mllama/reference.json", shared);
	ref = json_load_file(path, 0, NULL);
	if (!ok(vt && t3 && convs && ref, "tokenizers, rendered-vision-prompts.json, reference.json load"))
		return done_testing();
	json_array_foreach(convs, i, conv) {
		const char *name = json_string_value(json_object_get(conv, "name"));
		const char *want = json_string_value(json_object_get(conv, "rendered"));
		json_t *req = json_pack("{s:O}", "messages", json_object_get(conv, "messages"));
		struct buf text = { 0 };
		struct tokvec ids = { 0 };
		struct policy *p;
		struct conv c;

		if (strcmp(json_string_value(json_object_get(conv, "template")), "lg11bv") != 0) {
			json_decref(req);
			continue;
		}
		n++;
		p = policy_of(conv, &e);
		if (!ok(p && conv_from_json_vision(&c, req, 100, 8, &e) == 0, "%s: parsed", name)) {
			diag("%s", e.msg);
			json_decref(req);
			policy_free(p);
			continue;
		}
		ok(conv_n_images(&c) == 1, "%s: one image part", name);
		int rc = render(p, &c, vt, &text, &ids, &e);
		if (!ok(rc == 0 && text.n == strlen(want) && memcmp(text.p, want, text.n) == 0,
		    "%s: %zu prompt bytes equal the template's", name, strlen(want)))
			diag("rc %d %s; got: %.*s", rc, rc ? e.msg : "", (int)text.n, text.p ? text.p : "");
		/* the reference's guard case has these messages: its ids too */
		json_t *cs;
		size_t k;
		json_array_foreach(json_object_get(ref, "cases"), k, cs) {
			json_t *wid = json_object_get(cs, "ids");
			size_t same = 0;

			if (strcmp(json_string_value(json_object_get(cs, "name")), name) != 0)
				continue;
			for (size_t j = 0; j < ids.n && j < json_array_size(wid); j++)
				same += ids.v[j] == json_integer_value(json_array_get(wid, j));
			ok(rc == 0 && ids.n == json_array_size(wid) && same == ids.n,
			    "%s: %zu ids equal tiny-mllama's reference", name, json_array_size(wid));
		}
		/* a text-only vocabulary has no <|image|>: an error, not a prompt without the image */
		text.n = 0;
		ids.n = 0;
		ok(render(p, &c, t3, &text, &ids, &e) == -1 && strstr(e.msg, "reads text only") != NULL,
		    "%s: with a text-only guard's vocabulary: %s", name, e.msg);
		conv_free(&c);
		/* the text-only parser (what Llama Guard 3 1B is given) refuses image parts */
		ok(conv_from_json_max(&c, req, 100, &e) == -1 && strstr(e.msg, "only \"text\" parts") != NULL,
		    "%s: the text-only parser refuses it: %s", name, e.msg);
		buf_free(&text);
		tokvec_free(&ids);
		policy_free(p);
		json_decref(req);
	}
	ok(n == 3, "3 Llama Guard 3 11B-Vision conversations (%zu)", n);

	/* the image limit */
	json_t *two = json_loads("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\"},"
	    " {\"type\": \"text\", \"text\": \"x\"}, {\"type\": \"image\"}]}]}", 0, NULL);
	struct conv c;
	ok(conv_from_json_vision(&c, two, 10, 1, &e) == -1 && strstr(e.msg, "more than 1 images") != NULL,
	    "two images with a limit of one: %s", e.msg);
	ok(conv_from_json_vision(&c, two, 10, 2, &e) == 0 && conv_n_images(&c) == 2 && c.msg[0].n_parts == 1,
	    "two images with a limit of two: counted, the text part kept");
	conv_free(&c);
	json_decref(two);

	json_decref(convs);
	json_decref(ref);
	tok_free(vt);
	tok_free(t3);
	return done_testing();
}
