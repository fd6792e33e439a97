/* model.h - an immutable Llama model: hyper-parameters, mmapped weights, vocabulary.
 * Shared read-only by every context and thread. */
#ifndef GUARDD_MODEL_H
#define GUARDD_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

struct model;
struct tok;

struct hparams {
	int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
	float eps, rope_theta;
	int rope_llama3;	/* llama3 frequency scaling (from config or rope_freqs.weight) */
	float rope_factor, rope_low, rope_high;
	int rope_orig_ctx;
	int tied;		/* output head shares the embedding matrix */
	int32_t bos, eos, eot;	/* -1 when unknown */
};

/* Opens a .gguf file or a Hugging Face model directory. */
struct model *model_open(const char *path, struct err *e);
void model_close(struct model *m);

const struct hparams *model_hparams(const struct model *m);
/* The model's tokenizer, or NULL when the checkpoint has none; valid until model_close. */
const struct tok *model_tok(const struct model *m);
/* Storage type of the matrices, e.g. "BF16", "Q8_0", or for a mix llama.cpp's name of it
 * (general.file_type) and the count of each type: "Q4_K_M (Q4_K x12, Q6_K x3)". */
const char *model_weight_type(const struct model *m);
/* The ggml type id most of the matrices have. */
int model_matrix_type(const struct model *m);
const char *model_path(const struct model *m);
/* Bytes of weights one decode step reads: every matrix once, one embedding row. */
size_t model_weight_bytes_per_token(const struct model *m);
/* "gguf" or "hf". */
const char *model_format(const struct model *m);
/* The model's content hash, 64 hex digits: a GGUF file's SHA-256 (what `sha256sum FILE`
 * prints); for a Hugging Face directory, the SHA-256 of what `sha256sum` prints for the files
 * the loader reads, sorted by name in byte order (LC_ALL=C):
 *   cd DIR && sha256sum config.json model.safetensors tokenizer.json | sha256sum
 * (with model.safetensors.index.json and the shards instead of model.safetensors when
 * sharded; tokenizer.json only when present; without it, tokenizer.model when present, the
 * SentencePiece model the loader then reads; for Llama 3.2-Vision, preprocessor_config.json
 * too when present, which decides what an image becomes). Computed at model_open; each file's digest is
 * cached in "<file>.sha256" beside it, keyed by size, mtime, ctime, inode and device. */
const char *model_hash(const struct model *m);
/* The output head's row count: n_vocab for a full head, fewer for a pruned one. *ids (when
 * ids is not NULL) becomes the token id of each row, or NULL when row r is token r. Either
 * way ctx_logits returns full-vocabulary rows (-inf for tokens without a row). Valid until
 * model_close. */
int model_head(const struct model *m, const int32_t **ids);
/* 1 when model_open took every digest from its sidecar (nothing was read in full). */
int model_hash_cached(const struct model *m);

#endif
