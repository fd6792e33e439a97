/* vision.c - Llama Guard 3 11B-Vision on a conversation with an image: the whole prompt
 * (prompt_prefix_image: "<|image|> " right after the first header, lg11bv_template.txt; then
 * the body), evaluated whole on a cleared sequence with the image attached for the
 * cross-attention layers. Caching: the policy-prefix snapshot and the conversation cache
 * hold text-only prompts, and an image prompt differs from its first header on (its hidden
 * states after <|image|> depend on the image bytes), so such a prompt is neither restored
 * from nor stored into them; each one costs a full prefill, plus the image's encoding the
 * first time: the encoded images of the last few are kept (by the sha256 of their bytes),
 * so re-checks of an answer about an image cost its keys and values, not the tower. */
#include "classifier/classifier_int.h"

#include "classifier/conv.h"
#include "classifier/prompt.h"
#include "core/ctx.h"
#include "core/mllama_image.h"

/* images kept encoded: one per response stream (an answer about an image is judged again
 * every few tokens, with the same image) and one for requests */
#define IMAGES_KEPT(c) ((c)->p.max_streams + 1)

/* the image's bytes -> decoded, preprocessed, encoded by the vision tower (or taken from the
 * images encoded lately), attached to seq (core/mllama_image.c, the generator's path too) */
static int
attach(struct classifier *c, int seq, const struct conv_image *ci, struct err *e)
{
	struct err ie;

	if (c->imc == NULL && (c->imc = mllama_cache_new(IMAGES_KEPT(c))) == NULL)
		return err_set(e, "out of memory");
	if (mllama_attach_cached(c->imc, c->work, seq, ci->data, ci->len, &ie) == -1)
		return err_set(e, "messages: the image: %s", ie.msg);
	return 0;
}

int
classifier_image_prompt(struct classifier *c, const struct policy *pol, enum role role,
    int seq, const struct conv *conv, struct tokvec *body, struct err *e)
{
	size_t ni = conv_n_images(conv);
	struct buf text = { 0 };
	struct tokvec all = { 0 };

	if (ni != 1)
		return err_set(e, "messages: %zu image parts: Llama Guard 3 11B-Vision judges one "
		    "image per conversation", ni);
	if (conv->n_img != ni)
		return err_set(e, "messages: an image part without its bytes");
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
