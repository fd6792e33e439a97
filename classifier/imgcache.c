/* imgcache.c - the image-prompt cache (imgcache.h): a short LRU list of KV snapshots that
 * carry their images (ctx_snapshot_save_images). The list is short (a handful of entries,
 * each hundreds of MB on 11B-Vision), so a lookup simply scans it. Restored positions are
 * the exact floats a cold evaluation computed, and the positions after them are evaluated in
 * order from the same tokens, so verdicts stay bit-identical to the uncached path. */
#include "classifier/imgcache.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/ctx.h"

struct entry {
	struct entry *newer, *older;
	unsigned char sha[32];
	int32_t *t;
	size_t n;
	struct kv_snapshot *snap;
	size_t bytes;
};

struct imgcache {
	size_t budget;
	int max_entries;
	struct entry *newest, *oldest;
	int n_entries;
	size_t held;
	_Atomic uint64_t lookups, hits, partial, misses, stores, evictions, entries, bytes;
};

struct imgcache *
imgcache_new(size_t budget, int max_entries, struct err *e)
{
	struct imgcache *ic;

	e->msg[0] = '\0';
	if (budget == 0 || max_entries <= 0)
		return NULL;
	if ((ic = calloc(1, sizeof(*ic))) == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	ic->budget = budget;
	ic->max_entries = max_entries;
	return ic;
}

static void
unlink_entry(struct imgcache *ic, struct entry *x)
{
	if (x->newer)
		x->newer->older = x->older;
	else
		ic->newest = x->older;
	if (x->older)
		x->older->newer = x->newer;
	else
		ic->oldest = x->newer;
	x->newer = x->older = NULL;
}

static void
push_newest(struct imgcache *ic, struct entry *x)
{
	x->older = ic->newest;
	x->newer = NULL;
	if (ic->newest)
		ic->newest->newer = x;
	ic->newest = x;
	if (ic->oldest == NULL)
		ic->oldest = x;
}

static void
drop(struct imgcache *ic, struct entry *x)
{
	unlink_entry(ic, x);
	ic->held -= x->bytes;
	ic->n_entries--;
	atomic_store_explicit(&ic->entries, (uint64_t)ic->n_entries, memory_order_relaxed);
	atomic_store_explicit(&ic->bytes, ic->held, memory_order_relaxed);
	kv_snapshot_free(x->snap);
	free(x->t);
	free(x);
}

void
imgcache_free(struct imgcache *ic)
{
	if (ic == NULL)
		return;
	while (ic->newest)
		drop(ic, ic->newest);
	free(ic);
}

static size_t
shared(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
	size_t k = 0;

	while (k < na && k < nb && a[k] == b[k])
		k++;
	return k;
}

int
imgcache_restore(struct imgcache *ic, struct ctx *work, int seq, const unsigned char sha[32],
    const int32_t *t, size_t n, size_t need, struct err *e)
{
	struct entry *best = NULL;
	size_t bk = 0;

	if (ic == NULL)
		return 0;
	atomic_fetch_add_explicit(&ic->lookups, 1, memory_order_relaxed);
	for (struct entry *x = ic->newest; x != NULL; x = x->older) {
		if (memcmp(x->sha, sha, 32) != 0)
			continue;
		size_t k = shared(x->t, x->n, t, n);
		if (k >= need && k > bk) {
			best = x;
			bk = k;
		}
	}
	if (best == NULL) {
		atomic_fetch_add_explicit(&ic->misses, 1, memory_order_relaxed);
		return 0;
	}
	if (ctx_snapshot_restore(work, seq, best->snap, e) == -1 ||
	    ctx_seq_truncate(work, seq, (int)bk, e) == -1) {
		ctx_seq_clear(work, seq);
		return -1;
	}
	unlink_entry(ic, best);
	push_newest(ic, best);
	atomic_fetch_add_explicit(bk == n ? &ic->hits : &ic->partial, 1, memory_order_relaxed);
	return (int)bk;
}

void
imgcache_store(struct imgcache *ic, const struct ctx *work, int seq,
    const unsigned char sha[32], const int32_t *t, size_t n)
{
	struct entry *x;
	struct err e;

	if (ic == NULL || n == 0)
		return;
	for (x = ic->newest; x != NULL; x = x->older)
		if (x->n == n && memcmp(x->sha, sha, 32) == 0 &&
		    memcmp(x->t, t, n * sizeof(int32_t)) == 0)
			break;
	if (x != NULL)
		drop(ic, x);	/* superseded: the same positions, computed again */
	if ((x = calloc(1, sizeof(*x))) == NULL || (x->t = malloc(n * sizeof(int32_t))) == NULL ||
	    (x->snap = ctx_snapshot_save_images(work, seq, (int)n, &e)) == NULL) {
		if (x != NULL)
			free(x->t);
		free(x);
		return;
	}
	memcpy(x->sha, sha, 32);
	memcpy(x->t, t, n * sizeof(int32_t));
	x->n = n;
	x->bytes = sizeof(*x) + n * sizeof(int32_t) + kv_snapshot_bytes(x->snap);
	if (x->bytes > ic->budget) {
		kv_snapshot_free(x->snap);
		free(x->t);
		free(x);
		return;
	}
	while (ic->oldest != NULL && (ic->held + x->bytes > ic->budget ||
	    ic->n_entries >= ic->max_entries)) {
		drop(ic, ic->oldest);
		atomic_fetch_add_explicit(&ic->evictions, 1, memory_order_relaxed);
	}
	push_newest(ic, x);
	ic->held += x->bytes;
	ic->n_entries++;
	atomic_fetch_add_explicit(&ic->stores, 1, memory_order_relaxed);
	atomic_store_explicit(&ic->entries, (uint64_t)ic->n_entries, memory_order_relaxed);
	atomic_store_explicit(&ic->bytes, ic->held, memory_order_relaxed);
}

void
imgcache_stats(const struct imgcache *ic, struct imgcache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (ic == NULL)
		return;
	out->lookups = atomic_load_explicit(&ic->lookups, memory_order_relaxed);
	out->hits = atomic_load_explicit(&ic->hits, memory_order_relaxed);
	out->partial = atomic_load_explicit(&ic->partial, memory_order_relaxed);
	out->misses = atomic_load_explicit(&ic->misses, memory_order_relaxed);
	out->stores = atomic_load_explicit(&ic->stores, memory_order_relaxed);
	out->evictions = atomic_load_explicit(&ic->evictions, memory_order_relaxed);
	out->entries = atomic_load_explicit(&ic->entries, memory_order_relaxed);
	out->bytes = atomic_load_explicit(&ic->bytes, memory_order_relaxed);
	out->budget = ic->budget;
	out->max_entries = (uint64_t)ic->max_entries;
}
