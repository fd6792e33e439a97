/* policy_diff.c - compares two resolved policies field by field: what differs per category
 * and role, whether the prompt differs (then logged scores no longer apply), and in which
 * direction a decision moves. */
#include "policy/policy_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
pchange_kind_name(enum pchange_kind k)
{
	static const char *const n[] = { "added", "removed", "shown", "name", "description",
	    "threshold", "action", "on_error", "structure_spoof", "refusal", "policy_name" };

	return n[k];
}

/* the ordered list of (code, name, description) a role's prompt prints */
int
policy_same_prompt(const struct policy *a, const struct policy *b, enum role r)
{
	size_t i = 0, j = 0, na = policy_n_categories(a), nb = policy_n_categories(b);

	for (;;) {
		while (i < na && policy_category(a, i)->exclude[r])
			i++;
		while (j < nb && policy_category(b, j)->exclude[r])
			j++;
		if (i == na || j == nb)
			return i == na && j == nb;
		const struct policy_category *x = policy_category(a, i), *y = policy_category(b, j);
		const char *dx = x->description ? x->description : "";
		const char *dy = y->description ? y->description : "";
		if (strcmp(x->code, y->code) != 0 || strcmp(x->name, y->name) != 0 ||
		    strcmp(dx, dy) != 0 || (x->description == NULL) != (y->description == NULL))
			return 0;
		i++;
		j++;
	}
}

struct acc {
	struct pchange *v;
	size_t n, cap;
	int oom;
};

static struct pchange *
add(struct acc *a, enum pchange_kind k, const char *code, int role, int prompt, int stricter)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 16;
		struct pchange *nv = realloc(a->v, nc * sizeof(*nv));
		if (nv == NULL) {
			a->oom = 1;
			return NULL;
		}
		a->v = nv;
		a->cap = nc;
	}
	struct pchange *c = &a->v[a->n++];
	memset(c, 0, sizeof(*c));
	c->kind = k;
	snprintf(c->code, sizeof(c->code), "%s", code);
	c->role = role;
	c->prompt = prompt;
	c->stricter = stricter;
	return c;
}

/* a value for display: one line, cut at the field's size with "..." */
static void
shorten(char *dst, size_t cap, const char *s)
{
	size_t k = 0;

	if (s == NULL)
		s = "(none)";
	for (; *s && k + 4 < cap; s++)
		dst[k++] = *s == '\n' ? ' ' : *s;
	if (*s)
		memcpy(dst + k, "...", 3), k += 3;
	dst[k] = '\0';
}

static int
cmp_str(const char *x, const char *y)
{
	if (x == NULL || y == NULL)
		return x != y;
	return strcmp(x, y) != 0;
}

static void
diff_cat(struct acc *a, const struct policy_category *x, const struct policy_category *y)
{
	struct pchange *c;

	if (cmp_str(x->name, y->name) && (c = add(a, PCH_NAME, x->code, -1,
	    !x->exclude[0] || !x->exclude[1] || !y->exclude[0] || !y->exclude[1], 0))) {
		shorten(c->from, sizeof(c->from), x->name);
		shorten(c->to, sizeof(c->to), y->name);
	}
	if (cmp_str(x->description, y->description) && (c = add(a, PCH_DESCRIPTION, x->code, -1,
	    !x->exclude[0] || !x->exclude[1] || !y->exclude[0] || !y->exclude[1], 0))) {
		shorten(c->from, sizeof(c->from), x->description);
		shorten(c->to, sizeof(c->to), y->description);
	}
	for (int r = 0; r < 2; r++) {
		if (x->exclude[r] != y->exclude[r] && (c = add(a, PCH_SHOWN, x->code, r, 1,
		    /* a category the model may no longer name blocks less, in general */
		    y->exclude[r] ? -1 : 1))) {
			snprintf(c->from, sizeof(c->from), "%s", x->exclude[r] ? "excluded" : "shown");
			snprintf(c->to, sizeof(c->to), "%s", y->exclude[r] ? "excluded" : "shown");
		}
		if (x->threshold[r] != y->threshold[r] && (c = add(a, PCH_THRESHOLD, x->code, r, 0,
		    y->threshold[r] < x->threshold[r] ? 1 : -1))) {
			snprintf(c->from, sizeof(c->from), "%.7g", (double)x->threshold[r]);
			snprintf(c->to, sizeof(c->to), "%.7g", (double)y->threshold[r]);
		}
		if (x->action[r] != y->action[r] && (c = add(a, PCH_ACTION, x->code, r, 0,
		    y->action[r] > x->action[r] ? 1 : -1))) {
			snprintf(c->from, sizeof(c->from), "%s", action_name(x->action[r]));
			snprintf(c->to, sizeof(c->to), "%s", action_name(y->action[r]));
		}
	}
}

int
policy_diff(const struct policy *a, const struct policy *b, struct pchange **out, size_t *n,
    struct err *e)
{
	struct acc acc = { 0 };
	struct pchange *c;

	if (strcmp(policy_name(a), policy_name(b)) != 0 && (c = add(&acc, PCH_POLICY_NAME, "", -1, 0, 0))) {
		shorten(c->from, sizeof(c->from), policy_name(a));
		shorten(c->to, sizeof(c->to), policy_name(b));
	}
	for (int r = 0; r < 2; r++)
		if (policy_on_error_for(a, r) != policy_on_error_for(b, r) &&
		    (c = add(&acc, PCH_ON_ERROR, "", r, 0,
		    policy_on_error_for(b, r) > policy_on_error_for(a, r) ? 1 : -1))) {
			snprintf(c->from, sizeof(c->from), "%s", action_name(policy_on_error_for(a, r)));
			snprintf(c->to, sizeof(c->to), "%s", action_name(policy_on_error_for(b, r)));
		}
	if (policy_spoof_action(a) != policy_spoof_action(b) && (c = add(&acc, PCH_SPOOF, "", -1, 0,
	    policy_spoof_action(b) > policy_spoof_action(a) ? 1 : -1))) {
		snprintf(c->from, sizeof(c->from), "%s", action_name(policy_spoof_action(a)));
		snprintf(c->to, sizeof(c->to), "%s", action_name(policy_spoof_action(b)));
	}
	if (strcmp(policy_refusal(a), policy_refusal(b)) != 0 && (c = add(&acc, PCH_REFUSAL, "", -1, 0, 0))) {
		shorten(c->from, sizeof(c->from), policy_refusal(a));
		shorten(c->to, sizeof(c->to), policy_refusal(b));
	}
	/* the old policy's categories in order, then the ones only the new has */
	for (size_t i = 0; i < policy_n_categories(a); i++) {
		const struct policy_category *x = policy_category(a, i);
		int k = policy_find(b, x->code);
		if (k < 0) {
			for (int r = 0; r < 2; r++)
				if (!x->exclude[r] && (c = add(&acc, PCH_REMOVED, x->code, r, 1, -1)))
					shorten(c->from, sizeof(c->from), x->name);
			continue;
		}
		diff_cat(&acc, x, policy_category(b, (size_t)k));
	}
	for (size_t j = 0; j < policy_n_categories(b); j++) {
		const struct policy_category *y = policy_category(b, j);
		if (policy_find(a, y->code) >= 0)
			continue;
		for (int r = 0; r < 2; r++)
			if (!y->exclude[r] && (c = add(&acc, PCH_ADDED, y->code, r, 1, 1)))
				shorten(c->to, sizeof(c->to), y->name);
	}
	if (acc.oom) {
		free(acc.v);
		return err_set(e, "out of memory");
	}
	*out = acc.v;
	*n = acc.n;
	return 0;
}
