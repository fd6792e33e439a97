/* classifier.h - Llama Guard 3 on the core: prompts from a policy, the policy prefix computed
 * once per (policy, role) and reused, conversations classified in batches. One classifier is
 * one worker: call it from one thread at a time. */
#ifndef GUARDD_CLASSIFIER_H
#define GUARDD_CLASSIFIER_H

#include <stddef.h>
#include "util/err.h"
#include "classifier/verdict.h"

struct classifier;
struct conv;
struct model;
struct policy;
struct pool;
struct guard_stream;

struct classifier_params {
	int n_threads;		/* 0: all CPUs */
	int max_batch;		/* conversations per classifier_run */
	int n_ctx;		/* positions per conversation, prefix included */
	int prefix_cache;	/* 0: evaluate the policy prefix for every conversation */
	int max_streams;	/* responses checked incrementally at once (0: none) */
	struct pool *pool;	/* NULL: its own threads; else borrowed (see ctx_params) */
	size_t conv_cache_bytes;	/* keys and values of recent conversations kept for re-checks
					   (classifier/convcache.h); 0: none (the default); needs
					   prefix_cache */
	size_t image_cache_bytes;	/* image prompts' prefixes with their images, for a vision
					   guard (classifier/imgcache.h): at most this many bytes
					   (default 1 GiB) ... */
	int image_cache_entries;	/* ... and entries (default 8); 0 or no prefix_cache: none */
};

struct classifier_params classifier_params_default(void);

/* One work context (KV cache, thread pool, scratch) per classifier: one worker. The model is
 * borrowed and must outlive the classifier. No policy yet: add them with
 * classifier_add_policy. */
struct classifier *classifier_new(const struct model *m, const struct classifier_params *params,
    struct err *e);
void classifier_free(struct classifier *c);
/* Adds a policy (borrowed; must outlive its slot) and computes its prefix caches for both
 * roles: small snapshots of the prefix positions only. Returns the slot index (0, 1, ...) or
 * -1. */
int classifier_add_policy(struct classifier *c, const struct policy *p, struct err *e);
/* Swaps the policy of a slot and rebuilds its prefix caches; on failure the old policy AND
 * its caches stay in use, untouched. */
int classifier_set_policy(struct classifier *c, int slot, const struct policy *p, struct err *e);
/* The slot's policy, or NULL for no such slot. */
const struct policy *classifier_policy(const struct classifier *c, int slot);
int classifier_n_policies(const struct classifier *c);
int classifier_max_batch(const struct classifier *c);

/* Classifies n <= max_batch conversations together under the slot's policy; out[i] is
 * conv[i]'s verdict (release with verdict_free). Problems with one conversation become that
 * verdict's error; a bad slot makes every verdict an error. */
void classifier_run(struct classifier *c, int slot, const struct conv *const *conv, size_t n,
    struct verdict *out);
/* The conversation cache's counters (all zero without one); callable from any thread while
 * the classifier's own thread works. */
struct convcache_stats;
void classifier_cache_stats(const struct classifier *c, struct convcache_stats *out);
/* The image cache's counters (all zero without one), from any thread. */
struct imgcache_stats;
void classifier_image_cache_stats(const struct classifier *c, struct imgcache_stats *out);
/* Called between layers; non-zero stops the batch (its verdicts become errors). */
void classifier_set_cancel(struct classifier *c, int (*cb)(void *), void *arg);

/* --- incremental checks of a response while it is generated ----------------------------
 * A stream keeps the guard's KV cache of [policy prefix (response role) + the conversation +
 * the response so far] in a sequence of its own. Each check re-tokenizes the response text,
 * keeps the longest common token prefix with what the cache holds (a BPE boundary can move
 * as text grows), appends only the new tokens, then the template's closing part and the
 * model's "\n\n" on a scratch extension that is dropped afterwards, and reads the verdict
 * exactly as classifier_run does. The verdict of a check of the full response is therefore
 * bit-identical to classifier_run on [conversation + assistant message with that text]. */

/* Opens a stream for the response to conv (its last message is the user's; borrowed only
 * during the call) under the slot's policy. NULL when every stream is in use, the slot does
 * not exist, or the conversation does not fit (e says why). A conversation with an image
 * part (its bytes in conv->img) needs a vision guard (Llama Guard 3 11B-Vision): the image is
 * attached and the image form of the prefix evaluated here, once (or restored from the image
 * cache); a text-only guard fails the open rather than judge without the image. */
struct guard_stream *classifier_stream_open(struct classifier *c, int slot,
    const struct conv *conv, struct err *e);
/* Checks n streams together (one prefill for all), each with its response text so far
 * (resp[i], len[i]; complete UTF-8). out[i] as from classifier_run (role response); errors
 * go to that verdict (policy on_error for responses applied). */
void classifier_stream_check(struct classifier *c, struct guard_stream *const *gs,
    const char *const *resp, const size_t *len, size_t n, struct verdict *out);
/* Tokens the last check evaluated (appended, closing part and answer included) and reused. */
int guard_stream_tokens_evaluated(const struct guard_stream *gs);
int guard_stream_tokens_reused(const struct guard_stream *gs);
void classifier_stream_close(struct classifier *c, struct guard_stream *gs);
int classifier_max_streams(const struct classifier *c);

#endif
