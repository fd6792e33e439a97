/* policy.c - the policy's resolved form: defaults, lookups and the content hash. */
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

const struct policy_key policy_keys[] = {
	{ "name", "string", "", "default", "a label carried by every verdict" },
	{ "on_error", "action", "block | allow", "block", "the outcome when classification fails" },
	{ "default.action", "action", "block | flag | allow", "block", "action for a triggered category" },
	{ "default.threshold", "number", "[0, 1]", "0.5", "unsafe_score at which a category triggers" },
	{ "categories.CODE.name", "string", "one line", "S1-S13: the model's names", "text after 'CODE: ' in the prompt" },
	{ "categories.CODE.description", "string", "", "none", "printed on the lines after the name" },
	{ "categories.CODE.exclude", "bool", "", "false", "leave the category out of the prompt" },
	{ "categories.CODE.threshold", "number", "[0, 1]", "default.threshold", "per-category threshold" },
	{ "categories.CODE.action", "action", "block | flag | allow", "default.action", "per-category action" },
	{ "request.threshold", "number", "[0, 1]", "default.threshold", "default threshold for user messages" },
	{ "request.action", "action", "block | flag | allow", "default.action", "default action for user messages" },
	{ "request.categories.CODE.{threshold,action,exclude}", "", "", "categories.CODE", "per-category overrides for user messages" },
	{ "response.threshold", "number", "[0, 1]", "default.threshold", "default threshold for assistant messages" },
	{ "response.action", "action", "block | flag | allow", "default.action", "default action for assistant messages" },
	{ "response.categories.CODE.{threshold,action,exclude}", "", "", "categories.CODE", "per-category overrides for assistant messages" },
	{ "structure_spoof.action", "action", "block | flag | allow", "allow", "action when a message imitates the prompt's scaffolding" },
	{ NULL, NULL, NULL, NULL, NULL },
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

struct policy *
policy_new_base(void)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->name = strdup("default");
	p->on_error = ACTION_BLOCK;
	p->spoof_action = ACTION_ALLOW;
	p->cat = calloc(13, sizeof(*p->cat));
	if (p->name == NULL || p->cat == NULL) {
		policy_free(p);
		return NULL;
	}
	p->n_cat = 13;
	for (int i = 0; i < 13; i++) {
		struct policy_category *c = &p->cat[i];
		snprintf(c->code, sizeof(c->code), "S%d", (i + 1) % 1000);
		c->name = strdup(policy_default_names[i]);
		for (int r = 0; r < 2; r++) {
			c->threshold[r] = 0.5f;
			c->action[r] = ACTION_BLOCK;
		}
	}
	return p;
}

void
policy_compute_hash(struct policy *p)
{
	struct buf b = { 0 };

	/* a canonical rendering of everything that affects a verdict */
	buf_printf(&b, "guardd-policy-v1\nname=%s\non_error=%s\nspoof=%s\n", p->name,
	    action_name(p->on_error), action_name(p->spoof_action));
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

struct policy *
policy_default(void)
{
	struct policy *p = policy_new_base();

	if (p != NULL)
		policy_compute_hash(p);
	return p;
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
	free(p);
}

const char *policy_name(const struct policy *p) { return p->name; }
const char *policy_hash(const struct policy *p) { return p->hash; }
size_t policy_n_categories(const struct policy *p) { return p->n_cat; }
enum action policy_on_error(const struct policy *p) { return p->on_error; }
enum action policy_spoof_action(const struct policy *p) { return p->spoof_action; }

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
