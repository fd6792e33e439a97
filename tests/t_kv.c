/* t_kv.c - the KV cache: one prefill, token by token, a copied prefix, several sequences in
 * one batch, a prefix shared between contexts and a prefix saved as a snapshot and restored
 * all give the same logits, bit for bit, and so does a sequence truncated and continued with
 * other tokens, or a context running on a borrowed thread pool:
 * every kernel computes a row the same way whatever the batch around it.
 *   t_kv MODEL */
#include <limits.h>
#include <math.h>

#include "core/ctx.h"
#include "core/matmul.h"
#include "core/model.h"
#include "core/pool.h"
#include "tap.h"

static double
maxdiff(const float *a, const float *b, int n)
{
	double d = 0;

	for (int i = 0; i < n; i++)
		d = fmax(d, fabs((double)a[i] - b[i]));
	return d;
}

int
main(int argc, char **argv)
{
	struct err e;
	enum { N = 40, PRE = 25 };
	int32_t ids[N], seq[2 * N];
	uint8_t want[2 * N];

	if (argc != 2)
		return 2;
	if (getenv("GUARDD_GENERIC"))
		matmul_force_generic(1);
	struct model *m = model_open(argv[1], &e);
	if (m == NULL) {
		printf("1..0 # SKIP %s\n", e.msg);
		return 0;
	}
	int nv = model_hparams(m)->n_vocab;
	for (int i = 0; i < N; i++)
		ids[i] = (int32_t)((i * 7919 + 13) % nv);
	struct ctx_params p = ctx_params_default();
	p.n_ctx = 64;
	p.n_seq = 4;
	p.n_outputs = 4;
	p.n_batch = 2 * N;
	struct ctx *c = ctx_new(m, &p, &e);
	ok(c != NULL, "context");
	float *ref = malloc((size_t)nv * 4), *tmp = malloc((size_t)nv * 4);

	/* 1: the whole prompt in one prefill */
	ok(ctx_eval(c, 0, ids, N, &e) == 0, "one prefill of %d tokens", N);
	memcpy(ref, ctx_logits(c, 0), (size_t)nv * 4);

	/* 2: token by token */
	int okall = 1;
	for (int i = 0; i < N; i++)
		okall &= ctx_eval(c, 1, &ids[i], 1, &e) == 0;
	double d = maxdiff(ref, ctx_logits(c, 0), nv);
	ok(okall && d == 0, "token by token matches the prefill bit for bit (max diff %.3g)", d);

	/* 3: a copied prefix, then the rest */
	ok(ctx_seq_copy(c, 0, 2, PRE, &e) == 0 && ctx_seq_len(c, 2) == PRE, "copy a %d-token prefix", PRE);
	ok(ctx_eval(c, 2, ids + PRE, N - PRE, &e) == 0, "continue after the copied prefix");
	d = maxdiff(ref, ctx_logits(c, 0), nv);
	ok(d == 0, "copied prefix + rest matches the prefill bit for bit (max diff %.3g)", d);
	memcpy(tmp, ctx_logits(c, 0), (size_t)nv * 4);

	/* the same again must be bit-identical: the cached path is deterministic */
	ctx_seq_copy(c, 0, 3, PRE, &e);
	ctx_eval(c, 3, ids + PRE, N - PRE, &e);
	ok(memcmp(tmp, ctx_logits(c, 0), (size_t)nv * 4) == 0, "repeating the cached path is bit-identical");

	/* 4: two sequences in one batch */
	ctx_seq_clear(c, 0);
	ctx_seq_clear(c, 1);
	int32_t both[2 * N];
	for (int i = 0; i < N; i++) {
		both[i] = ids[i];
		both[N + i] = ids[i];
		seq[i] = 0;
		seq[N + i] = 1;
	}
	memset(want, 0, sizeof(want));
	want[N - 1] = want[2 * N - 1] = 1;
	struct batch b = { 2 * N, both, seq, want };
	ok(ctx_decode(c, &b, &e) == 0, "two sequences in one batch");
	d = fmax(maxdiff(ref, ctx_logits(c, 0), nv), maxdiff(ref, ctx_logits(c, 1), nv));
	ok(d == 0, "each batched sequence matches its own prefill bit for bit (max diff %.3g)", d);

	/* 5: a prefix computed in one context, reused in another */
	struct ctx *c2 = ctx_new(m, &p, &e);
	ok(c2 && ctx_seq_copy_from(c2, 0, c, 0, PRE, &e) == 0, "prefix copied to another context");
	ok(c2 && ctx_eval(c2, 0, ids + PRE, N - PRE, &e) == 0 &&
	    memcmp(tmp, ctx_logits(c2, 0), (size_t)nv * 4) == 0,
	    "the other context's result equals the cached path bit for bit");

	/* 6: a prefix saved as a snapshot (no context of its own), restored into a context of
	 * another size and another sequence */
	struct kv_snapshot *snap = ctx_snapshot_save(c2, 0, PRE, &e);
	ok(snap && kv_snapshot_len(snap) == PRE && kv_snapshot_bytes(snap) ==
	    2 * (size_t)model_hparams(m)->n_layer * model_hparams(m)->n_head_kv *
	    model_hparams(m)->head_dim * PRE * sizeof(float), "a %d-position snapshot of %zu bytes",
	    PRE, snap ? kv_snapshot_bytes(snap) : 0);
	struct ctx_params p3 = p;
	p3.n_ctx = 48;
	p3.n_seq = 3;
	struct ctx *c3 = ctx_new(m, &p3, &e);
	ok(c3 && ctx_eval(c3, 1, ids, 3, &e) == 0 && ctx_snapshot_restore(c3, 1, snap, &e) == 0 &&
	    ctx_seq_len(c3, 1) == PRE, "the snapshot restored over a used sequence of another context");
	ok(c3 && ctx_eval(c3, 1, ids + PRE, N - PRE, &e) == 0 &&
	    memcmp(tmp, ctx_logits(c3, 0), (size_t)nv * 4) == 0,
	    "snapshot + rest equals the cached path bit for bit");
	ok(c3 && ctx_snapshot_restore(c3, 1, snap, &e) == 0 && ctx_eval(c3, 1, ids + PRE, N - PRE, &e) == 0 &&
	    memcmp(tmp, ctx_logits(c3, 0), (size_t)nv * 4) == 0, "restoring again is bit-identical");
	ok(ctx_snapshot_save(c2, 0, ctx_seq_len(c2, 0) + 1, &e) == NULL && strstr(e.msg, "positions"),
	    "a snapshot longer than the sequence is refused (%s)", e.msg);
	ok(ctx_snapshot_save(c2, 9, 1, &e) == NULL && strstr(e.msg, "no sequence"),
	    "a snapshot of a missing sequence is refused (%s)", e.msg);
	ok(c3 && ctx_snapshot_restore(c3, 3, snap, &e) == -1 && strstr(e.msg, "no sequence"),
	    "restoring into a missing sequence is refused (%s)", e.msg);
	struct model *m2 = model_open(argv[1], &e);
	struct ctx *c4 = m2 ? ctx_new(m2, &p, &e) : NULL;
	ok(c4 && ctx_snapshot_restore(c4, 0, snap, &e) == -1 && strstr(e.msg, "another model") &&
	    ctx_seq_len(c4, 0) == 0, "a snapshot of another model is refused (%s)", e.msg);
	p3.n_ctx = PRE - 1;
	struct ctx *c5 = ctx_new(m, &p3, &e);
	ok(c5 && ctx_snapshot_restore(c5, 0, snap, &e) == -1 && strstr(e.msg, "context holds") &&
	    ctx_seq_len(c5, 0) == 0, "a snapshot larger than the context is refused (%s)", e.msg);
	ctx_free(c5);
	ctx_free(c4);
	model_close(m2);
	ctx_free(c3);
	kv_snapshot_free(snap);

	/* 7: truncation: a sequence cut back to PRE and continued (after other tokens went past
	 * PRE) equals the straight prefill, bit for bit */
	int32_t junk[10];
	for (int i = 0; i < 10; i++)
		junk[i] = (int32_t)((i * 31 + 7) % nv);
	ctx_seq_clear(c, 3);
	ok(ctx_eval(c, 3, ids, PRE, &e) == 0 && ctx_eval(c, 3, junk, 10, &e) == 0 &&
	    ctx_seq_len(c, 3) == PRE + 10, "a sequence of %d tokens then 10 others", PRE);
	ok(ctx_seq_truncate(c, 3, PRE, &e) == 0 && ctx_seq_len(c, 3) == PRE, "truncated to %d", PRE);
	ok(ctx_eval(c, 3, ids + PRE, N - PRE, &e) == 0 &&
	    memcmp(ref, ctx_logits(c, 0), (size_t)nv * 4) == 0,
	    "truncated + the rest equals the one prefill bit for bit");
	ok(ctx_seq_truncate(c, 3, 3, &e) == 0 && ctx_eval(c, 3, ids + 3, N - 3, &e) == 0 &&
	    memcmp(ref, ctx_logits(c, 0), (size_t)nv * 4) == 0,
	    "cut back to 3 and continued: the same bits again");
	ok(ctx_seq_truncate(c, 3, N, &e) == 0 && ctx_seq_len(c, 3) == N, "truncating to the length keeps it");
	ok(ctx_seq_truncate(c, 3, N + 1, &e) == -1 && strstr(e.msg, "has 40") && ctx_seq_len(c, 3) == N,
	    "truncating past the length is refused (%s)", e.msg);
	ok(ctx_seq_truncate(c, 3, -1, &e) == -1 && ctx_seq_len(c, 3) == N, "a negative length is refused (%s)",
	    e.msg);
	ok(ctx_seq_truncate(c, 4, 0, &e) == -1 && strstr(e.msg, "no sequence 4"),
	    "truncating a missing sequence is refused (%s)", e.msg);
	ok(ctx_seq_truncate(c, 3, 0, &e) == 0 && ctx_seq_len(c, 3) == 0, "truncating to 0 empties it");

	/* 8: a borrowed pool: its size is the context's thread count, the results are the same
	 * bits, and freeing the context leaves the pool to its owner */
	struct pool *pl = pool_new(3);
	struct ctx_params pp = p;
	pp.pool = pl;
	pp.n_threads = 1;	/* ignored with a pool */
	struct ctx *cb = pl ? ctx_new(m, &pp, &e) : NULL;
	ok(cb && ctx_n_threads(cb) == 3 && ctx_params(cb)->n_threads == 3,
	    "a context on a borrowed pool of 3 runs 3 threads (%d)", cb ? ctx_n_threads(cb) : -1);
	ok(cb && ctx_eval(cb, 0, ids, N, &e) == 0 && memcmp(ref, ctx_logits(cb, 0), (size_t)nv * 4) == 0,
	    "and computes the same bits");
	ctx_free(cb);
	/* the pool outlives the context: a second context borrows it after the first is gone */
	cb = pl ? ctx_new(m, &pp, &e) : NULL;
	ok(cb && ctx_eval(cb, 1, ids, N, &e) == 0 && memcmp(ref, ctx_logits(cb, 0), (size_t)nv * 4) == 0,
	    "the pool still runs after a borrowing context was freed");
	ctx_free(cb);
	struct pool *p1 = pool_new(1);
	pp.pool = p1;
	pp.n_threads = 8;
	cb = p1 ? ctx_new(m, &pp, &e) : NULL;
	ok(cb && ctx_n_threads(cb) == 1 && ctx_eval(cb, 0, ids, N, &e) == 0 &&
	    memcmp(ref, ctx_logits(cb, 0), (size_t)nv * 4) == 0,
	    "a borrowed pool of 1 (the caller only): 1 thread, the same bits");
	ctx_free(cb);
	pool_free(p1);
	pool_free(pl);

	/* errors leave the sequences as they were */
	int len = ctx_seq_len(c, 0);
	int32_t bad = nv + 5;
	ok(ctx_eval(c, 0, &bad, 1, &e) == -1 && strstr(e.msg, "outside the vocabulary"),
	    "an out-of-vocabulary id is refused (%s)", e.msg);
	ok(ctx_seq_len(c, 0) == len, "and the sequence is unchanged");
	int32_t many[64] = { 0 };
	ok(ctx_eval(c, 0, many, 64, &e) == -1 && strstr(e.msg, "exceed the context"),
	    "overflowing the context is refused (%s)", e.msg);
	ok(ctx_seq_len(c, 0) == len, "and the sequence is unchanged");
	ok(ctx_seq_copy(c, 0, 1, 999, &e) == -1, "copying more than the source holds is refused");
	int32_t s2[2] = { 0, 1 }, t2[3] = { 1, 2, 3 }, s3[3] = { 0, 1, 0 };
	struct batch nb = { 3, t2, s3, NULL };
	ok(ctx_decode(c, &nb, &e) == -1 && strstr(e.msg, "contiguous"), "interleaved sequences are refused");
	(void)s2;

	/* absurd sizes are refused before anything is allocated, with a message */
	struct ctx_params big = p;
	big.n_ctx = 1 << 20;
	big.n_seq = 4096;
	ok(ctx_new(m, &big, &e) == NULL && strstr(e.msg, "more than this machine's") &&
	    strstr(e.msg, "n_ctx 1048576 x n_seq 4096"), "a KV cache of 2^32 positions is refused (%s)", e.msg);
	big = p;
	big.n_batch = INT_MAX;
	big.n_outputs = INT_MAX;
	big.n_threads = 1024;
	ok(ctx_new(m, &big, &e) == NULL && strstr(e.msg, "context: needs"),
	    "n_batch and n_outputs of 2^31-1 are refused (%s)", e.msg);
	big = p;
	big.n_seq = 5000;
	ok(ctx_new(m, &big, &e) == NULL && strstr(e.msg, "n_seq 5000"), "n_seq out of range (%s)", e.msg);
	big = p;
	big.n_ctx = -1;
	ok(ctx_new(m, &big, &e) == NULL && strstr(e.msg, "n_ctx -1"), "a negative n_ctx (%s)", e.msg);
	ctx_free(c2);
	ctx_free(c);
	free(ref);
	free(tmp);
	model_close(m);
	return done_testing();
}
