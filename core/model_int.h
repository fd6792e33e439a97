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
};

struct model {
	struct hparams hp;
	struct layer *layers;
	struct weight tok_embd, output;
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
};

int load_gguf(struct model *m, const char *path, struct err *e);
int load_hf(struct model *m, const char *dir, struct err *e);
/* Checks hyper-parameters, computes the rope table; called by both loaders. */
int model_finish(struct model *m, const float *rope_freqs, struct err *e);
/* A 1-D tensor as a fresh float array (norms are tiny: converting them is not a copy of the
 * weights). */
float *vec_to_f32(const void *data, int type, int64_t n);

#endif
