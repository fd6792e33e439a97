/* policy_int.h - the policy's representation, shared by policy.c and the YAML loader. */
#ifndef GUARDD_POLICY_INT_H
#define GUARDD_POLICY_INT_H

#include "policy/policy.h"

struct policy {
	char *name;
	enum action on_error, spoof_action;
	enum action on_error_role[2];	/* per role, the top-level on_error unless overridden */
	char *refusal;
	struct policy_category *cat;
	size_t n_cat;
	char hash[65];
};

extern const char *const policy_default_names[13];

void policy_compute_hash(struct policy *p);

#endif
