/* clutil.h - what the classifier tests (t_guard, t_convcache) share: one conversation
 * through one policy slot, their two models, a classifier holding one policy, and verdicts equal bit for bit. */
#ifndef GUARDD_CLUTIL_H
#define GUARDD_CLUTIL_H

#include <string.h>

#include "classifier/classifier.h"
#include "classifier/conv.h"
#include "core/model.h"
#include "policy/policy.h"
#include "tap.h"

/* the two models the classifier tests run on, argv[1] the rigged guard and argv[2] one with
 * random weights; skips the whole test, saying why, when either does not open */
static inline void
cl_models(char **argv, struct model **rig, struct model **rnd)
{
	char why[sizeof(((struct err *)0)->msg) + 64];
	struct err e;

	*rig = model_open(argv[1], &e);
	*rnd = *rig ? model_open(argv[2], &e) : NULL;
	if (*rig == NULL || *rnd == NULL) {
		snprintf(why, sizeof(why), "test models not built: %s", e.msg);
		skip_all(why);
	}
}

/* c's verdict under policy slot 0 */
static inline struct verdict
cl_run1(struct classifier *cl, const struct conv *c)
{
	struct verdict v;
	const struct conv *l[1] = { c };

	classifier_run(cl, 0, l, 1, &v);
	return v;
}

/* a classifier on m with p in slot 0; NULL (e says why) when either step fails */
static inline struct classifier *
cl_open1(const struct model *m, const struct policy *p, const struct classifier_params *cp,
    struct err *e)
{
	struct classifier *c = classifier_new(m, cp, e);

	if (c != NULL && classifier_add_policy(c, p, e) != 0) {
		classifier_free(c);
		return NULL;
	}
	return c;
}

/* a and b agree bit for bit: scores (the ncat category scores too), decision, raw answer,
 * codes' count and role */
static inline int
cl_same_verdict(const struct verdict *a, const struct verdict *b, size_t ncat)
{
	if (memcmp(&a->unsafe_score, &b->unsafe_score, sizeof(double)) != 0 ||
	    a->decision != b->decision || strcmp(a->raw, b->raw) != 0 || a->n_codes != b->n_codes ||
	    a->have_cat_scores != b->have_cat_scores || a->role != b->role)
		return 0;
	for (size_t i = 0; a->have_cat_scores && i < ncat; i++)
		if (memcmp(&a->cat_scores[i], &b->cat_scores[i], sizeof(double)) != 0)
			return 0;
	return 1;
}

#endif
