/* convcache.c - the conversation cache (convcache.h). Lookup is a hashed trie: every
 * entry indexes each of its positions p beyond the policy prefix by a keyed hash of its
 * tokens [from, p) (and of gen, role, from), so the longest prefix a new prompt shares with
 * any entry is the highest p whose hash is in the table. A lookup hashes the prompt once
 * (linear in its tokens), probes from its end down and verifies the first candidate token
 * by token: a hash collision costs a probe, never a wrong answer. The keys and values are
 * restored from the entry's snapshot, exact floats, so a position reused is the very
 * position a cold evaluation of the same tokens would compute (the kernels compute a row
 * the same whatever the batch), and verdicts stay bit-identical.
 *
 * An entry holds the positions after the policy prefix only: the prefix, the same for every
 * conversation of a (policy, role), is restored from the slot's own snapshot first. Ids and
 * index cost ~36 bytes a position (and up to 16 of bucket array) against the snapshot's
 * 2 * layers * kv_dim * 4 (64 KiB for Llama Guard 3 1B), all counted in the budget. */
#include "classifier/convcache.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "classifier/classifier_int.h"
#include "classifier/conv.h"
#include "classifier/prompt.h"
#include "core/ctx.h"
#include "core/tok.h"

#define MAX_MISVERIFY 4		/* collisions tolerated per lookup before giving up (a miss) */

struct entry;

struct rec {
	uint64_t h;
	struct entry *e;
	struct rec *next;	/* bucket chain */
	size_t pos;		/* the entry shares tokens [0, pos) with whatever hashes to h */
};

struct entry {
	struct entry *newer, *older;	/* the LRU list */
	unsigned gen;
	int role;
	size_t n, from;			/* positions [from, n): after the policy prefix */
	int32_t *t;			/* their ids (t[0] is position from's) */
	struct kv_snapshot *snap;	/* their keys and values */
	struct rec *recs;		/* positions from+1 .. n */
	size_t bytes;
};

struct convcache {
	size_t budget;
	uint64_t key;
	struct entry *newest, *oldest;
	struct rec **bucket;
	size_t n_bucket, n_rec;
	uint64_t *hs;			/* scratch: hs[p] for a lookup, p in (from, limit] */
	size_t hs_cap;
	size_t held;			/* bytes of entries and of the bucket array */
	_Atomic uint64_t lookups, hits, reused, stores, evictions, entries, bytes;
};

static uint64_t
mix(uint64_t x)
{
	/* splitmix64's finalizer: a bijection in which every input bit reaches every output bit */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

struct convcache *
convcache_new(size_t budget, struct err *e)
{
	struct convcache *cc;

	e->msg[0] = '\0';
	if (budget == 0)
		return NULL;
	if ((cc = calloc(1, sizeof(*cc))) == NULL) {
		err_set(e, "conversation cache: out of memory");
		return NULL;
	}
	cc->budget = budget;
	/* keyed, so that no one can choose texts whose prefixes collide in the table */
	if (getrandom(&cc->key, sizeof(cc->key), GRND_NONBLOCK) != (ssize_t)sizeof(cc->key))
		cc->key = mix((uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)cc);
	atomic_store(&cc->bytes, 0);
	return cc;
}

static void
set_bytes(struct convcache *cc)
{
	atomic_store_explicit(&cc->bytes, cc->held, memory_order_relaxed);
}

static void
unlink_rec(struct convcache *cc, struct rec *r)
{
	struct rec **pp = &cc->bucket[r->h & (cc->n_bucket - 1)];

	while (*pp != NULL && *pp != r)
		pp = &(*pp)->next;
	if (*pp == r)
		*pp = r->next;
	cc->n_rec--;
}

/* Unlinks and frees e (whatever the reason: superseded, evicted, invalidated). */
static void
entry_drop(struct convcache *cc, struct entry *e)
{
	for (size_t i = 0; i < e->n - e->from; i++)
		unlink_rec(cc, &e->recs[i]);
	if (e->newer)
		e->newer->older = e->older;
	else
		cc->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		cc->oldest = e->newer;
	cc->held -= e->bytes;
	kv_snapshot_free(e->snap);
	free(e->recs);
	free(e->t);
	free(e);
	atomic_fetch_sub_explicit(&cc->entries, 1, memory_order_relaxed);
	set_bytes(cc);
}

void
convcache_free(struct convcache *cc)
{
	if (cc == NULL)
		return;
	while (cc->newest)
		entry_drop(cc, cc->newest);
	free(cc->bucket);
	free(cc->hs);
	free(cc);
}

static void
touch(struct convcache *cc, struct entry *e)
{
	if (cc->newest == e)
		return;
	/* out of the list ... */
	e->newer->older = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		cc->oldest = e->newer;
	/* ... and in at the front */
	e->newer = NULL;
	e->older = cc->newest;
	cc->newest->newer = e;
	cc->newest = e;
}

/* hs[p] for p in (from, limit]: the hash of tokens [from, p) under (gen, role, from) */
static int
hash_prompt(struct convcache *cc, unsigned gen, int role, const int32_t *t, size_t from,
    size_t limit)
{
	if (limit + 1 > cc->hs_cap) {
		size_t cap = limit + 1 > 2 * cc->hs_cap ? limit + 1 : 2 * cc->hs_cap;
		uint64_t *hs = realloc(cc->hs, cap * sizeof(*hs));
		if (hs == NULL)
			return -1;
		cc->hs = hs;
		cc->hs_cap = cap;
	}
	uint64_t h = mix(cc->key ^ mix(((uint64_t)gen << 32) ^ ((uint64_t)role << 24) ^ from));
	for (size_t p = from + 1; p <= limit; p++) {
		h = mix(h ^ (uint64_t)(uint32_t)t[p - 1]);
		cc->hs[p] = h;
	}
	return 0;
}

/* The entry of (gen, role, from) sharing the longest prefix with t, that prefix capped at
 * limit; *len is its length (> from), or NULL. hs must hold the prompt's hashes. */
static struct entry *
find(struct convcache *cc, unsigned gen, int role, const int32_t *t, size_t from,
    size_t limit, size_t *len)
{
	int bad = 0;

	if (cc->n_bucket == 0)
		return NULL;
	for (size_t p = limit; p > from; p--) {
		for (struct rec *r = cc->bucket[cc->hs[p] & (cc->n_bucket - 1)]; r; r = r->next) {
			struct entry *e = r->e;
			if (r->h != cc->hs[p] || r->pos != p || e->gen != gen || e->role != role ||
			    e->from != from)
				continue;
			/* [0, from) is the policy prefix of (gen, role) in both */
			if (memcmp(e->t, t + from, (p - from) * sizeof(*t)) == 0) {
				*len = p;
				return e;
			}
			if (++bad > MAX_MISVERIFY)
				return NULL;
		}
	}
	return NULL;
}

int
convcache_restore(struct convcache *cc, struct ctx *work, int seq, unsigned gen, int role,
    const int32_t *t, size_t n, const struct kv_snapshot *prefix, struct err *e)
{
	size_t len = 0, from = prefix ? (size_t)kv_snapshot_len(prefix) : 0;

	if (cc == NULL || prefix == NULL || n < from + 2)
		return 0;
	atomic_fetch_add_explicit(&cc->lookups, 1, memory_order_relaxed);
	if (hash_prompt(cc, gen, role, t, from, n - 1) == -1)
		return 0;	/* no scratch: evaluate as if nothing were cached */
	struct entry *hit = find(cc, gen, role, t, from, n - 1, &len);
	if (hit == NULL)
		return 0;
	if (ctx_snapshot_restore(work, seq, prefix, e) == -1 ||
	    ctx_snapshot_append(work, seq, hit->snap, (int)len, e) == -1) {
		ctx_seq_clear(work, seq);
		return -1;
	}
	/* used, for the LRU order, when most of it was: not when a prompt merely shares the
	 * first words of a conversation with it */
	if (2 * (len - from) >= hit->n - hit->from)
		touch(cc, hit);
	atomic_fetch_add_explicit(&cc->hits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&cc->reused, len - from, memory_order_relaxed);
	return (int)len;
}

/* The bucket count for `more` records beyond those held: records never outnumber buckets,
 * so chains stay short. */
static size_t
bucket_need(const struct convcache *cc, size_t more)
{
	size_t nb = cc->n_bucket ? cc->n_bucket : 64;

	while (nb < cc->n_rec + more)
		nb *= 2;
	return nb;
}

static int
grow(struct convcache *cc, size_t nb)
{
	if (nb == cc->n_bucket)
		return 0;
	struct rec **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return -1;
	for (size_t i = 0; i < cc->n_bucket; i++)
		for (struct rec *r = cc->bucket[i], *nx; r; r = nx) {
			nx = r->next;
			r->next = b[r->h & (nb - 1)];
			b[r->h & (nb - 1)] = r;
		}
	cc->held += (nb - cc->n_bucket) * sizeof(*b);
	free(cc->bucket);
	cc->bucket = b;
	cc->n_bucket = nb;
	set_bytes(cc);
	return 0;
}

void
convcache_store(struct convcache *cc, const struct ctx *work, int seq, unsigned gen, int role,
    const int32_t *t, size_t n, size_t from)
{
	struct err e;
	size_t len = 0;

	if (cc == NULL || n <= from || ctx_seq_len(work, seq) < (int)n)
		return;
	if (hash_prompt(cc, gen, role, t, from, n) == -1)
		return;
	struct entry *best = find(cc, gen, role, t, from, n, &len);
	if (best != NULL && len == n) {
		touch(cc, best);	/* already held (by this entry or one that extends it) */
		return;
	}
	/* an entry this one extends can serve no lookup this one cannot serve as well */
	struct entry *superseded = best != NULL && len == best->n ? best : NULL;
	struct kv_snapshot *snap = ctx_snapshot_save_range(work, seq, (int)from, (int)n, &e);
	if (snap == NULL)
		return;
	size_t bytes = sizeof(struct entry) + kv_snapshot_bytes(snap) +
	    (n - from) * (sizeof(*t) + sizeof(struct rec)), nb, extra;
	if (bytes > cc->budget) {
		kv_snapshot_free(snap);
		return;
	}
	if (superseded)
		entry_drop(cc, superseded);
	/* room: the oldest entries go until this one and the bucket array it needs fit */
	for (;;) {
		nb = bucket_need(cc, n - from);
		extra = (nb - cc->n_bucket) * sizeof(struct rec *);
		if (cc->held + bytes + extra <= cc->budget || cc->oldest == NULL)
			break;
		entry_drop(cc, cc->oldest);
		atomic_fetch_add_explicit(&cc->evictions, 1, memory_order_relaxed);
	}
	struct entry *en = NULL;
	if (cc->held + bytes + extra > cc->budget || (en = calloc(1, sizeof(*en))) == NULL ||
	    (en->t = malloc((n - from) * sizeof(*t))) == NULL ||
	    (en->recs = calloc(n - from, sizeof(*en->recs))) == NULL || grow(cc, nb) == -1) {
		if (en)
			free(en->t), free(en->recs);
		free(en);
		kv_snapshot_free(snap);
		return;
	}
	memcpy(en->t, t + from, (n - from) * sizeof(*t));
	en->gen = gen;
	en->role = role;
	en->n = n;
	en->from = from;
	en->snap = snap;
	en->bytes = bytes;	/* the bucket array is counted apart, by grow() */
	for (size_t p = from + 1; p <= n; p++) {
		struct rec *r = &en->recs[p - from - 1];
		r->h = cc->hs[p];
		r->e = en;
		r->pos = p;
		r->next = cc->bucket[r->h & (cc->n_bucket - 1)];
		cc->bucket[r->h & (cc->n_bucket - 1)] = r;
	}
	cc->n_rec += n - from;
	en->older = cc->newest;
	if (cc->newest)
		cc->newest->newer = en;
	else
		cc->oldest = en;
	cc->newest = en;
	cc->held += en->bytes;
	atomic_fetch_add_explicit(&cc->entries, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&cc->stores, 1, memory_order_relaxed);
	set_bytes(cc);
}

void
convcache_drop_gen(struct convcache *cc, unsigned gen)
{
	if (cc == NULL)
		return;
	for (struct entry *e = cc->newest, *nx; e; e = nx) {
		nx = e->older;
		if (e->gen == gen)
			entry_drop(cc, e);
	}
}

void
convcache_stats(const struct convcache *cc, struct convcache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (cc == NULL)
		return;
	out->lookups = atomic_load_explicit(&cc->lookups, memory_order_relaxed);
	out->hits = atomic_load_explicit(&cc->hits, memory_order_relaxed);
	out->tokens_reused = atomic_load_explicit(&cc->reused, memory_order_relaxed);
	out->stores = atomic_load_explicit(&cc->stores, memory_order_relaxed);
	out->evictions = atomic_load_explicit(&cc->evictions, memory_order_relaxed);
	out->entries = atomic_load_explicit(&cc->entries, memory_order_relaxed);
	out->bytes = atomic_load_explicit(&cc->bytes, memory_order_relaxed);
	out->budget = cc->budget;
}

/* --- what of a prompt is worth keeping -------------------------------------------------
 * A body is [conversation part][closing part]["\n\n"], the closing part being constant per
 * role ("<END CONVERSATION>\n\nProvide your safety assessment for ONLY THE LAST User
 * message ... <|end_header_id|>"). It is found once from prompt.c's own rendering of a
 * sample conversation of each role, rather than copied here; the pre-tokenizer always
 * splits before it (the conversation part ends with a "\n\n" run), and each prompt is
 * checked to end with it before anything is stored. Cutting anywhere would still be
 * correct (lookups match token ids exactly); cutting here keeps only what can be shared. */
static const char CONV_END[] = "<END CONVERSATION>";

int
classifier_closing_init(struct classifier *c, struct err *e)
{
	for (int k = 0; k < 2; k++) {
		struct conv cv;
		struct buf text = { 0 };
		struct tokvec dummy = { 0 }, body = { 0 };
		enum role r;
		int rc = -1;
		if (conv_simple(&cv, "a", 1, k ? "b" : NULL, 1, e) == -1)
			return -1;
		if (prompt_body(&cv, NULL, &text, &dummy, &r, e) == -1 ||
		    classifier_body(c, &cv, &body, &r, e) == -1)
			goto out;
		struct tokvec *cl = &c->cc_close[r];
		size_t at = text.n;
		for (size_t i = 0; i + sizeof(CONV_END) - 1 <= text.n; i++)
			if (memcmp(text.p + i, CONV_END, sizeof(CONV_END) - 1) == 0)
				at = i;
		cl->n = 0;
		if (at < text.n && tok_encode(c->tok, text.p + at, text.n - at, 1, cl, e) == -1)
			goto out;
		if (cl->n == 0 || body.n < cl->n + 1 ||
		    memcmp(body.v + body.n - 1 - cl->n, cl->v, cl->n * sizeof(int32_t)) != 0)
			cl->n = 0;	/* not as expected: nothing of this role is stored */
		rc = 0;
out:
		buf_free(&text);
		tokvec_free(&dummy);
		tokvec_free(&body);
		conv_free(&cv);
		if (rc == -1)
			return -1;
	}
	return 0;
}

size_t
classifier_conv_part(const struct classifier *c, enum role r, const int32_t *t, size_t n)
{
	const struct tokvec *cl = &c->cc_close[r];

	if (cl->n == 0 || n < cl->n + 1 ||
	    memcmp(t + n - 1 - cl->n, cl->v, cl->n * sizeof(int32_t)) != 0)
		return 0;
	return n - 1 - cl->n;
}
