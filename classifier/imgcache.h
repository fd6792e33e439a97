/* imgcache.h - the image-prompt cache: for Llama Guard 3 11B-Vision, the keys and values of
 * the image form of a policy prefix (prompt_prefix_image: "<|image|> " after the first
 * header, so every position after it depends on the image) together with the image's
 * cross-attention keys and values, so that a second request with the same image skips the
 * vision tower and the prefix. An entry is keyed by the SHA-256 of the image's bytes and the
 * prefix's token ids (which fix the policy and the role); the model is the classifier's own
 * (one cache per classifier). A lookup finds the entry of the same image sharing the longest
 * token prefix, at least through the <|image|> token: a whole match restores the prefix; a
 * partial one (another role or policy) still restores the image and what the prompts share.
 * Least recently used entries go first, under a count and a byte budget (snapshot and ids
 * counted). Called from the classifier's thread only, except imgcache_stats. */
#ifndef GUARDD_IMGCACHE_H
#define GUARDD_IMGCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct imgcache;
struct ctx;

struct imgcache_stats {
	uint64_t lookups;	/* image prefixes looked up */
	uint64_t hits;		/* ... found whole (no encoding, no prefix evaluated) */
	uint64_t partial;	/* ... found in part: the image reused, part of the prefix evaluated */
	uint64_t misses;	/* ... not found: the vision tower and the whole prefix evaluated */
	uint64_t stores, evictions, entries, bytes;
	uint64_t budget, max_entries;
};

/* NULL for budget 0 or max_entries 0 (no cache; e->msg empty) or on failure. */
struct imgcache *imgcache_new(size_t budget, int max_entries, struct err *e);
void imgcache_free(struct imgcache *ic);

/* Looks up the prefix t[0..n) of the image with digest sha. On a hit, seq of work (empty)
 * becomes the cached positions shared with t, at least need of them (need covers the
 * <|image|> token, so the image comes along), and their count is returned; 0 on a miss (seq
 * untouched), -1 on an error (seq empty; e says why). */
int imgcache_restore(struct imgcache *ic, struct ctx *work, int seq, const unsigned char sha[32],
    const int32_t *t, size_t n, size_t need, struct err *e);
/* Keeps positions 0..n-1 of seq (the prefix t[0..n), its image attached) for later lookups,
 * replacing an entry of the same image and ids. Best effort: nothing stored when out of
 * memory or larger than the budget. */
void imgcache_store(struct imgcache *ic, const struct ctx *work, int seq,
    const unsigned char sha[32], const int32_t *t, size_t n);
void imgcache_stats(const struct imgcache *ic, struct imgcache_stats *out);

#endif
