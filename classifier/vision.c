/* vision.c - Llama Guard 3 11B-Vision on a conversation with an image: the whole prompt
 * (prompt_prefix_image: "<|image|> " right after the first header, lg11bv_template.txt; then
 * the body), evaluated whole on a cleared sequence with the image attached for the
 * cross-attention layers. Caching: the policy-prefix snapshot and the conversation cache
 * hold text-only prompts, and an image prompt differs from its first header on (its hidden
 * states after <|image|> depend on the image bytes), so such a prompt is neither restored
 * from nor stored into them; each one costs a full prefill plus the image's encoding. */
#include "classifier/classifier_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "classifier/conv.h"
#include "classifier/prompt.h"
#include "core/ctx.h"
#include "core/image.h"
#include "core/imgprep.h"
#include "core/mllama.h"
#include "core/model.h"

/* the image's bytes -> decoded, preprocessed for the model's tile geometry, encoded by the
 * vision tower, attached to seq */
static int
attach(struct classifier *c, int seq, const struct conv_image *ci, struct err *e)
{
	struct image img = { 0 };
	struct imgprep_config cfg;
	struct imgprep_out px;
	struct err ie;
	int max_tiles;

	if (image_decode(&img, ci->data, ci->len, NULL, &ie) == -1)
		return err_set(e, "messages: the image: %s", ie.msg);
	/* the checkpoint's preprocessor_config.json when it has one, else Meta's values for the
	 * model's tile geometry */
	char path[4200];
	snprintf(path, sizeof(path), "%s/preprocessor_config.json", model_path(c->m));
	imgprep_config_default(&cfg);
	if (access(path, R_OK) == 0) {
		if (imgprep_config_load(&cfg, path, &ie) == -1) {
			image_free(&img);
			return err_set(e, "%s", ie.msg);
		}
	} else {
		cfg.tile = (uint32_t)model_image_size(c->m, &max_tiles);
		cfg.max_tiles = (uint32_t)max_tiles;
	}
	int rc = imgprep_run(&cfg, &img, &px, &ie);
	image_free(&img);
	if (rc == -1)
		return err_set(e, "messages: the image: %s", ie.msg);
	struct mllama_image *im = mllama_encode(c->work, px.pixels, px.aspect_ratio_id,
	    (int)px.num_tiles, NULL, NULL, &ie);
	imgprep_out_free(&px);
	if (im == NULL || ctx_seq_add_image(c->work, seq, im, &ie) == -1) {
		mllama_image_free(im);
		return err_set(e, "messages: the image: %s", ie.msg);
	}
	mllama_image_free(im);
	return 0;
}

int
classifier_image_prefix(struct classifier *c, const struct policy *pol, enum role role,
    int seq, const struct conv_image *ci, struct tokvec *pre, struct err *e)
{
	struct buf text = { 0 };

	pre->n = 0;
	int rc = prompt_prefix_image(pol, role, c->tok, &text, pre, e);
	buf_free(&text);
	if (rc == -1)
		return -1;
	if (pre->n + MAX_ANSWER + 4 > (size_t)c->p.n_ctx)
		return err_set(e, "the policy prefix with the image is %zu tokens; the context holds "
		    "%d", pre->n, c->p.n_ctx);
	ctx_seq_clear(c->work, seq);
	if (attach(c, seq, ci, e) == -1 ||
	    ctx_eval(c->work, seq, pre->v, (int)pre->n, e) == -1) {
		ctx_seq_clear(c->work, seq);
		return -1;
	}
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
