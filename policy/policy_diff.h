/* policy_diff.h - the effective difference between two resolved policies, per category and
 * role, and whether it changes what the model sees (the prompt) or only how its answer is
 * decided (thresholds, actions, on_error, the spoof action). */
#ifndef GUARDD_POLICY_DIFF_H
#define GUARDD_POLICY_DIFF_H

#include <stddef.h>

#include "policy/policy.h"

enum pchange_kind {
	PCH_ADDED,		/* a category only in the new policy */
	PCH_REMOVED,		/* only in the old one */
	PCH_SHOWN,		/* exclude changed for a role */
	PCH_NAME,
	PCH_DESCRIPTION,
	PCH_THRESHOLD,
	PCH_ACTION,
	PCH_ON_ERROR,		/* per role */
	PCH_SPOOF,		/* structure_spoof action */
	PCH_REFUSAL,
	PCH_POLICY_NAME,
};

struct pchange {
	enum pchange_kind kind;
	char code[8];		/* "" when policy-wide */
	int role;		/* ROLE_REQUEST, ROLE_RESPONSE, or -1 for both / none */
	int prompt;		/* changes the prompt the model sees for that role */
	int stricter;		/* +1 more is flagged or blocked, -1 less, 0 neither or unknown */
	char from[80], to[80];	/* the values, shortened for display */
};

/* Fills a new array (free it) with the changes from a to b, in category order. -1 when out
 * of memory. */
int policy_diff(const struct policy *a, const struct policy *b, struct pchange **out, size_t *n,
    struct err *e);
/* 1 when both policies give the role the same prompt (categories shown, names,
 * descriptions, order), so logged scores stay valid for it. */
int policy_same_prompt(const struct policy *a, const struct policy *b, enum role r);
const char *pchange_kind_name(enum pchange_kind k);

#endif
