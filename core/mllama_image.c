/* mllama_image.c - one image's bytes to its projected tokens (decode, MllamaImageProcessor's
 * preprocessing, vision tower, projector) and onto a sequence, and a small cache of the
 * tokens of the images encoded last. The guard and the generator both come through here,
 * so an image is seen the same way by both. */
#include "core/mllama_image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ctx_int.h"
#include "core/gguf.h"
#include "core/image.h"
#include "core/imgprep.h"
#include "core/mllama.h"
#include "core/mllama_int.h"
#include "core/model.h"
#include "core/model_int.h"
#include "util/sha256.h"

int
mllama_prep_config(const struct model *m, struct imgprep_config *cfg, char *note, size_t n,
    struct err *e)
{
	char name[4300];
	struct gguf_str js;
	int max_tiles, rc = -2;
	uint32_t size = (uint32_t)model_image_size(m, &max_tiles);

	imgprep_config_default(cfg);
	if (m->gguf != NULL && gguf_has(m->gguf, MLLAMA_GGUF_PREPROC)) {
		/* guard quantize stored the checkpoint's file verbatim: the same preprocessing as
		 * the directory it came from */
		if (gguf_get_str(m->gguf, MLLAMA_GGUF_PREPROC, &js, e) == -1)
			return -1;
		snprintf(name, sizeof(name), "%s: %s", model_path(m), MLLAMA_GGUF_PREPROC);
		rc = imgprep_config_parse(cfg, js.p, js.n, name, e);
	} else if (m->gguf == NULL) {
		snprintf(name, sizeof(name), "%s/preprocessor_config.json", model_path(m));
		if (access(name, R_OK) == 0)
			rc = imgprep_config_load(cfg, name, e);
	}
	if (rc == -1)
		return -1;
	/* the vision tower reads max_tiles tiles of size x size pixels from what the
	 * preprocessing makes: a config of another geometry would have it read past them */
	if (rc == 0 && cfg->tile != size)
		return err_set(e, "%s: size: %u is not the model's image_size (%u)", name, cfg->tile,
		    size);
	if (rc == 0 && cfg->max_tiles != (uint32_t)max_tiles)
		return err_set(e, "%s: max_image_tiles: %u is not the model's max_num_tiles (%d)",
		    name, cfg->max_tiles, max_tiles);
	if (rc == 0)
		return 1;
	cfg->tile = size;
	cfg->max_tiles = (uint32_t)max_tiles;
	if (note != NULL && n > 0)
		snprintf(note, n, "%s: %s; image preprocessing uses Meta's defaults (%u px tiles, "
		    "at most %u, CLIP mean and std)", model_path(m), m->gguf != NULL ?
		    "the file stores no preprocessor_config.json (" MLLAMA_GGUF_PREPROC ")" :
		    "no preprocessor_config.json in the directory", cfg->tile, cfg->max_tiles);
	return 0;
}

struct mllama_image *
mllama_encode_bytes(struct ctx *c, const void *data, size_t len, struct err *e)
{
	struct image img = { 0 };
	struct imgprep_config cfg;
	struct imgprep_out px;

	if (model_image_token(c->m) < 0) {
		err_set(e, "%s: a text-only model takes no image", model_path(c->m));
		return NULL;
	}
	if (mllama_prep_config(c->m, &cfg, NULL, 0, e) == -1)
		return NULL;
	if (image_decode(&img, data, len, NULL, e) == -1)
		return NULL;
	int rc = imgprep_run(&cfg, &img, &px, e);
	image_free(&img);
	if (rc == -1)
		return NULL;
	struct mllama_image *im = mllama_encode(c, px.pixels, px.aspect_ratio_id,
	    (int)px.num_tiles, NULL, NULL, e);
	imgprep_out_free(&px);
	return im;
}

int
mllama_attach_bytes(struct ctx *c, int seq, const void *data, size_t len, struct err *e)
{
	struct mllama_image *im = mllama_encode_bytes(c, data, len, e);

	if (im == NULL)
		return -1;
	int rc = ctx_seq_add_image(c, seq, im, e);
	mllama_image_free(im);
	return rc;
}

struct mllama_cache_entry {
	const struct model *m;		/* NULL: empty */
	unsigned char hash[32];		/* sha256 of the bytes */
	struct mllama_image *im;
	uint64_t used;			/* when last taken: the oldest goes first */
};

struct mllama_cache {
	struct mllama_cache_entry *e;
	int n;
	uint64_t clock;
	long hits;
};

struct mllama_cache *
mllama_cache_new(int n)
{
	struct mllama_cache *mc = calloc(1, sizeof(*mc));

	if (mc == NULL || n < 1 || (mc->e = calloc((size_t)n, sizeof(*mc->e))) == NULL) {
		free(mc);
		return NULL;
	}
	mc->n = n;
	return mc;
}

void
mllama_cache_free(struct mllama_cache *mc)
{
	if (mc == NULL)
		return;
	for (int i = 0; i < mc->n; i++)
		mllama_image_free(mc->e[i].im);
	free(mc->e);
	free(mc);
}

int
mllama_attach_cached(struct mllama_cache *mc, struct ctx *c, int seq, const void *data,
    size_t len, struct err *e)
{
	struct sha256 h;
	unsigned char d[32];
	int victim = 0;

	if (mc == NULL)
		return mllama_attach_bytes(c, seq, data, len, e);
	sha256_init(&h);
	sha256_update(&h, data, len);
	sha256_final(&h, d);
	for (int i = 0; i < mc->n; i++) {
		struct mllama_cache_entry *x = &mc->e[i];
		if (x->m == c->m && memcmp(x->hash, d, sizeof(d)) == 0) {
			x->used = ++mc->clock;
			mc->hits++;
			return ctx_seq_add_image(c, seq, x->im, e);
		}
		if (x->used < mc->e[victim].used)
			victim = i;
	}
	struct mllama_image *im = mllama_encode_bytes(c, data, len, e);
	if (im == NULL)
		return -1;
	struct mllama_cache_entry *x = &mc->e[victim];
	mllama_image_free(x->im);
	*x = (struct mllama_cache_entry){ c->m, { 0 }, im, ++mc->clock };
	memcpy(x->hash, d, sizeof(d));
	return ctx_seq_add_image(c, seq, im, e);
}

long
mllama_cache_hits(const struct mllama_cache *mc)
{
	return mc != NULL ? mc->hits : 0;
}
