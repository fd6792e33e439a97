/* model_int.h - the model's representation, shared by its loaders and the forward pass. */
#ifndef GUARDD_MODEL_INT_H
#define GUARDD_MODEL_INT_H

#include "core/matmul.h"
#include "core/model.h"

struct gguf;
struct st_set;

struct layer {
	float *attn_norm, *ffn_norm;	/* (n_embd) */
	struct weight wq, wk, wv, wo, gate, up, down;
	struct xlayer *xa;	/* mllama cross-attention layer (core/mllama_int.h), else NULL */
};

struct model {
	struct hparams hp;
	struct layer *layers;
	struct weight tok_embd, output;
	/* A pruned head (output.rows < n_vocab, or any head given a map): row r computes the
	 * logit of token out_ids[r]; every other token's logit is -inf. NULL: row r is token r. */
	int32_t *out_ids;
	float *out_norm;
	float *rope_inv;	/* (head_dim/2) inverse frequencies, scaling applied */
	int rope_halves;	/* 1: pair (i, i+d/2) as HF checkpoints; 0: (2i, 2i+1) as GGUF */
	int wtype;		/* the matrices' most frequent type */
	char wdesc[128];	/* model_weight_type; empty: wtype's name */
	char *path;
	const char *format;
	char hash[65];		/* hex SHA-256: see model_hash */
	int hash_cached;	/* every digest came from a sidecar */
	struct gguf *gguf;
	struct st_set *st;
	struct tok *tok;
	struct mllama *mm;	/* Llama 3.2-Vision's vision tower and extras, else NULL */
};

int load_gguf(struct model *m, const char *path, struct err *e);
/* Sets m->wtype and m->wdesc from a GGUF model's matrices ("Q4_K_M (Q4_K x12, Q6_K x3)"). */
void gguf_describe_types(struct model *m);
int load_hf(struct model *m, const char *dir, struct err *e);
/* Checks hyper-parameters, computes the rope table; called by both loaders. */
int model_finish(struct model *m, const float *rope_freqs, struct err *e);
/* Validates a pruned head's map (n ids, one per row of m->output: in the vocabulary, no
 * token twice) and installs it as m->out_ids; errors name where, the key and the index,
 * and the file offset of the id when off >= 0 (that of ids[0]; 4-byte elements). */
int head_map_set(struct model *m, const char *where, const char *key, const int64_t *ids,
    size_t n, int64_t off, struct err *e);
/* A 1-D tensor as a fresh float array (norms are tiny: converting them is not a copy of the
 * weights). */
float *vec_to_f32(const void *data, int type, int64_t n);

#endif
