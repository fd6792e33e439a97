/* mllama_ctx.c - the images of each sequence and the text stack's cross-attention layers
 * (Llama 3.2-Vision, Meta's semantics). An attached image's keys and values are computed
 * once, for every cross-attention layer, and kept with the sequence. The <|image|> tokens
 * take the attached images in order; a token attends to the image of the last <|image|>
 * before it (a run of consecutive <|image|> tokens: to all of the run's images), to the
 * num_tiles valid tiles of each. Tokens before the first <|image|> see no image: a
 * cross-attention layer is the identity for them (attention and MLP contributions both
 * zero), and a batch in which no token sees an image skips the layer. */
#include "core/mllama_int.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/matmul.h"
#include "core/ops.h"
#include "core/pool.h"

static size_t
at(const struct ctx *c, int seq, int pos)
{
	return (size_t)seq * (size_t)c->p.n_ctx + (size_t)pos;
}

int
mllama_ctx_new(struct ctx *c, struct err *e)
{
	struct xstate *X;
	size_t n = (size_t)c->p.n_seq * (size_t)c->p.n_ctx;

	if (c->m->mm == NULL)
		return 0;
	if ((X = calloc(1, sizeof(*X))) == NULL)
		return err_set(e, "out of memory");
	c->xs = X;
	X->seq = calloc((size_t)c->p.n_seq, sizeof(*X->seq));
	X->lo = calloc(n, sizeof(int));
	X->hi = calloc(n, sizeof(int));
	X->cnt = calloc(n, sizeof(int));
	X->tseq = calloc((size_t)c->p.n_batch, sizeof(int));
	X->tpos = calloc((size_t)c->p.n_batch, sizeof(int));
	if (X->seq == NULL || X->lo == NULL || X->hi == NULL || X->cnt == NULL || X->tseq == NULL ||
	    X->tpos == NULL)
		return err_set(e, "context: out of memory (image state)");
	return 0;
}

static void
xseq_drop(struct ctx *c, struct xseq *S, int keep)
{
	if (keep >= S->n_img)
		return;
	S->n_img = keep;
	(void)c;
}

static void
xseq_free(const struct ctx *c, struct xseq *S)
{
	for (int l = 0; S->k != NULL && l < c->m->mm->n_cross; l++) {
		free(S->k[l]);
		free(S->v[l]);
	}
	free(S->k);
	free(S->v);
	free(S->off);
	memset(S, 0, sizeof(*S));
}

void
mllama_ctx_free(struct ctx *c)
{
	struct xstate *X = c->xs;

	if (X == NULL)
		return;
	for (int s = 0; X->seq != NULL && s < c->p.n_seq; s++)
		xseq_free(c, &X->seq[s]);
	free(X->seq); free(X->lo); free(X->hi); free(X->cnt); free(X->s);
	free(X->tseq); free(X->tpos);
	free(X);
	c->xs = NULL;
}

/* room for one more image of rows key rows in S, and the score scratch */
int
mllama_xseq_grow(struct ctx *c, struct xseq *S, size_t rows, struct err *e)
{
	struct xstate *X = c->xs;
	int nx = c->m->mm->n_cross;

	if (S->k == NULL && ((S->k = calloc((size_t)nx + 1, sizeof(float *))) == NULL ||
	    (S->v = calloc((size_t)nx + 1, sizeof(float *))) == NULL))
		return err_set(e, "out of memory");
	if (S->n_img + 1 >= S->cap_img) {
		int cap = S->cap_img ? 2 * S->cap_img : 4;
		int *off = realloc(S->off, (size_t)(cap + 1) * sizeof(int));
		if (off == NULL)
			return err_set(e, "out of memory");
		if (S->cap_img == 0)
			off[0] = 0;
		S->off = off;
		S->cap_img = cap;
	}
	size_t need = (size_t)S->off[S->n_img] + rows;
	if (need > S->cap_rows) {
		size_t cap = need > 2 * S->cap_rows ? need : 2 * S->cap_rows;
		for (int l = 0; l < nx; l++) {
			float *k = realloc(S->k[l], cap * (size_t)c->kv_dim * sizeof(float));
			if (k != NULL)
				S->k[l] = k;
			float *v = realloc(S->v[l], cap * (size_t)c->kv_dim * sizeof(float));
			if (v != NULL)
				S->v[l] = v;
			if (k == NULL || v == NULL)
				return err_set(e, "out of memory (image keys: %zu MiB)",
				    cap * (size_t)c->kv_dim * 8 * (size_t)nx >> 20);
		}
		S->cap_rows = cap;
	}
	if (need > X->s_cap) {
		float *s = realloc(X->s, need * (size_t)c->p.n_threads * sizeof(float));
		if (s == NULL)
			return err_set(e, "out of memory");
		X->s = s;
		X->s_cap = need;
	}
	return 0;
}

int
ctx_seq_add_image(struct ctx *c, int seq, const struct mllama_image *im, struct err *e)
{
	const struct model *m = c->m;
	const struct hparams *hp = &m->hp;

	if (c->xs == NULL)
		return err_set(e, "%s: a text-only model takes no image", m->path);
	if (seq < 0 || seq >= c->p.n_seq)
		return err_set(e, "image: no sequence %d", seq);
	if (im->n_embd != hp->n_embd || im->n_tok != m->mm->n_tok)
		return err_set(e, "image: encoded by another model");
	struct xseq *S = &c->xs->seq[seq];
	int rows = im->num_tiles * im->n_tok;
	/* each image is taken by an <|image|> token still to come: no more than the room left */
	int pending = S->n_img - (c->len[seq] > 0 ? c->xs->cnt[at(c, seq, c->len[seq] - 1)] : 0);
	if (pending >= c->p.n_ctx - c->len[seq])
		return err_set(e, "image: sequence %d has %d of %d positions left and %d image(s) "
		    "waiting for their <|image|> token: no room for another", seq,
		    c->p.n_ctx - c->len[seq], c->p.n_ctx, pending);
	if (mllama_xseq_grow(c, S, (size_t)rows, e) == -1)
		return -1;
	void *mm = malloc(matmul_scratch_size(rows, hp->n_embd));
	if (mm == NULL)
		return err_set(e, "out of memory");
	size_t o = (size_t)S->off[S->n_img] * (size_t)c->kv_dim;
	for (int l = 0; l < hp->n_layer; l++) {
		const struct layer *L = &m->layers[l];
		if (L->xa == NULL)
			continue;
		float *k = S->k[L->xa->slot] + o, *v = S->v[L->xa->slot] + o;
		matmul(c->pool, &L->wk, im->x, rows, k, mm);
		matmul(c->pool, &L->wv, im->x, rows, v, mm);
		for (size_t r = 0; r < (size_t)rows * hp->n_head_kv; r++) {
			float *h = k + r * (size_t)hp->head_dim;
			rmsnorm(h, h, L->xa->k_norm, hp->head_dim, hp->eps);
		}
	}
	free(mm);
	S->off[S->n_img + 1] = S->off[S->n_img] + rows;
	S->n_img++;
	return 0;
}

int
ctx_seq_n_images(const struct ctx *c, int seq)
{
	return c->xs != NULL && seq >= 0 && seq < c->p.n_seq ? c->xs->seq[seq].n_img : 0;
}

int
mllama_plan(struct ctx *c, const struct batch *b, const struct run *runs, int n_runs,
    struct err *e)
{
	struct xstate *X = c->xs;
	int img = c->m->mm->image_token;

	for (int r = 0; r < n_runs; r++) {
		const struct run *R = &runs[r];
		const struct xseq *S = &X->seq[R->seq];
		for (int j = 0; j < R->count; j++) {
			int pos = R->pos0 + j, t = b->tokens[R->start + j];
			int lo = 0, hi = 0, cnt = 0, prev_img = 0;
			if (pos > 0) {
				size_t p = at(c, R->seq, pos - 1);
				lo = X->lo[p];
				hi = X->hi[p];
				cnt = X->cnt[p];
				prev_img = cnt > (pos > 1 ? X->cnt[p - 1] : 0);
			}
			if (t == img) {
				if (cnt >= S->n_img)
					return err_set(e, "sequence %d: the <|image|> token at position %d "
					    "is image %d, and the sequence has %d attached", R->seq, pos,
					    cnt + 1, S->n_img);
				lo = prev_img ? lo : cnt;
				hi = ++cnt;
			} else if (t >= c->m->hp.n_vocab && t < (int)c->m->tok_embd.rows)
				return err_set(e, "token %d at batch index %d is an embedding row beyond "
				    "the vocabulary that is not <|image|> (%d)", t, R->start + j, img);
			size_t p = at(c, R->seq, pos);
			X->lo[p] = lo;
			X->hi[p] = hi;
			X->cnt[p] = cnt;
		}
	}
	return 0;
}

struct xjob {
	struct ctx *c;
	const struct run *runs;
	int n_runs, n;
	const struct xlayer *xa;
	const float *norm;
	int *tok_seq, *tok_pos;	/* per batch row */
	atomic_int next;
};

static void
do_rms(void *arg, int ith, int nth)
{
	struct xjob *J = arg;
	int d = J->c->m->hp.n_embd;

	for (int i = J->n * ith / nth; i < J->n * (ith + 1) / nth; i++)
		rmsnorm(J->c->xn + (size_t)i * d, J->c->x + (size_t)i * d, J->norm, d, J->c->m->hp.eps);
}

/* one (row, head) per work item: q_norm, then softmax attention over the images it sees */
static void
do_xattn(void *arg, int ith, int nth)
{
	struct xjob *J = arg;
	struct ctx *c = J->c;
	const struct hparams *hp = &c->m->hp;
	int hd = hp->head_dim, rep = hp->n_head / hp->n_head_kv;
	float scale = 1.0f / sqrtf((float)hd);
	float *S = c->xs->s + (size_t)ith * c->xs->s_cap;

	(void)nth;
	for (;;) {
		int item = atomic_fetch_add(&J->next, 1);
		if (item >= J->n * hp->n_head)
			return;
		int i = item / hp->n_head, h = item % hp->n_head, kvh = h / rep;
		size_t p = at(c, J->tok_seq[i], J->tok_pos[i]);
		int lo = c->xs->lo[p], hi = c->xs->hi[p];
		float *q = c->q + (size_t)i * c->q_dim + (size_t)h * hd;
		float *o = c->att + (size_t)i * c->q_dim + (size_t)h * hd;
		memset(o, 0, (size_t)hd * sizeof(float));
		if (lo >= hi)
			continue;
		const struct xseq *X = &c->xs->seq[J->tok_seq[i]];
		rmsnorm(q, q, J->xa->q_norm, hd, hp->eps);
		int k0 = X->off[lo], nk = X->off[hi] - k0;
		const float *K = X->k[J->xa->slot] + (size_t)k0 * c->kv_dim + (size_t)kvh * hd;
		const float *V = X->v[J->xa->slot] + (size_t)k0 * c->kv_dim + (size_t)kvh * hd;
		for (int j = 0; j < nk; j++) {
			const float *k = K + (size_t)j * c->kv_dim;
			float s = 0;
			for (int d = 0; d < hd; d++)
				s += q[d] * k[d];
			S[j] = s * scale;
		}
		softmax(S, nk);
		for (int j = 0; j < nk; j++) {
			const float *v = V + (size_t)j * c->kv_dim;
			for (int d = 0; d < hd; d++)
				o[d] += S[j] * v[d];
		}
	}
}

static void
do_silu(void *arg, int ith, int nth)
{
	struct xjob *J = arg;
	size_t ff = (size_t)J->c->m->hp.n_ff, n = (size_t)J->n;
	size_t a = n * ith / nth, b = n * (ith + 1) / nth;

	silu_mul(J->c->g + a * ff, J->c->u + a * ff, (int64_t)((b - a) * ff));
}

/* x += gate * xn for the rows that see an image */
static void
add_gated(struct xjob *J, float gate)
{
	struct ctx *c = J->c;
	int d = c->m->hp.n_embd;

	for (int i = 0; i < J->n; i++) {
		size_t p = at(c, J->tok_seq[i], J->tok_pos[i]);
		if (c->xs->lo[p] >= c->xs->hi[p])
			continue;
		float *x = c->x + (size_t)i * d;
		const float *y = c->xn + (size_t)i * d;
		for (int k = 0; k < d; k++)
			x[k] += gate * y[k];
	}
}

void
mllama_cross_layer(struct ctx *c, const struct run *runs, int n_runs, int n, int l)
{
	const struct layer *L = &c->m->layers[l];
	struct xjob J = { c, runs, n_runs, n, L->xa, NULL, NULL, NULL, 0 };
	int *pos = c->xs->tpos, *seq = c->xs->tseq, any = 0;

	for (int r = 0; r < n_runs; r++)
		for (int j = 0; j < runs[r].count; j++) {
			int i = runs[r].start + j;
			seq[i] = runs[r].seq;
			pos[i] = runs[r].pos0 + j;
			size_t p = at(c, seq[i], pos[i]);
			any |= c->xs->lo[p] < c->xs->hi[p];
		}
	if (!any)
		return;		/* the identity for every row */
	J.tok_seq = seq;
	J.tok_pos = pos;
	J.norm = L->attn_norm;
	pool_run(c->pool, do_rms, &J);
	matmul(c->pool, &L->wq, c->xn, n, c->q, c->mm);
	atomic_store(&J.next, 0);
	pool_run(c->pool, do_xattn, &J);
	matmul(c->pool, &L->wo, c->att, n, c->xn, c->mm);
	add_gated(&J, L->xa->attn_gate);
	J.norm = L->ffn_norm;
	pool_run(c->pool, do_rms, &J);
	matmul(c->pool, &L->gate, c->xn, n, c->g, c->mm);
	matmul(c->pool, &L->up, c->xn, n, c->u, c->mm);
	pool_run(c->pool, do_silu, &J);
	matmul(c->pool, &L->down, c->g, n, c->xn, c->mm);
	add_gated(&J, L->xa->mlp_gate);
}

void
mllama_seq_truncate(struct ctx *c, int seq, int n)
{
	if (c->xs == NULL)
		return;
	/* images whose <|image|> token is no longer in the sequence go with it */
	xseq_drop(c, &c->xs->seq[seq], n > 0 ? c->xs->cnt[at(c, seq, n - 1)] : 0);
}

int
mllama_seq_copy(struct ctx *b, int dst, const struct ctx *a, int src, int n, struct err *e)
{
	if (b->xs == NULL)
		return 0;
	const struct xseq *A = &a->xs->seq[src];
	struct xseq *B = &b->xs->seq[dst];
	int keep = n > 0 ? a->xs->cnt[at(a, src, n - 1)] : 0;

	if (a == b && src == dst) {
		xseq_drop(b, B, keep);
		return 0;
	}
	B->n_img = 0;
	for (int i = 0; i < keep; i++) {
		size_t rows = (size_t)(A->off[i + 1] - A->off[i]);
		if (mllama_xseq_grow(b, B, rows, e) == -1)
			return -1;
		size_t o = (size_t)A->off[i] * (size_t)a->kv_dim, bytes = rows * (size_t)a->kv_dim *
		    sizeof(float);
		for (int l = 0; l < a->m->mm->n_cross; l++) {
			memcpy(B->k[l] + o, A->k[l] + o, bytes);
			memcpy(B->v[l] + o, A->v[l] + o, bytes);
		}
		B->off[i + 1] = A->off[i + 1];
		B->n_img++;
	}
	memcpy(b->xs->lo + at(b, dst, 0), a->xs->lo + at(a, src, 0), (size_t)n * sizeof(int));
	memcpy(b->xs->hi + at(b, dst, 0), a->xs->hi + at(a, src, 0), (size_t)n * sizeof(int));
	memcpy(b->xs->cnt + at(b, dst, 0), a->xs->cnt + at(a, src, 0), (size_t)n * sizeof(int));
	return 0;
}

int
mllama_seq_sees_image(const struct ctx *c, int seq, int from, int to)
{
	if (c->xs == NULL)
		return 0;
	for (int p = from; p < to; p++)
		if (c->xs->cnt[at(c, seq, p)] > 0)
			return 1;
	return 0;
}

void
mllama_seq_mark_plain(struct ctx *c, int seq, int from, int to)
{
	if (c->xs == NULL)
		return;
	for (int p = from; p < to; p++) {
		size_t i = at(c, seq, p);
		c->xs->lo[i] = c->xs->hi[i] = c->xs->cnt[i] = 0;
	}
	if (from == 0)
		c->xs->seq[seq].n_img = 0;
}

void
ctx_set_probe(struct ctx *c, void (*fn)(void *arg, int layer, const float *x, int n), void *arg)
{
	c->probe = fn;
	c->probe_arg = arg;
}
