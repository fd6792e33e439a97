/* mllama_image.h - an image as a client sends it (PNG or JPEG bytes) to the projected tokens
 * the cross-attention layers read: decoded, preprocessed for the model, encoded by its vision
 * tower, and attached to a sequence. The one sequence every user of images follows (the
 * guard's classifier/vision.c, the generator's image chats). */
#ifndef GUARDD_MLLAMA_IMAGE_H
#define GUARDD_MLLAMA_IMAGE_H

#include <stddef.h>
#include "util/err.h"

struct ctx;
struct model;
struct imgprep_config;
struct mllama_image;
struct mllama_cache;

/* The preprocessing an image gets for m: the copy of preprocessor_config.json a GGUF file
 * stores (guard quantize), the file in a model directory, else Meta's values for the
 * model's tile geometry. 1: from a config; 0: the defaults, note (if not NULL) gets a line
 * saying so, for a warning; -1: a malformed config or one of another tile size or count
 * than the model's vision tower, e names it and the key. */
int mllama_prep_config(const struct model *m, struct imgprep_config *cfg, char *note, size_t n,
    struct err *e);

/* Decodes the bytes (core/image.h's limits), preprocesses them as MllamaImageProcessor does
 * with mllama_prep_config's values, and runs the vision tower and projector on c's threads.
 * The caller frees the result (mllama_image_free). Errors say which stage failed. */
struct mllama_image *mllama_encode_bytes(struct ctx *c, const void *data, size_t len,
    struct err *e);
/* mllama_encode_bytes, then ctx_seq_add_image on seq: the next <|image|> token of seq
 * takes it. */
int mllama_attach_bytes(struct ctx *c, int seq, const void *data, size_t len, struct err *e);

/* The last n images encoded (n >= 1), keyed by the model and the sha256 of their bytes, so
 * that the same image checked again (a guard judging an answer about it every few tokens)
 * costs its keys and values, not the vision tower: the tokens kept are the tower's very
 * output, so the results are bit for bit those of encoding again. Each entry holds
 * max_tiles * 1601 * n_embd floats (105 MB for Llama 3.2 11B). */
struct mllama_cache *mllama_cache_new(int n);
void mllama_cache_free(struct mllama_cache *mc);
/* mllama_attach_bytes through mc (NULL: no cache). */
int mllama_attach_cached(struct mllama_cache *mc, struct ctx *c, int seq, const void *data,
    size_t len, struct err *e);
/* How many attaches found their image in mc (tests, statistics). */
long mllama_cache_hits(const struct mllama_cache *mc);

#endif
