/* ctx_int.h - the context's buffers, shared by ctx.c (lifetime, cache) and forward.c. */
#ifndef GUARDD_CTX_INT_H
#define GUARDD_CTX_INT_H

#include "core/ctx.h"
#include "core/model_int.h"

enum { ATT_CHUNK = 64 };	/* query rows per attention work item */
enum { ATT_HEADS = 4 };	/* query heads of one kv head computed together (scratch rows) */

/* tokens [start, start+count) of a batch go to positions pos0.. of sequence seq */
struct run {
	int start, count, seq, pos0;
};

struct ctx {
	const struct model *m;
	struct ctx_params p;
	struct pool *pool;
	int own_pool;		/* started by ctx_new (else borrowed from ctx_params) */
	int q_dim, kv_dim;
	/* the cache's layers: every layer but mllama's cross-attention ones, which attend to
	 * their image's keys (core/mllama_ctx.c) and never to this cache */
	int n_kvl;
	int *kvl;		/* per layer: its index in the cache (-1: none); NULL: the layer's own */
	float *k;		/* [kv layer][seq][kv_head][head_dim][pos]: keys transposed */
	float *v;		/* [kv layer][seq][pos][kv_dim] */
	int *len;		/* per sequence */
	/* scratch, sized for n_batch tokens */
	float *x, *xn, *q, *kb, *vb, *att, *g, *u, *s;
	float *rope;		/* per batch token: cos then sin of its RoPE angles (head_dim) */
	struct run *runs;	/* n_batch */
	void *mm;
	float *xo, *logits;	/* n_outputs rows */
	float *head;		/* pruned head (model out_ids): n_outputs rows of its rows, which
				   forward.c spreads over the full-vocabulary logit rows */
	int n_logits;
	int (*cancel)(void *);
	void *cancel_arg;
	struct xstate *xs;
	/* tests: the batch's hidden states after the embedding (0) and each layer (l + 1) */
	void (*probe)(void *arg, int layer, const float *x, int n);
	void *probe_arg;	/* mllama: images per sequence (core/mllama_int.h), else NULL */
};

/* value row of a position (layer: the index in the cache, c->kvl) */
static inline float *
v_at(const struct ctx *c, int layer, int seq, int pos)
{
	return c->v + (((size_t)layer * c->p.n_seq + (size_t)seq) * c->p.n_ctx + (size_t)pos) *
	    (size_t)c->kv_dim;
}

/* keys of one kv head: head_dim rows of n_ctx positions */
static inline float *
kt_at(const struct ctx *c, int layer, int seq, int kvh)
{
	return c->k + (((size_t)layer * c->p.n_seq + (size_t)seq) * c->kv_dim +
	    (size_t)kvh * c->m->hp.head_dim) * (size_t)c->p.n_ctx;
}

#endif
