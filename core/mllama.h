/* mllama.h - Llama 3.2-Vision ("mllama"): encoding an image with the model's vision tower
 * and projector, and attaching it to a sequence for the cross-attention layers. The
 * sequence's <|image|> tokens take the attached images in order. */
#ifndef GUARDD_MLLAMA_H
#define GUARDD_MLLAMA_H

#include <stddef.h>
#include "util/err.h"

struct ctx;
struct model;
struct mllama_image;

/* The image token (<|image|>, 128256), or -1 for a text-only model. */
int model_image_token(const struct model *m);
/* The vision input geometry: max_tiles tiles of 3 x image x image floats. 0 for text-only. */
int model_image_size(const struct model *m, int *max_tiles);

/* Called after each stage of the vision tower with its output in the reference's layout
 * (tiny-mllama reference.json "vision_stages": patch_embedding [tiles][dim][grid][grid],
 * pre_tile_positional_embedding [tiles][n_patch][dim], ... multi_modal_projector
 * [tiles][n_tok][n_embd]). For tests; NULL in production. */
typedef void (*mllama_stage_fn)(void *arg, const char *stage, const float *x, size_t n);

/* Runs the vision tower and the projector on pixel_values [max_tiles][3][image][image]
 * (core/imgprep.h's output) of an image of num_tiles tiles in arrangement aspect_ratio_id
 * (1 + index in supported_aspect_ratios), on c's threads. The caller frees the result. */
struct mllama_image *mllama_encode(struct ctx *c, const float *pixels, int aspect_ratio_id,
    int num_tiles, mllama_stage_fn stage, void *arg, struct err *e);
void mllama_image_free(struct mllama_image *im);

/* Appends an image to seq: its cross-attention keys and values are computed here, once.
 * The next <|image|> token of seq (not yet decoded) takes it. */
int ctx_seq_add_image(struct ctx *c, int seq, const struct mllama_image *im, struct err *e);
/* Images attached to seq. */
int ctx_seq_n_images(const struct ctx *c, int seq);

/* Tests: fn sees each batch's hidden states (n rows of n_embd) after the embedding (layer 0)
 * and after each decoder layer l (layer l + 1). NULL turns it off. */
void ctx_set_probe(struct ctx *c, void (*fn)(void *arg, int layer, const float *x, int n),
    void *arg);

#endif
