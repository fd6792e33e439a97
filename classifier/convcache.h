/* convcache.h - the conversation cache: the keys and values of recently classified
 * conversations, kept so that a re-check of a conversation grown by a message evaluates
 * only what is new. An entry is a KV snapshot of the conversation part of one prompt: after
 * the policy prefix (restored from the slot's own snapshot), before the closing
 * instructions (which follow the last message and so are never shared); it is keyed by the
 * slot's build (gen), the role and the token ids it holds. A lookup
 * finds the entry sharing the longest token prefix with a new prompt; what it shares is
 * restored instead of evaluated. Entries are evicted least recently used first, under a
 * budget of bytes (snapshot + ids + index all counted). One cache per classifier: called
 * from its thread only, except convcache_stats, which any thread may call. */
#ifndef GUARDD_CONVCACHE_H
#define GUARDD_CONVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct convcache;
struct ctx;
struct kv_snapshot;

struct convcache_stats {
	uint64_t lookups;	/* prompts looked up */
	uint64_t hits;		/* ... that reused cached positions beyond the policy prefix */
	uint64_t tokens_reused;	/* positions restored beyond the policy prefix */
	uint64_t stores;	/* entries added */
	uint64_t evictions;	/* entries dropped for room (not superseded nor invalidated) */
	uint64_t entries;	/* held now */
	uint64_t bytes;		/* held now */
	uint64_t budget;	/* the most it holds */
};

/* A cache holding at most budget bytes; NULL with budget 0 (no cache) or on failure (e says
 * why; e->msg is empty for budget 0). */
struct convcache *convcache_new(size_t budget, struct err *e);
void convcache_free(struct convcache *cc);

/* Looks up the prompt t[0..n) of (gen, role), which starts with the policy prefix saved in
 * `prefix` (the slot's snapshot of that role; NULL: no lookup). On a hit, sequence seq of
 * work becomes that prefix and the cached positions the prompt shares after it (at most up
 * to n - 1: the last token is evaluated for its logits) and their count is returned; 0 on a
 * miss (seq untouched), -1 on an error (e says why; seq is then empty). */
int convcache_restore(struct convcache *cc, struct ctx *work, int seq, unsigned gen, int role,
    const int32_t *t, size_t n, const struct kv_snapshot *prefix, struct err *e);

/* Keeps t[0..n) (a prompt's conversation part, already evaluated in positions 0..n-1 of
 * sequence seq) for later lookups, unless a cached entry already holds it; an entry it
 * extends is dropped. Best effort: out of memory or an entry larger than the budget just
 * stores nothing. */
void convcache_store(struct convcache *cc, const struct ctx *work, int seq, unsigned gen,
    int role, const int32_t *t, size_t n, size_t from);

/* Drops every entry of a slot build (a policy replaced). */
void convcache_drop_gen(struct convcache *cc, unsigned gen);

/* The counters; cc may be NULL (all zero). Safe from any thread. */
void convcache_stats(const struct convcache *cc, struct convcache_stats *out);

#endif
