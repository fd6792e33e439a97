/* classifier.h - Llama Guard 3 on the core: prompts from a policy, the policy prefix computed
 * once per role and reused, conversations classified in batches. One classifier is one
 * worker: call it from one thread at a time. */
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

/* The model and policy are borrowed and must outlive the classifier. Computes the prefix
 * caches of both roles. */
struct classifier *classifier_new(const struct model *m, const struct policy *p,
    const struct classifier_params *params, struct err *e);
void classifier_free(struct classifier *c);
/* Swaps in another policy and rebuilds the prefix caches; on failure the old one stays. */
int classifier_set_policy(struct classifier *c, const struct policy *p, struct err *e);
const struct policy *classifier_policy(const struct classifier *c);
int classifier_max_batch(const struct classifier *c);

/* Classifies n <= max_batch conversations together; out[i] is conv[i]'s verdict (release
 * with verdict_free). Problems with one conversation become that verdict's error. */
void classifier_run(struct classifier *c, const struct conv *const *conv, size_t n,
    struct verdict *out);
/* Called between layers; non-zero stops the batch (its verdicts become errors). */
void classifier_set_cancel(struct classifier *c, int (*cb)(void *), void *arg);

#endif
