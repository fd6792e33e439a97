/* policy.c - the policy's resolved form: lookups and the content hash (the defaults are
 * policy_keys', applied by the loader in policy_yaml.c). */
#include "policy/policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/sha256.h"

/* The 1B model's default categories, exactly as its chat template prints them. */
const char *const policy_default_names[13] = {
	"Violent Crimes.", "Non-Violent Crimes.", "Sex Crimes.", "Child Exploitation.",
	"Defamation.", "Specialized Advice.", "Privacy.", "Intellectual Property.",
	"Indiscriminate Weapons.", "Hate.", "Self-Harm.", "Sexual Content.", "Elections.",
};

const char *
action_name(enum action a)
{
	return a == ACTION_BLOCK ? "block" : a == ACTION_FLAG ? "flag" : "allow";
}

const char *
role_name(enum role r)
{
	return r == ROLE_RESPONSE ? "assistant" : "user";
}

void
policy_compute_hash(struct policy *p)
{
	struct buf b = { 0 };

	/* a canonical rendering of everything that affects a verdict, or what a chat answers
	 * in place of a blocked message */
	buf_printf(&b, "guardd-policy-v2\nname=%s\non_error=%s %s %s\nspoof=%s\nrefusal=%zu:%s\n", p->name,
	    action_name(p->on_error), action_name(p->on_error_role[ROLE_REQUEST]),
	    action_name(p->on_error_role[ROLE_RESPONSE]), action_name(p->spoof_action), strlen(p->refusal),
	    p->refusal);
	for (size_t i = 0; i < p->n_cat; i++) {
		const struct policy_category *c = &p->cat[i];
		buf_printf(&b, "%s\t%zu:%s\t%zu:%s", c->code, strlen(c->name), c->name,
		    c->description ? strlen(c->description) : 0, c->description ? c->description : "");
		for (int r = 0; r < 2; r++)
			buf_printf(&b, "\t%d %.9g %s", c->exclude[r], (double)c->threshold[r],
			    action_name(c->action[r]));
		buf_adds(&b, "\n");
	}
	sha256_hex(b.p, b.n, p->hash);
	buf_free(&b);
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_cat; i++) {
		free(p->cat[i].name);
		free(p->cat[i].description);
	}
	free(p->cat);
	free(p->name);
	free(p->refusal);
	free(p);
}

const char *policy_name(const struct policy *p) { return p->name; }
const char *policy_hash(const struct policy *p) { return p->hash; }
size_t policy_n_categories(const struct policy *p) { return p->n_cat; }
enum action policy_on_error(const struct policy *p) { return p->on_error; }
enum action policy_spoof_action(const struct policy *p) { return p->spoof_action; }
const char *policy_refusal(const struct policy *p) { return p->refusal; }

enum action
policy_on_error_for(const struct policy *p, enum role r)
{
	return p->on_error_role[r == ROLE_RESPONSE];
}

const struct policy_category *
policy_category(const struct policy *p, size_t i)
{
	return i < p->n_cat ? &p->cat[i] : NULL;
}

int
policy_find(const struct policy *p, const char *code)
{
	for (size_t i = 0; i < p->n_cat; i++)
		if (strcmp(p->cat[i].code, code) == 0)
			return (int)i;
	return -1;
}

float
policy_min_threshold(const struct policy *p, enum role r)
{
	float m = 1.0f;

	for (size_t i = 0; i < p->n_cat; i++)
		if (!p->cat[i].exclude[r] && p->cat[i].threshold[r] < m)
			m = p->cat[i].threshold[r];
	return m;
}
