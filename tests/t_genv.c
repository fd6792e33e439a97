/* t_genv.c - the generator with images (Llama 3.2-Vision, tiny-mllama): a chat with an image
 * part rendered in the Llama 3.2 Vision format, its image decoded, preprocessed, encoded and
 * attached by generator_start_images; greedy answers equal to `guard generate --image` on
 * the same ids (the core's own path), different from the same chat without the image and
 * from another image; the same ids with a 3-token prefill chunk and batched next to a text
 * answer; a slot reused after an image answer carries no image; and the errors (counts,
 * a text-only model, a truncated image), after which the generator still serves; the cache
 * of encoded images (core/mllama_image.h): a hit gives the logits of encoding again, bit
 * for bit.
 * Usage: t_genv GUARD_BIN MLLAMA_DIR TEXT_ONLY_MODEL IMAGE OTHER_IMAGE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/ctx.h"
#include "core/mllama_image.h"
#include "core/model.h"
#include "core/tok.h"
#include "generator/chat.h"
#include "generator/gen.h"
#include "util/buf.h"
#include "tap.h"

#define MAX_TOKENS 8

static const struct model *M;
static struct { int32_t v[8]; int n; } END;	/* the end-of-turn ids */

static struct generator *
gen_new(const struct model *m, int n_seq, int chunk)
{
	struct generator_params gp = { .n_ctx = 512, .n_seq = n_seq, .n_threads = 1,
		.prefill_chunk = chunk };
	struct err e;
	struct generator *g = generator_new(m, &gp, &e);

	if (g == NULL)
		diag("generator_new: %s", e.msg);
	return g;
}

static struct gen_params
greedy(void)
{
	struct gen_params p = { .sp = { .temperature = 0 }, .max_tokens = MAX_TOKENS };

	p.end = END.v;
	p.n_end = END.n;
	return p;
}

/* the ids of [user: image parts, then text] in the Llama 3.2 Vision format */
static int
render(const char *text, int n_images, struct tokvec *ids)
{
	struct chat ch;
	struct err e;
	int rc;

	chat_init(&ch);
	rc = chat_add(&ch, CHAT_USER, text, strlen(text), &e);
	for (int i = 0; rc == 0 && i < n_images; i++)
		rc = chat_add_image(&ch, 0, &e);
	if (rc == 0)
		rc = chat_render(&ch, CHAT_FMT_LLAMA3V, "01 Dec 2026", model_tok(M), NULL, ids, &e);
	if (rc == -1)
		diag("render: %s", e.msg);
	chat_free(&ch);
	return rc;
}

static int
read_file(const char *path, struct gen_image *img)
{
	FILE *f = fopen(path, "rb");
	long n;
	void *p;

	if (f == NULL || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) ||
	    (p = malloc((size_t)n)) == NULL || fread(p, 1, (size_t)n, f) != (size_t)n) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	img->data = p;
	img->len = (size_t)n;
	return 0;
}

/* runs one answer alone to its end; -1 (e filled) when it does not start */
static int
run(struct generator *g, const struct tokvec *ids, const struct gen_image *img, size_t n_img,
    struct tokvec *out, struct err *e)
{
	struct gen_params p = greedy();
	int slot = generator_start_images(g, ids->v, ids->n, img, n_img, &p, e);

	out->n = 0;
	if (slot < 0)
		return -1;
	while (generator_finish(g, slot) == GEN_RUNNING)
		if (generator_step(g, e) == -1)
			break;
	size_t n;
	const int32_t *v = generator_ids(g, slot, &n);
	tokvec_append(out, v, n);
	int fin = generator_finish(g, slot);
	generator_end(g, slot);
	return fin == GEN_ERROR ? -1 : 0;
}

static int
same(const struct tokvec *a, const struct tokvec *b)
{
	return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(*a->v)) == 0);
}

static void
ids_str(const struct tokvec *t, struct buf *b)
{
	for (size_t i = 0; i < t->n; i++)
		buf_printf(b, "%s%d", i ? " " : "", t->v[i]);
}

/* `guard generate --image`: its ids (as many as MAX_TOKENS; the end token is not special
 * there, so compare the prefix the generator produced) */
static int
cli_ids(const char *guard, const char *model, const struct tokvec *prompt, const char *image,
    struct tokvec *out)
{
	struct buf cmd = { 0 };
	char line[65536];

	buf_printf(&cmd, "%s generate -m '%s' -t 1 -n %d --image '%s' --ids '", guard, model,
	    MAX_TOKENS, image);
	ids_str(prompt, &cmd);
	buf_adds(&cmd, "'");
	FILE *fp = popen(cmd.p, "r");
	buf_free(&cmd);
	if (fp == NULL)
		return -1;
	size_t got = fread(line, 1, sizeof(line) - 1, fp);
	line[got] = '\0';
	int rc = pclose(fp);
	for (char *p = line, *end; *p != '\0' && *p != '\n'; p = end) {
		long v = strtol(p, &end, 10);
		if (end == p)
			return -1;
		tokvec_push(out, (int32_t)v);
	}
	return rc == 0 ? 0 : -1;
}

/* the last logits of ids on seq with the image attached through mc, into out */
static int
cached_logits(struct ctx *c, struct mllama_cache *mc, int seq, const struct tokvec *ids,
    const struct gen_image *img, float *out, struct err *e)
{
	ctx_seq_clear(c, seq);
	if (mllama_attach_cached(mc, c, seq, img->data, img->len, e) == -1 ||
	    ctx_eval(c, seq, ids->v, (int)ids->n, e) == -1)
		return -1;
	memcpy(out, ctx_logits(c, 0), (size_t)ctx_n_vocab(c) * sizeof(float));
	return 0;
}

/* red (encoded), blue (encoded), red again (from the cache): the same logits as the first */
static void
test_cache(const struct tokvec *ids, const struct gen_image *img)
{
	struct ctx_params cp = ctx_params_default();
	struct err e;

	cp.n_ctx = (int)ids->n + 8;
	cp.n_seq = 2;
	cp.n_threads = 1;
	struct ctx *c = ctx_new(M, &cp, &e);
	struct mllama_cache *mc = mllama_cache_new(2);
	if (c == NULL || mc == NULL) {
		ok(0, "the cache's context: %s", c == NULL ? e.msg : "out of memory");
		ctx_free(c);
		mllama_cache_free(mc);
		return;
	}
	size_t nv = (size_t)ctx_n_vocab(c);
	float *a = malloc(nv * sizeof(float)), *b = malloc(nv * sizeof(float));
	float *a2 = malloc(nv * sizeof(float));
	int rc = cached_logits(c, mc, 0, ids, &img[0], a, &e);
	if (rc == 0)
		rc = cached_logits(c, mc, 1, ids, &img[1], b, &e);
	long before = mllama_cache_hits(mc);
	if (rc == 0)
		rc = cached_logits(c, mc, 1, ids, &img[0], a2, &e);
	ok(rc == 0 && before == 0 && mllama_cache_hits(mc) == 1, "the cache: two images encoded, "
	    "the first again found (hits %ld then %ld)%s%s", before, mllama_cache_hits(mc),
	    rc ? ": " : "", rc ? e.msg : "");
	ok(rc == 0 && memcmp(a, a2, nv * sizeof(float)) == 0 && memcmp(a, b, nv * sizeof(float)),
	    "its logits are the first encoding's bit for bit (and another image's differ)");
	free(a);
	free(b);
	free(a2);
	mllama_cache_free(mc);
	ctx_free(c);
}

int
main(int argc, char **argv)
{
	struct model *m, *text_only;
	struct gen_image img[2], cut;
	struct tokvec with = { 0 }, without = { 0 }, a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	struct tokvec cli = { 0 };
	struct err e;

	if (argc != 6)
		skip_all("usage: t_genv GUARD MLLAMA TEXT_ONLY IMAGE OTHER_IMAGE");
	if ((m = model_open(argv[2], &e)) == NULL)
		skip_all("tiny-mllama not built (../shared absent)");
	M = m;
	if (read_file(argv[4], &img[0]) == -1 || read_file(argv[5], &img[1]) == -1) {
		printf("Bail out! cannot read %s or %s\n", argv[4], argv[5]);
		return 1;
	}
	END.n = chat_end_tokens(model_tok(m), CHAT_FMT_LLAMA3V, END.v);
	int rc = render("Describe the picture.", 1, &with);
	rc |= render("Describe the picture.", 0, &without);
	ok(rc == 0, "the chat renders with and without its image (%zu and %zu ids)", with.n,
	    without.n);

	struct generator *g = gen_new(m, 2, 0);
	if (g == NULL)
		return 1;
	rc = run(g, &with, img, 1, &a, &e);
	ok(rc == 0 && a.n > 0, "an answer with the image (%zu ids)", a.n);
	rc = cli_ids(argv[1], argv[2], &with, argv[4], &cli);
	ok(rc == 0 && cli.n >= a.n && memcmp(cli.v, a.v, a.n * sizeof(*a.v)) == 0,
	    "its ids are `guard generate --image`'s on the same ids, the core's own path");
	rc = run(g, &without, NULL, 0, &b, &e);
	ok(rc == 0 && b.n > 0 && !same(&a, &b), "the same chat without the image answers "
	    "otherwise (%zu ids)", b.n);
	rc = run(g, &with, img + 1, 1, &c, &e);
	ok(rc == 0 && c.n > 0 && !same(&a, &c), "another image answers otherwise (%zu ids)", c.n);
	struct buf sa = { 0 }, sb = { 0 }, sc = { 0 };
	ids_str(&a, &sa);
	ids_str(&b, &sb);
	ids_str(&c, &sc);
	diag("image: %s | none: %s | other image: %s", sa.p, sb.p, sc.p);
	buf_free(&sa);
	buf_free(&sb);
	buf_free(&sc);

	/* the image attached before the first chunk: any chunk size gives the same answer */
	struct generator *g3 = gen_new(m, 1, 3);
	ok(g3 && run(g3, &with, img, 1, &d, &e) == 0 && same(&a, &d),
	    "prefill in 3-token chunks: the same ids");
	/* the only slot, reused: the image answer's images are gone with it */
	ok(g3 && run(g3, &without, NULL, 0, &d, &e) == 0 && same(&b, &d),
	    "the slot reused for a text chat: the same ids as on a fresh slot");
	struct gen_params p = greedy();
	ok(g3 && generator_start_images(g3, with.v, with.n, NULL, 0, &p, &e) == -1 &&
	    strstr(e.msg, "0 image(s) for 1 <|image|> token(s)") != NULL,
	    "an <|image|> token without its image is refused: %s", e.msg);
	generator_free(g3);

	/* batched next to a text answer: each the same as alone */
	int s0 = generator_start_images(g, with.v, with.n, img, 1, &p, &e);
	int s1 = generator_start(g, without.v, without.n, &p, &e);
	while (s0 >= 0 && s1 >= 0 && generator_running(g) > 0)
		if (generator_step(g, &e) == -1)
			break;
	size_t n0 = 0, n1 = 0;
	const int32_t *v0 = s0 >= 0 ? generator_ids(g, s0, &n0) : NULL;
	const int32_t *v1 = s1 >= 0 ? generator_ids(g, s1, &n1) : NULL;
	ok(s0 >= 0 && s1 >= 0 && n0 == a.n && n1 == b.n && memcmp(v0, a.v, n0 * 4) == 0 &&
	    memcmp(v1, b.v, n1 * 4) == 0, "an image answer batched with a text one: both the "
	    "same ids as alone");
	generator_end(g, s0);
	generator_end(g, s1);

	/* errors, each naming what is wrong; the generator serves on */
	ok(generator_start_images(g, without.v, without.n, img, 1, &p, &e) == -1 &&
	    strstr(e.msg, "1 image(s) for 0 <|image|> token(s)") != NULL,
	    "an image without an <|image|> token: %s", e.msg);
	cut.data = img[0].data;
	cut.len = img[0].len / 3;
	ok(generator_start_images(g, with.v, with.n, &cut, 1, &p, &e) == -1 &&
	    strncmp(e.msg, "image 1: ", 9) == 0 && generator_running(g) == 0,
	    "a truncated image: %s", e.msg);
	ok(run(g, &without, NULL, 0, &d, &e) == 0 && same(&b, &d),
	    "then the same answer as before: nothing of the failed start stayed");
	generator_free(g);

	test_cache(&with, img);
	if ((text_only = model_open(argv[3], &e)) == NULL)
		ok(0, "%s: %s", argv[3], e.msg);
	else {
		struct generator *gt = gen_new(text_only, 1, 0);
		struct tokvec t = { 0 };
		tok_encode(model_tok(text_only), "Hello", 5, 0, &t, &e);
		ok(gt && generator_start_images(gt, t.v, t.n, img, 1, &p, &e) == -1 &&
		    strstr(e.msg, "a text-only model takes no image") != NULL,
		    "a text-only model with an image: %s", e.msg);
		tokvec_free(&t);
		generator_free(gt);
		model_close(text_only);
	}
	free((void *)img[0].data);
	free((void *)img[1].data);
	tokvec_free(&with);
	tokvec_free(&without);
	tokvec_free(&a);
	tokvec_free(&b);
	tokvec_free(&c);
	tokvec_free(&d);
	tokvec_free(&cli);
	model_close(m);
	return done_testing();
}
