/* policy.h - a moderation policy: the hazard taxonomy shown to Llama Guard (S1-S13 plus
 * custom codes, minus excluded ones), thresholds and actions per category and per role,
 * and what a failure means. Loaded from YAML; immutable once loaded. */
#ifndef GUARDD_POLICY_H
#define GUARDD_POLICY_H

#include <stddef.h>
#include "util/err.h"

enum action { ACTION_ALLOW = 0, ACTION_FLAG = 1, ACTION_BLOCK = 2 };

/* Which message is assessed: a user's request or the assistant's response. */
enum role { ROLE_REQUEST = 0, ROLE_RESPONSE = 1 };

struct policy;

struct policy_category {
	char code[8];		/* "S1" .. "S999" */
	char *name;		/* the prompt line's text, e.g. "Violent Crimes." */
	char *description;	/* NULL, or printed on the lines after the name */
	int custom;		/* not one of S1-S13 */
	int exclude[2];		/* per role: left out of the prompt */
	float threshold[2];	/* per role: unsafe_score needed to act on this category */
	enum action action[2];	/* per role */
};

/* Loads and validates a policy file. Errors name file:line:column and the key. */
struct policy *policy_load(const char *path, struct err *e);
/* Parses YAML text; `name` stands for the file in messages. */
struct policy *policy_parse(const char *text, size_t len, const char *name, struct err *e);
/* The built-in policy: S1-S13 with the template's names, block at 0.5, fail closed. */
struct policy *policy_default(void);
void policy_free(struct policy *p);

const char *policy_name(const struct policy *p);
/* sha256 (hex) of the resolved policy: equal policies hash equal, whatever the YAML layout. */
const char *policy_hash(const struct policy *p);
size_t policy_n_categories(const struct policy *p);
const struct policy_category *policy_category(const struct policy *p, size_t i);
/* Index of a code, or -1. */
int policy_find(const struct policy *p, const char *code);
/* The top-level on_error (what policy_on_error_for falls back to). */
enum action policy_on_error(const struct policy *p);
/* on_error for one direction: `request: {on_error: ...}` / `response: {on_error: ...}`,
 * else the top-level key. verdict_fail applies the verdict's role's. */
enum action policy_on_error_for(const struct policy *p, enum role r);
/* The text a blocked chat answers with (key `refusal:`, one line or more, never empty;
 * default "I can't help with that."). */
const char *policy_refusal(const struct policy *p);
enum action policy_spoof_action(const struct policy *p);
/* The lowest threshold of any category shown for this role: below it nothing can trigger. */
float policy_min_threshold(const struct policy *p, enum role r);

const char *action_name(enum action a);
const char *role_name(enum role r);

/* The one table of the keys a policy file may hold: the loader dispatches, checks values
 * and takes defaults from it, its messages list a level's keys from it, and a test compares
 * it with guard-policy(5). */
struct policy_key {
	const char *path;	/* dotted; CODE stands for a category code */
	const char *type;	/* string, number, action, bool */
	const char *range;	/* checked as written: "[0, 1]", "block | allow", "one line" */
	const char *def;	/* NULL: inherited (see help) or none */
	const char *help;
	size_t field;		/* the loader's: where in a level's settings the value goes */
};
extern const struct policy_key policy_keys[];	/* ends with a NULL path */

#endif
