/* vision.c - Llama Guard 3 11B-Vision on a conversation with an image: the prompt
 * (prompt_prefix_image: "<|image|> " right after the first header, lg11bv_template.txt; then
 * the body) on a sequence with the image attached for the cross-attention layers. The
 * policy-prefix snapshots and the conversation cache hold text-only prompts: an image prompt
 * differs from its first header on (its hidden states after <|image|> depend on the image
 * bytes). Without the prefix cache the prompt is evaluated whole (classifier_image_prompt);
 * with it, the image form of the policy prefix is restored from the image cache
 * (imgcache.h: keyed by the image's SHA-256 and the prefix's ids, holding the image's
 * cross-attention keys and values too) or computed and kept (classifier_image_prefix), and
 * only the body follows: a second request with the same image skips the vision tower. */
#include "classifier/classifier_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "classifier/conv.h"
#include "classifier/imgcache.h"
#include "classifier/prompt.h"
#include "core/ctx.h"
#include "core/mllama.h"
#include "core/mllama_image.h"
#include "core/model.h"
#include "util/sha256.h"

/* the image's bytes -> decoded, preprocessed for the model's tile geometry, encoded by the
 * vision tower, attached to seq (core/mllama_image.c: the generator's path too) */
static int
attach(struct classifier *c, int seq, const struct conv_image *ci, struct err *e)
{
	struct err ie;

	if (mllama_attach_bytes(c->work, seq, ci->data, ci->len, &ie) == -1)
		return err_set(e, "messages: the image: %s", ie.msg);
	return 0;
}

/* the position after the first <|image|> of t: the least an image cache entry must share */
static size_t
after_image(const struct classifier *c, const struct tokvec *t)
{
	int img = model_image_token(c->m);

	for (size_t i = 0; i < t->n; i++)
		if (t->v[i] == img)
			return i + 1;
	return t->n + 1;	/* none: nothing can be shared (and nothing is stored) */
}

int
classifier_image_prefix(struct classifier *c, const struct policy *pol, enum role role,
    int seq, const struct conv_image *ci, struct tokvec *pre, int *reused, struct err *e)
{
	struct buf text = { 0 };
	unsigned char sha[32];
	int got = 0;

	*reused = 0;
	pre->n = 0;
	int rc = prompt_prefix_image(pol, role, c->tok, &text, pre, e);
	buf_free(&text);
	if (rc == -1)
		return -1;
	if (pre->n + MAX_ANSWER + 4 > (size_t)c->p.n_ctx)
		return err_set(e, "the policy prefix with the image is %zu tokens; the context holds "
		    "%d", pre->n, c->p.n_ctx);
	ctx_seq_clear(c->work, seq);
	size_t need = after_image(c, pre);
	if (c->ic != NULL && need <= pre->n) {
		struct sha256 h;
		sha256_init(&h);
		sha256_update(&h, ci->data, ci->len);
		sha256_final(&h, sha);
		if ((got = imgcache_restore(c->ic, c->work, seq, sha, pre->v, pre->n, need, e)) == -1)
			return -1;
	}
	/* a miss: the vision tower and the whole prefix; a partial hit: the image came with
	 * the positions restored, the rest of the prefix follows them */
	if ((got == 0 && attach(c, seq, ci, e) == -1) || ((size_t)got < pre->n &&
	    ctx_eval(c->work, seq, pre->v + got, (int)pre->n - got, e) == -1)) {
		ctx_seq_clear(c->work, seq);
		return -1;
	}
	if (c->ic != NULL && need <= pre->n && (size_t)got < pre->n)
		imgcache_store(c->ic, c->work, seq, sha, pre->v, pre->n);
	*reused = got;
	return 0;
}

int
classifier_image_check(const struct classifier *c, const struct conv *conv, struct err *e)
{
	size_t ni = conv_n_images(conv);

	(void)c;
	if (ni != 1)
		return err_set(e, "messages: %zu image parts: Llama Guard 3 11B-Vision judges one "
		    "image per conversation", ni);
	if (conv->n_img != ni || conv->img == NULL || conv->img[0].data == NULL)
		return err_set(e, "messages: an image part without its bytes");
	return 0;
}

int
classifier_image_prompt(struct classifier *c, const struct policy *pol, enum role role,
    int seq, const struct conv *conv, struct tokvec *body, struct err *e)
{
	struct buf text = { 0 };
	struct tokvec all = { 0 };

	if (classifier_image_check(c, conv, e) == -1)
		return -1;
	int rc = prompt_prefix_image(pol, role, c->tok, &text, &all, e);
	buf_free(&text);
	if (rc == -1)
		goto fail;
	if (tokvec_append(&all, body->v, body->n) == -1) {
		err_set(e, "out of memory");
		goto fail;
	}
	if (all.n + MAX_ANSWER + 4 > (size_t)c->p.n_ctx) {
		err_set(e, "the conversation needs %zu tokens with the policy; the context holds %d",
		    all.n + MAX_ANSWER + 4, c->p.n_ctx);
		goto fail;
	}
	ctx_seq_clear(c->work, seq);
	if (attach(c, seq, &conv->img[0], e) == -1) {
		ctx_seq_clear(c->work, seq);
		goto fail;
	}
	tokvec_free(body);
	*body = all;
	return 0;
fail:
	tokvec_free(&all);
	return -1;
}
