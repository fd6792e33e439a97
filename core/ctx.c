/* ctx.c - context lifetime and the KV cache's sequence operations. */
#include "core/ctx_int.h"
#include "core/mllama_int.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/matmul.h"
#include "core/pool.h"

struct ctx_params
ctx_params_default(void)
{
	return (struct ctx_params){ .n_ctx = 4096, .n_seq = 1, .n_batch = 512, .n_outputs = 8,
		.n_threads = 0, .pool = NULL };
}

static void *
alloc_f(size_t n, int *fail)
{
	void *p = calloc(n ? n : 1, sizeof(float));

	if (p == NULL)
		*fail = 1;
	return p;
}

/* saturating size arithmetic: SIZE_MAX stands for "overflowed" and stays so */
static size_t
mul(size_t a, size_t b)
{
	return a == SIZE_MAX || b == SIZE_MAX || (a != 0 && b > SIZE_MAX / a) ? SIZE_MAX : a * b;
}

static size_t
add(size_t a, size_t b)
{
	return a == SIZE_MAX || b > SIZE_MAX - a ? SIZE_MAX : a + b;
}

static size_t
max3(size_t a, size_t b, size_t c)
{
	return a > b ? (a > c ? a : c) : (b > c ? b : c);
}

/* element counts of every buffer, checked before anything is allocated */
struct sizes {
	size_t q_dim, kv_dim, cache, x, xn, q, kv, ff, s, rope, xo, logits, head, mm_m, mm_k, total;
};

static int
plan(const struct model *m, const struct ctx_params *p, struct sizes *z, struct err *e)
{
	const struct hparams *h = &m->hp;
	size_t nb = (size_t)p->n_batch, no = (size_t)p->n_outputs;

	z->q_dim = mul((size_t)h->n_head, (size_t)h->head_dim);
	z->kv_dim = mul((size_t)h->n_head_kv, (size_t)h->head_dim);
	/* no rows for mllama's cross-attention layers (they never read this cache) */
	size_t nkvl = (size_t)h->n_layer - (m->mm != NULL ? (size_t)m->mm->n_cross : 0);
	z->cache = mul(mul(mul(nkvl, (size_t)p->n_seq), (size_t)p->n_ctx), z->kv_dim);
	z->x = mul(nb, (size_t)h->n_embd);
	z->xn = mul(nb, z->q_dim > (size_t)h->n_embd ? z->q_dim : (size_t)h->n_embd);
	z->q = mul(nb, z->q_dim);
	z->kv = mul(nb, z->kv_dim);
	z->ff = mul(nb, (size_t)h->n_ff);
	z->s = mul(mul((size_t)p->n_threads, (size_t)p->n_ctx), ATT_HEADS);
	z->rope = mul(nb, (size_t)h->head_dim);
	z->xo = mul(no, (size_t)h->n_embd);
	z->logits = mul(no, (size_t)h->n_vocab);
	z->head = m->out_ids != NULL ? mul(no, (size_t)m->output.rows) : 0;
	z->mm_m = nb > no ? nb : no;
	z->mm_k = max3((size_t)h->n_ff, (size_t)h->n_embd, z->q_dim);
	/* floats: k and v caches, x, xn, q, kb, vb, att, g, u, s, rope, xo, logits, head */
	size_t fl = add(mul(z->cache, 2), add(add(z->x, z->xn), add(mul(z->q, 2), mul(z->kv, 2))));
	fl = add(fl, add(add(mul(z->ff, 2), add(z->s, z->rope)), add(add(z->xo, z->logits), z->head)));
	z->total = add(mul(fl, sizeof(float)), mul(nb, sizeof(struct run)));
	z->total = add(z->total, add(mul(mul(z->mm_m, z->mm_k), sizeof(uint16_t)), 64));
	z->total = add(z->total, mul((size_t)p->n_seq, sizeof(int)));
	if (z->q_dim > INT_MAX || z->kv_dim > INT_MAX || z->mm_m > INT_MAX ||
	    z->mm_k > INT64_MAX || z->total == SIZE_MAX)
		return err_set(e, "context: the buffer sizes overflow (n_ctx %d, n_seq %d, n_batch %d, "
		    "n_outputs %d, %d threads; model: %d layers, kv_dim %zu, ffn %d, vocab %d)",
		    p->n_ctx, p->n_seq, p->n_batch, p->n_outputs, p->n_threads, h->n_layer,
		    z->kv_dim, h->n_ff, h->n_vocab);
	/* calloc may promise more than there is: ask for no more than the machine holds */
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	size_t phys = pages > 0 && psz > 0 ? mul((size_t)pages, (size_t)psz) : SIZE_MAX;
	if (z->total > phys)
		return err_set(e, "context: needs %zu MiB (KV cache %zu MiB for n_ctx %d x n_seq %d), "
		    "more than this machine's %zu MiB of memory", z->total >> 20,
		    mul(z->cache, 2 * sizeof(float)) >> 20, p->n_ctx, p->n_seq, phys >> 20);
	return 0;
}

struct ctx *
ctx_new(const struct model *m, const struct ctx_params *p, struct err *e)
{
	struct ctx_params cp = *p;
	struct sizes z;
	int fail = 0;

	/* a borrowed pool decides the thread count: the scratch is sized by it */
	if (cp.pool != NULL)
		cp.n_threads = pool_size(cp.pool);
	else if (cp.n_threads <= 0)
		cp.n_threads = pool_default_threads();
	if (cp.n_ctx <= 0 || cp.n_ctx > (1 << 20) || cp.n_seq <= 0 || cp.n_seq > 4096 ||
	    cp.n_batch <= 0 || cp.n_outputs <= 0 || cp.n_threads > 1024) {
		err_set(e, "context: n_ctx %d (1..%d), n_seq %d (1..4096), n_batch %d, n_outputs %d "
		    "(positive), threads %d (at most 1024): out of range", cp.n_ctx, 1 << 20,
		    cp.n_seq, cp.n_batch, cp.n_outputs, cp.n_threads);
		return NULL;
	}
	if (plan(m, &cp, &z, e) == -1)
		return NULL;
	struct ctx *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	c->m = m;
	c->p = cp;
	c->q_dim = (int)z.q_dim;
	c->kv_dim = (int)z.kv_dim;
	c->n_kvl = m->hp.n_layer;
	if (m->mm != NULL && (c->kvl = calloc((size_t)m->hp.n_layer, sizeof(int))) != NULL) {
		c->n_kvl = 0;
		for (int l = 0; l < m->hp.n_layer; l++)
			c->kvl[l] = m->layers[l].xa != NULL ? -1 : c->n_kvl++;
	} else if (m->mm != NULL)
		fail = 1;
	size_t nb = (size_t)c->p.n_batch;
	c->k = alloc_f(z.cache, &fail);
	c->v = alloc_f(z.cache, &fail);
	c->len = calloc((size_t)c->p.n_seq, sizeof(int));
	c->x = alloc_f(z.x, &fail);
	c->xn = alloc_f(z.xn, &fail);
	c->q = alloc_f(z.q, &fail);
	c->kb = alloc_f(z.kv, &fail);
	c->vb = alloc_f(z.kv, &fail);
	c->att = alloc_f(z.q, &fail);
	c->g = alloc_f(z.ff, &fail);
	c->u = alloc_f(z.ff, &fail);
	c->s = alloc_f(z.s, &fail);
	c->rope = alloc_f(z.rope, &fail);
	c->runs = calloc(nb, sizeof(struct run));
	c->mm = malloc(matmul_scratch_size((int)z.mm_m, (int64_t)z.mm_k));
	c->xo = alloc_f(z.xo, &fail);
	c->logits = alloc_f(z.logits, &fail);
	c->head = z.head ? alloc_f(z.head, &fail) : NULL;
	c->own_pool = cp.pool == NULL;
	c->pool = c->own_pool ? pool_new(c->p.n_threads) : cp.pool;
	if (!fail && mllama_ctx_new(c, e) == -1) {
		ctx_free(c);
		return NULL;
	}
	if (fail || c->len == NULL || c->runs == NULL || c->mm == NULL || c->pool == NULL) {
		err_set(e, "context: out of memory (%zu MiB, KV cache %zu MiB)", z.total >> 20,
		    z.cache * 2 * sizeof(float) >> 20);
		ctx_free(c);
		return NULL;
	}
	return c;
}

void
ctx_free(struct ctx *c)
{
	if (c == NULL)
		return;
	mllama_ctx_free(c);
	if (c->own_pool)
		pool_free(c->pool);
	free(c->k); free(c->v); free(c->len); free(c->kvl);
	free(c->x); free(c->xn); free(c->q); free(c->kb); free(c->vb); free(c->att);
	free(c->g); free(c->u); free(c->s); free(c->rope); free(c->runs); free(c->mm);
	free(c->xo); free(c->logits); free(c->head);
	free(c);
}

int
ctx_seq_len(const struct ctx *c, int seq)
{
	return seq >= 0 && seq < c->p.n_seq ? c->len[seq] : -1;
}

void
ctx_seq_clear(struct ctx *c, int seq)
{
	if (seq >= 0 && seq < c->p.n_seq) {
		c->len[seq] = 0;
		mllama_seq_truncate(c, seq, 0);
	}
}

int
ctx_seq_truncate(struct ctx *c, int seq, int n, struct err *e)
{
	if (seq < 0 || seq >= c->p.n_seq)
		return err_set(e, "sequence truncate: no sequence %d", seq);
	if (n < 0 || n > c->len[seq])
		return err_set(e, "sequence truncate: %d positions, sequence %d has %d", n, seq,
		    c->len[seq]);
	/* the cache beyond n is left as is: attention reads positions below the length only,
	 * and the next tokens overwrite it */
	c->len[seq] = n;
	mllama_seq_truncate(c, seq, n);
	return 0;
}

int
ctx_seq_copy_from(struct ctx *b, int dst, const struct ctx *a, int src, int n, struct err *e)
{
	if (a->m != b->m)
		return err_set(e, "sequence copy between contexts of different models");
	if (src < 0 || src >= a->p.n_seq || dst < 0 || dst >= b->p.n_seq)
		return err_set(e, "sequence copy: no sequence %d -> %d", src, dst);
	if (n < 0 || n > a->len[src] || n > b->p.n_ctx)
		return err_set(e, "sequence copy: %d positions, source has %d, room for %d", n,
		    a->len[src], b->p.n_ctx);
	if (mllama_seq_copy(b, dst, a, src, n, e) == -1)
		return -1;
	if (a == b && src == dst) {
		b->len[dst] = n;
		return 0;
	}
	for (int l = 0; l < a->n_kvl; l++) {
		/* keys are stored transposed: one run of n positions per (head, dimension) */
		for (int i = 0; i < a->kv_dim; i++)
			memcpy(kt_at(b, l, dst, 0) + (size_t)i * b->p.n_ctx,
			    kt_at(a, l, src, 0) + (size_t)i * a->p.n_ctx, (size_t)n * sizeof(float));
		memcpy(v_at(b, l, dst, 0), v_at(a, l, src, 0), (size_t)n * a->kv_dim * sizeof(float));
	}
	b->len[dst] = n;
	return 0;
}

int
ctx_seq_copy(struct ctx *c, int src, int dst, int n, struct err *e)
{
	return ctx_seq_copy_from(c, dst, c, src, n, e);
}

struct kv_snapshot {
	const struct model *m;
	int from;		/* the first position held (0 but for ctx_snapshot_save_range) */
	int n, kv_dim;		/* positions held: from .. from+n-1 */
	int nl;			/* the cache's layers (ctx n_kvl) */
	float *k;		/* [layer][kv_dim][n]: keys transposed, like the cache */
	float *v;		/* [layer][n][kv_dim] */
	struct mllama_snap *img;	/* the images the positions see (ctx_snapshot_save_images) */
};

struct kv_snapshot *
ctx_snapshot_save(const struct ctx *c, int seq, int n, struct err *e)
{
	return ctx_snapshot_save_range(c, seq, 0, n, e);
}

static struct kv_snapshot *
save(const struct ctx *c, int seq, int from, int to, int images, struct err *e)
{
	struct kv_snapshot *s;
	int nl = c->n_kvl;

	if (seq < 0 || seq >= c->p.n_seq) {
		err_set(e, "snapshot: no sequence %d", seq);
		return NULL;
	}
	if (from < 0 || to < from || to > c->len[seq]) {
		err_set(e, "snapshot: positions %d to %d, sequence %d has %d", from, to, seq,
		    c->len[seq]);
		return NULL;
	}
	if (!images && mllama_seq_sees_image(c, seq, from, to)) {
		err_set(e, "snapshot: positions %d to %d of sequence %d attend to an image (a "
		    "snapshot holds text-only positions)", from, to, seq);
		return NULL;
	}
	int n = to - from;
	/* smaller than the cache ctx_new allocated: no overflow */
	size_t per = (size_t)nl * (size_t)c->kv_dim * (size_t)n;
	size_t bytes = per ? per * sizeof(float) : 1;
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->k = malloc(bytes)) == NULL ||
	    (s->v = malloc(bytes)) == NULL) {
		kv_snapshot_free(s);
		err_set(e, "snapshot: out of memory (%zu MiB)", per * 8 >> 20);
		return NULL;
	}
	s->m = c->m;
	s->from = from;
	s->n = n;
	s->kv_dim = c->kv_dim;
	s->nl = nl;
	for (int l = 0; l < nl; l++) {
		float *k = s->k + (size_t)l * c->kv_dim * n;
		for (int i = 0; i < c->kv_dim; i++)
			memcpy(k + (size_t)i * n, kt_at(c, l, seq, 0) + (size_t)i * c->p.n_ctx + from,
			    (size_t)n * sizeof(float));
		memcpy(s->v + (size_t)l * n * c->kv_dim, v_at(c, l, seq, from),
		    (size_t)n * c->kv_dim * sizeof(float));
	}
	if (images && mllama_snap_save(c, seq, n, &s->img, e) == -1) {
		kv_snapshot_free(s);
		return NULL;
	}
	return s;
}

struct kv_snapshot *
ctx_snapshot_save_range(const struct ctx *c, int seq, int from, int to, struct err *e)
{
	return save(c, seq, from, to, 0, e);
}

struct kv_snapshot *
ctx_snapshot_save_images(const struct ctx *c, int seq, int n, struct err *e)
{
	return save(c, seq, 0, n, 1, e);
}

int
ctx_snapshot_append(struct ctx *c, int seq, const struct kv_snapshot *s, int to, struct err *e)
{
	int nl = c->n_kvl, n = s->n, at = s->from;

	if (s->m != c->m || s->kv_dim != c->kv_dim)
		return err_set(e, "snapshot append: the snapshot is of another model");
	if (seq < 0 || seq >= c->p.n_seq)
		return err_set(e, "snapshot append: no sequence %d", seq);
	if (s->img != NULL)
		return err_set(e, "snapshot append: a snapshot with images is restored whole "
		    "(ctx_snapshot_restore)");
	if (c->len[seq] != at)
		return err_set(e, "snapshot append: the snapshot starts at position %d, sequence %d "
		    "has %d", at, seq, c->len[seq]);
	if (to < at || to > at + n || to > c->p.n_ctx)
		return err_set(e, "snapshot append: up to position %d of %d..%d (context %d)", to,
		    at, at + n, c->p.n_ctx);
	for (int l = 0; l < nl; l++) {
		const float *k = s->k + (size_t)l * c->kv_dim * n;
		for (int i = 0; i < c->kv_dim; i++)
			memcpy(kt_at(c, l, seq, 0) + (size_t)i * c->p.n_ctx + at, k + (size_t)i * n,
			    (size_t)(to - at) * sizeof(float));
		memcpy(v_at(c, l, seq, at), s->v + (size_t)l * n * c->kv_dim,
		    (size_t)(to - at) * c->kv_dim * sizeof(float));
	}
	c->len[seq] = to;
	mllama_seq_mark_plain(c, seq, at, to);
	return 0;
}

int
ctx_snapshot_restore(struct ctx *c, int seq, const struct kv_snapshot *s, struct err *e)
{
	int nl = c->n_kvl, n = s->n;

	if (s->m != c->m || s->kv_dim != c->kv_dim)
		return err_set(e, "snapshot restore: the snapshot is of another model");
	if (s->from != 0)
		return err_set(e, "snapshot restore: the snapshot starts at position %d "
		    "(ctx_snapshot_append)", s->from);
	if (seq < 0 || seq >= c->p.n_seq)
		return err_set(e, "snapshot restore: no sequence %d", seq);
	if (n > c->p.n_ctx)
		return err_set(e, "snapshot restore: %d positions, the context holds %d", n, c->p.n_ctx);
	if (s->img != NULL && mllama_snap_restore(c, seq, s->img, e) == -1) {
		ctx_seq_clear(c, seq);
		return -1;
	}
	for (int l = 0; l < nl; l++) {
		const float *k = s->k + (size_t)l * c->kv_dim * n;
		for (int i = 0; i < c->kv_dim; i++)
			memcpy(kt_at(c, l, seq, 0) + (size_t)i * c->p.n_ctx, k + (size_t)i * n,
			    (size_t)n * sizeof(float));
		memcpy(v_at(c, l, seq, 0), s->v + (size_t)l * n * c->kv_dim,
		    (size_t)n * c->kv_dim * sizeof(float));
	}
	c->len[seq] = n;
	if (s->img == NULL)
		mllama_seq_mark_plain(c, seq, 0, n);
	return 0;
}

int kv_snapshot_len(const struct kv_snapshot *s) { return s->n; }

size_t
kv_snapshot_bytes(const struct kv_snapshot *s)
{
	return 2 * (size_t)s->nl * (size_t)s->kv_dim * (size_t)s->n * sizeof(float) +
	    mllama_snap_bytes(s->img);
}

void
kv_snapshot_free(struct kv_snapshot *s)
{
	if (s == NULL)
		return;
	free(s->k);
	free(s->v);
	mllama_snap_free(s->img);
	free(s);
}

void
ctx_set_cancel(struct ctx *c, int (*cb)(void *), void *arg)
{
	c->cancel = cb;
	c->cancel_arg = arg;
}

const float *
ctx_logits(const struct ctx *c, int i)
{
	return i >= 0 && i < c->n_logits ? c->logits + (size_t)i * c->m->hp.n_vocab : NULL;
}

int ctx_n_vocab(const struct ctx *c) { return c->m->hp.n_vocab; }
int ctx_n_threads(const struct ctx *c) { return c->p.n_threads; }
const struct ctx_params *ctx_params(const struct ctx *c) { return &c->p; }

int
ctx_eval(struct ctx *c, int seq, const int32_t *tokens, int n, struct err *e)
{
	uint8_t *want = calloc((size_t)c->p.n_batch, 1);
	int32_t *seqs = malloc((size_t)c->p.n_batch * sizeof(int32_t));

	if (want == NULL || seqs == NULL) {
		free(want);
		free(seqs);
		return err_set(e, "out of memory");
	}
	int len0 = ctx_seq_len(c, seq);

	for (int i = 0; i < c->p.n_batch; i++)
		seqs[i] = seq;
	for (int i = 0; i < n; i += c->p.n_batch) {
		int k = n - i < c->p.n_batch ? n - i : c->p.n_batch;
		memset(want, 0, (size_t)c->p.n_batch);
		want[k - 1] = i + k == n;
		struct batch b = { k, tokens + i, seqs, want };
		if (ctx_decode(c, &b, e) == -1) {
			if (len0 >= 0)
				c->len[seq] = len0;	/* all or nothing, like one batch */
			free(want);
			free(seqs);
			return -1;
		}
	}
	free(want);
	free(seqs);
	return 0;
}
