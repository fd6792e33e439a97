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

struct classifier_params {
	int n_threads;		/* 0: all CPUs */
	int max_batch;		/* conversations per classifier_run */
	int n_ctx;		/* positions per conversation, prefix included */
	int prefix_cache;	/* 0: evaluate the policy prefix for every conversation */
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
/* Called between layers; non-zero stops the batch (its verdicts become errors). */
void classifier_set_cancel(struct classifier *c, int (*cb)(void *), void *arg);

#endif
