/* forward.c - the Llama forward pass over a batch of tokens from one or more sequences:
 * embeddings, then per layer RMSNorm -> QKV -> RoPE -> causal GQA attention over the cache ->
 * output projection -> residual -> RMSNorm -> SwiGLU MLP -> residual; final norm and head
 * only for the rows that want logits (a pruned head: only its rows, spread over the
 * vocabulary). */
#include "core/ctx_int.h"
#include "core/mllama_int.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "core/matmul.h"
#include "core/ops.h"
#include "core/pool.h"

struct fwd {
	struct ctx *c;
	const struct layer *L;
	int layer, n;
	struct run *runs;
	int n_runs;
	const float *norm;	/* rmsnorm weight */
	const float *src;
	float *dst;
	int rows;
	atomic_int next;	/* attention work items handed out */
};

/* rows [i0, i1) of n for thread ith */
static void
span(int n, int ith, int nth, int *i0, int *i1)
{
	*i0 = n * ith / nth;
	*i1 = n * (ith + 1) / nth;
}

static void
do_norm(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	int d = f->c->m->hp.n_embd, i0, i1;

	span(f->rows, ith, nth, &i0, &i1);
	for (int i = i0; i < i1; i++)
		rmsnorm(f->dst + (size_t)i * d, f->src + (size_t)i * d, f->norm, d, f->c->m->hp.eps);
}

static void
do_add(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	size_t n = (size_t)f->rows * f->c->m->hp.n_embd;
	size_t a = n * ith / nth, b = n * (ith + 1) / nth;

	for (size_t i = a; i < b; i++)
		f->dst[i] += f->src[i];
}

static void
do_silu(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	size_t ff = (size_t)f->c->m->hp.n_ff, n = (size_t)f->rows;
	size_t a = n * ith / nth, b = n * (ith + 1) / nth;

	silu_mul(f->c->g + a * ff, f->c->u + a * ff, (int64_t)((b - a) * ff));
}

/* each batch token's RoPE cos and sin, once per batch (every layer and head uses them) */
static void
do_rope_angles(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct ctx *c = f->c;
	const struct model *m = c->m;
	int hd = m->hp.head_dim;

	for (int r = 0; r < f->n_runs; r++) {
		const struct run *R = &f->runs[r];
		int i0, i1;
		span(R->count, ith, nth, &i0, &i1);
		for (int j = i0; j < i1; j++)
			rope_angles(c->rope + (size_t)(R->start + j) * hd, hd, R->pos0 + j, m->rope_inv);
	}
}

/* RoPE on q and k, then k and v into the cache at each token's position */
static void
do_rope_store(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct ctx *c = f->c;
	const struct model *m = c->m;
	int hd = m->hp.head_dim;

	for (int r = 0; r < f->n_runs; r++) {
		const struct run *R = &f->runs[r];
		int i0, i1;
		span(R->count, ith, nth, &i0, &i1);
		for (int j = i0; j < i1; j++) {
			int i = R->start + j, pos = R->pos0 + j;
			float *q = c->q + (size_t)i * c->q_dim, *k = c->kb + (size_t)i * c->kv_dim;
			const float *cs = c->rope + (size_t)i * hd;
			for (int h = 0; h < m->hp.n_head; h++)
				rope_apply(q + h * hd, hd, cs, m->rope_halves);
			for (int h = 0; h < m->hp.n_head_kv; h++)
				rope_apply(k + h * hd, hd, cs, m->rope_halves);
			float *kt = kt_at(c, f->layer, R->seq, 0);
			for (int d = 0; d < c->kv_dim; d++)
				kt[(size_t)d * c->p.n_ctx + pos] = k[d];
			memcpy(v_at(c, f->layer, R->seq, pos), c->vb + (size_t)i * c->kv_dim,
			    (size_t)c->kv_dim * sizeof(float));
		}
	}
}

/* Work items: (run, group of up to ATT_HEADS query heads sharing one kv head, chunk of
 * ATT_CHUNK query rows), handed out dynamically because causal chunks near the end of a run
 * cost more. The heads of a group share each key and value load. */
static void
do_attention(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct ctx *c = f->c;
	const struct hparams *hp = &c->m->hp;
	int hd = hp->head_dim, rep = hp->n_head / hp->n_head_kv;
	int hg = (rep + ATT_HEADS - 1) / ATT_HEADS;	/* head groups per kv head */
	float scale = 1.0f / sqrtf((float)hd);
	int64_t lds = c->p.n_ctx;
	float *S = c->s + (size_t)ith * ATT_HEADS * (size_t)lds;

	(void)nth;
	for (;;) {
		int item = atomic_fetch_add(&f->next, 1), r = 0;
		/* find the run this item belongs to */
		while (r < f->n_runs) {
			int chunks = (f->runs[r].count + ATT_CHUNK - 1) / ATT_CHUNK;
			int per = chunks * hp->n_head_kv * hg;
			if (item < per)
				break;
			item -= per;
			r++;
		}
		if (r == f->n_runs)
			return;
		const struct run *R = &f->runs[r];
		int chunks = (R->count + ATT_CHUNK - 1) / ATT_CHUNK;
		int grp = item / chunks, ch = item % chunks, kvh = grp / hg;
		int h0 = kvh * rep + (grp % hg) * ATT_HEADS;
		int nh = kvh * rep + rep - h0 < ATT_HEADS ? kvh * rep + rep - h0 : ATT_HEADS;
		int j0 = ch * ATT_CHUNK, j1 = j0 + ATT_CHUNK < R->count ? j0 + ATT_CHUNK : R->count;
		int tq = j1 - j0;
		const float *Q = c->q + (size_t)(R->start + j0) * c->q_dim + (size_t)h0 * hd;
		const float *K = kt_at(c, f->layer, R->seq, kvh);
		const float *V = v_at(c, f->layer, R->seq, 0) + (size_t)kvh * hd;
		float *O = c->att + (size_t)(R->start + j0) * c->q_dim + (size_t)h0 * hd;

		for (int rr = 0; rr < tq; rr++)	/* causal: keys up to the row's own position */
			attn_rows(nh, Q + (size_t)rr * c->q_dim, hd, K, c->p.n_ctx, V, c->kv_dim,
			    R->pos0 + j0 + rr + 1, hd, scale, S, lds, O + (size_t)rr * c->q_dim, hd);
	}
}

/* A pruned head: W (rows, n_embd) @ xo (n_out, n_embd) -> head (n_out, rows), the same
 * kernels as a full head (a row's result depends on that row alone, so each equals the full
 * head's row for its token, bit for bit); then each output becomes a full-vocabulary row,
 * -inf where the head has no row, so that a softmax, argmax or sampler over the vocabulary
 * gives exactly the distribution over the head's tokens. */
static void
pruned_head(struct ctx *c, int n_out)
{
	const struct model *m = c->m;
	int64_t rows = m->output.rows, nv = m->hp.n_vocab;

	matmul(c->pool, &m->output, c->xo, n_out, c->head, c->mm);
	for (int k = 0; k < n_out; k++) {
		float *l = c->logits + (size_t)k * (size_t)nv;
		const float *h = c->head + (size_t)k * (size_t)rows;
		for (int64_t t = 0; t < nv; t++)
			l[t] = -INFINITY;
		for (int64_t r = 0; r < rows; r++)
			l[m->out_ids[r]] = h[r];
	}
}

static int
plan(struct ctx *c, const struct batch *b, struct run *runs, int *n_runs, int *n_out,
    struct err *e)
{
	if (b->n <= 0 || b->n > c->p.n_batch)
		return err_set(e, "batch of %d tokens (1 to %d)", b->n, c->p.n_batch);
	*n_runs = 0;
	*n_out = 0;
	for (int i = 0; i < b->n; i++) {
		int s = b->seq[i];
		/* mllama: embedding rows beyond the vocabulary (<|image|>) */
		if (b->tokens[i] < 0 || b->tokens[i] >= c->m->tok_embd.rows)
			return err_set(e, "token %d at batch index %d is outside the vocabulary (0..%lld)",
			    b->tokens[i], i, (long long)c->m->tok_embd.rows - 1);
		if (s < 0 || s >= c->p.n_seq)
			return err_set(e, "sequence %d at batch index %d (context has %d)", s, i,
			    c->p.n_seq);
		if (b->want_logits && b->want_logits[i])
			(*n_out)++;
		if (*n_runs > 0 && runs[*n_runs - 1].seq == s) {
			runs[*n_runs - 1].count++;
			continue;
		}
		for (int r = 0; r < *n_runs; r++)
			if (runs[r].seq == s)
				return err_set(e, "tokens of sequence %d are not contiguous in the batch", s);
		runs[(*n_runs)++] = (struct run){ i, 1, s, c->len[s] };
	}
	for (int r = 0; r < *n_runs; r++)
		if (runs[r].pos0 + runs[r].count > c->p.n_ctx)
			return err_set(e, "sequence %d: %d + %d tokens exceed the context of %d",
			    runs[r].seq, runs[r].pos0, runs[r].count, c->p.n_ctx);
	if (*n_out > c->p.n_outputs)
		return err_set(e, "%d logit rows requested, context returns at most %d", *n_out,
		    c->p.n_outputs);
	return 0;
}

int
ctx_decode(struct ctx *c, const struct batch *b, struct err *e)
{
	const struct model *m = c->m;
	const struct hparams *hp = &m->hp;
	struct run *runs = c->runs;
	struct fwd f;
	int n_runs, n_out, n = b->n;

	c->n_logits = 0;
	if (n <= 0 || n > c->p.n_batch)
		return err_set(e, "batch of %d tokens (1 to %d)", n, c->p.n_batch);
	if (plan(c, b, runs, &n_runs, &n_out, e) == -1)
		return -1;
	if (c->xs != NULL && mllama_plan(c, b, runs, n_runs, e) == -1)
		return -1;
	memset(&f, 0, sizeof(f));
	f.c = c;
	f.n = n;
	f.runs = runs;
	f.n_runs = n_runs;
	for (int i = 0; i < n; i++)
		weight_row(&m->tok_embd, b->tokens[i], c->x + (size_t)i * hp->n_embd);
	if (c->probe)
		c->probe(c->probe_arg, 0, c->x, n);
	pool_run(c->pool, do_rope_angles, &f);
	for (int l = 0; l < hp->n_layer; l++) {
		const struct layer *L = &m->layers[l];
		if (L->xa != NULL) {	/* mllama cross-attention layer: core/mllama_ctx.c */
			mllama_cross_layer(c, runs, n_runs, n, l);
			if (c->probe)
				c->probe(c->probe_arg, l + 1, c->x, n);
			continue;
		}
		f.layer = c->kvl != NULL ? c->kvl[l] : l;	/* its place in the KV cache */
		f.L = L;
		f.rows = n;
		/* attention block */
		f.src = c->x; f.dst = c->xn; f.norm = L->attn_norm;
		pool_run(c->pool, do_norm, &f);
		matmul(c->pool, &L->wq, c->xn, n, c->q, c->mm);
		matmul(c->pool, &L->wk, c->xn, n, c->kb, c->mm);
		matmul(c->pool, &L->wv, c->xn, n, c->vb, c->mm);
		pool_run(c->pool, do_rope_store, &f);
		atomic_store(&f.next, 0);
		pool_run(c->pool, do_attention, &f);
		matmul(c->pool, &L->wo, c->att, n, c->xn, c->mm);
		f.src = c->xn; f.dst = c->x;
		pool_run(c->pool, do_add, &f);
		/* MLP block */
		f.src = c->x; f.dst = c->xn; f.norm = L->ffn_norm;
		pool_run(c->pool, do_norm, &f);
		matmul(c->pool, &L->gate, c->xn, n, c->g, c->mm);
		matmul(c->pool, &L->up, c->xn, n, c->u, c->mm);
		pool_run(c->pool, do_silu, &f);
		matmul(c->pool, &L->down, c->g, n, c->xn, c->mm);
		f.src = c->xn; f.dst = c->x;
		pool_run(c->pool, do_add, &f);
		if (c->probe)
			c->probe(c->probe_arg, l + 1, c->x, n);
		if (c->cancel && c->cancel(c->cancel_arg))
			return err_set(e, "cancelled");
	}
	if (n_out > 0) {
		int k = 0;
		for (int i = 0; i < n; i++)
			if (b->want_logits[i])
				rmsnorm(c->xo + (size_t)k++ * hp->n_embd, c->x + (size_t)i * hp->n_embd,
				    m->out_norm, hp->n_embd, hp->eps);
		if (m->out_ids == NULL)
			matmul(c->pool, &m->output, c->xo, n_out, c->logits, c->mm);
		else
			pruned_head(c, n_out);
	}
	/* commit: the new positions become part of their sequences */
	for (int r = 0; r < n_runs; r++)
		c->len[runs[r].seq] += runs[r].count;
	c->n_logits = n_out;
	return 0;
}
