/* mllama_int.h - Llama 3.2-Vision ("mllama") weights and per-sequence image state, shared by
 * its loader (mllama_load.c), the vision tower (vision.c) and the cross-attention layers of
 * the text stack (mllama_ctx.c). */
#ifndef GUARDD_MLLAMA_INT_H
#define GUARDD_MLLAMA_INT_H

#include "core/ctx_int.h"
#include "core/mllama.h"

enum { MLLAMA_MAX_INTER = 16 };	/* intermediate_layers_indices entries */

/* one vision transformer layer (pre-LayerNorm, GELU MLP with biases, attention without) */
struct vlayer {
	float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
	struct weight wq, wk, wv, wo, fc1, fc2;
	float *fc1_b, *fc2_b;
	float gate_attn, gate_ffn;	/* tanh(gate); 1 for the local (ungated) layers */
};

/* a cross-attention text layer's extras (its projections, norms and MLP are in struct layer) */
struct xlayer {
	int slot;			/* index among the cross-attention layers */
	float *q_norm, *k_norm;		/* (head_dim) RMSNorm weights */
	float attn_gate, mlp_gate;	/* tanh(gate) */
};

struct mllama {
	int image_token;		/* <|image|>: 128256 */
	int n_cross;			/* cross-attention layers in the text stack */
	/* vision_config */
	int dim, heads, ff, n_local, n_global, image, patch, max_tiles, n_ar, out_dim;
	int n_inter, inter[MLLAMA_MAX_INTER];
	float eps;
	int grid;			/* image / patch: 40 */
	int n_patch, n_tok, n_padded;	/* 1600, 1601 (+ CLS), 1608 (multiple of 8) */
	int pk;				/* patch_embedding as a matmul: 3 * patch^2 columns padded to 8 */
	float *patch_f32;		/* (dim, pk) */
	struct weight patch_w;
	float *cls;			/* (dim) */
	float *pos;			/* (n_tok, dim) */
	float pos_gate;			/* tanh */
	struct weight tile_pos;		/* (n_ar + 1, max_tiles * n_tok * dim) */
	struct weight pre_tile, post_tile;	/* (n_ar + 1, max_tiles * dim) */
	float pre_gate, post_gate;	/* tanh */
	float *ln_pre_w, *ln_pre_b, *ln_post_w, *ln_post_b;
	struct vlayer *local, *global;
	struct weight proj;		/* multi_modal_projector: (n_embd, out_dim) */
	float *proj_b;
};

/* The projected tokens of one image: max_tiles * n_tok rows of n_embd floats; cross-attention
 * reads the first num_tiles * n_tok (padded tiles are masked). */
struct mllama_image {
	int num_tiles, max_tiles, n_tok, n_embd;
	float *x;
};

/* Per sequence: the images attached (their cross-attention keys and values, every cross
 * layer) and, per position, the images it attends to [lo, hi) and how many <|image|> tokens
 * the sequence has up to and including it. */
struct xseq {
	int n_img, cap_img;
	int *off;			/* (n_img + 1) key rows before image i */
	float **k, **v;			/* per cross layer: (off[n_img], kv_dim) */
	size_t cap_rows;
};

struct xstate {
	struct xseq *seq;		/* n_seq */
	int *lo, *hi, *cnt;		/* [seq][n_ctx] */
	int *tseq, *tpos;		/* per batch row: its sequence and position */
	float *s;			/* scores: n_threads * s_cap */
	size_t s_cap;
};

int load_mllama(struct model *m, const char *dir, struct err *e);

/* The GGUF form (core/mllama_gguf.c, man guard(1) "MLLAMA GGUF FILES"): general.architecture
 * "mllama", tensors under Ollama's names (mllama_gguf_name), config.json and
 * preprocessor_config.json verbatim under these keys. */
#define MLLAMA_GGUF_CONFIG "guardd.mllama.config_json"
#define MLLAMA_GGUF_PREPROC "guardd.mllama.preprocessor_json"
/* The GGUF name of a Hub tensor name ("language_model.model.layers.3.cross_attn.q_proj.weight"
 * -> "blk.3.cross_attn_q_proj.weight"); -1 when it does not fit in n bytes. */
int mllama_gguf_name(const char *hf, char *out, size_t n);
/* An opened mllama GGUF (m->gguf): its tokenizer, config and weights. */
int load_mllama_file(struct model *m, struct err *e);
/* The weights with the config text of the file (mllama_load.c). */
int load_mllama_gguf(struct model *m, const char *config, size_t n, struct err *e);
struct xtensors;
struct gguf_writer;
/* model_export.h for an mllama Hugging Face directory: every tensor under its GGUF name, as
 * stored (1-D ones as F32), q/k rows not permuted; the metadata above. */
int mllama_export_tensors(const struct model *m, struct xtensors *x, struct err *e);
int mllama_export_meta(const struct model *m, struct gguf_writer *w, struct err *e);
/* Does config.json in dir say model_type "mllama"? */
int mllama_config_is(const char *dir);
void mllama_free(struct model *m);

int mllama_ctx_new(struct ctx *c, struct err *e);
void mllama_ctx_free(struct ctx *c);
/* Before the layers: each token's images; refuses an <|image|> token without its image. */
int mllama_plan(struct ctx *c, const struct batch *b, const struct run *runs, int n_runs,
    struct err *e);
/* Runs cross-attention layer l (attention and MLP, each tanh-gated) on the batch in c->x. */
void mllama_cross_layer(struct ctx *c, const struct run *runs, int n_runs, int n, int l);
/* Sequence operations' image side (ctx.c). */
void mllama_seq_truncate(struct ctx *c, int seq, int n);
int mllama_seq_copy(struct ctx *b, int dst, const struct ctx *a, int src, int n, struct err *e);
/* Positions [from, to) of seq attend to an image: refused in KV snapshots. */
int mllama_seq_sees_image(const struct ctx *c, int seq, int from, int to);
/* Marks positions [from, to) of seq as image-free (restored from a snapshot). */
void mllama_seq_mark_plain(struct ctx *c, int seq, int from, int to);
/* Room in S for one more image of rows key rows (and the score scratch). */
int mllama_xseq_grow(struct ctx *c, struct xseq *S, size_t rows, struct err *e);

/* The image side of a KV snapshot (mllama_snap.c): the images the first n positions of a
 * sequence took, their cross-attention keys and values, and each position's image range.
 * *out is NULL when those positions see no image. */
struct mllama_snap;
int mllama_snap_save(const struct ctx *c, int seq, int n, struct mllama_snap **out,
    struct err *e);
/* Makes seq's images and positions 0..n-1's image ranges the snapshot's (n: its positions). */
int mllama_snap_restore(struct ctx *c, int seq, const struct mllama_snap *s, struct err *e);
size_t mllama_snap_bytes(const struct mllama_snap *s);
void mllama_snap_free(struct mllama_snap *s);

#endif
