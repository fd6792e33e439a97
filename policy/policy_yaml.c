/* policy_yaml.c - reads a policy from YAML (libyaml's document API): every key is checked
 * against the table, every value against its type and range, and errors carry
 * file:line:column and the key's path. The whole document is validated before a policy
 * exists, so a reload either gets a complete new policy or keeps the old one. */
#include "policy/policy_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mapfile.h"
#include "policy/yamlwalk.h"

#define MAX_POLICY_BYTES (1 << 20)
#define MAX_CATEGORIES 256

struct opt_f { int set; float v; };
struct opt_a { int set; enum action v; };
struct opt_b { int set; int v; };

struct over {
	struct opt_b exclude;
	struct opt_f thr;
	struct opt_a act;
};

struct cat_in {
	char code[8];
	char *name, *desc;
	struct over main, role[2];
};

struct doc {
	struct ywalk w;
	char *name;
	struct opt_a on_error, spoof;
	struct opt_f thr;
	struct opt_a act;
	struct opt_f role_thr[2];
	struct opt_a role_act[2];
	struct cat_in cat[MAX_CATEGORIES];
	size_t n_cat;
};

/* "a.b" for messages; long paths are cut, which only shortens a message */
static void
join(char *out, size_t n, const char *a, const char *b)
{
	if (snprintf(out, n, "%s.%s", a, b) >= (int)n)
		out[n - 1] = '\0';
}

static int
want_scalar(struct doc *d, yaml_node_t *n, const char *path, const char *what, const char **out)
{
	if ((*out = yw_scalar(n)) == NULL)
		return yw_fail(&d->w, n, path, "expected %s", what);
	if (strlen(*out) != n->data.scalar.length)
		return yw_fail(&d->w, n, path, "contains a NUL byte");
	return 0;
}

static int
get_number(struct doc *d, yaml_node_t *n, const char *path, struct opt_f *o)
{
	const char *s;
	char *end;

	if (want_scalar(d, n, path, "a number in [0, 1]", &s) == -1)
		return -1;
	errno = 0;
	double v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v))
		return yw_fail(&d->w, n, path, "'%s' is not a number", s);
	if (v < 0 || v > 1)
		return yw_fail(&d->w, n, path, "%s is outside [0, 1]", s);
	o->set = 1;
	o->v = (float)v;
	return 0;
}

static int
get_action(struct doc *d, yaml_node_t *n, const char *path, struct opt_a *o, int allow_flag)
{
	const char *s;

	if (want_scalar(d, n, path, "an action", &s) == -1)
		return -1;
	if (strcmp(s, "block") == 0)
		o->v = ACTION_BLOCK;
	else if (strcmp(s, "allow") == 0)
		o->v = ACTION_ALLOW;
	else if (strcmp(s, "flag") == 0 && allow_flag)
		o->v = ACTION_FLAG;
	else
		return yw_fail(&d->w, n, path, "'%s' is not one of %s", s,
		    allow_flag ? "block, flag, allow" : "block, allow");
	o->set = 1;
	return 0;
}

static int
get_bool(struct doc *d, yaml_node_t *n, const char *path, struct opt_b *o)
{
	const char *s;

	if (want_scalar(d, n, path, "true or false", &s) == -1)
		return -1;
	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0)
		o->v = 1;
	else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0)
		o->v = 0;
	else
		return yw_fail(&d->w, n, path, "'%s' is not true or false", s);
	o->set = 1;
	return 0;
}

static int
get_string(struct doc *d, yaml_node_t *n, const char *path, int oneline, char **out)
{
	const char *s;

	if (want_scalar(d, n, path, "a string", &s) == -1)
		return -1;
	if (*s == '\0')
		return yw_fail(&d->w, n, path, "must not be empty");
	if (oneline && strpbrk(s, "\r\n") != NULL)
		return yw_fail(&d->w, n, path, "must be one line");
	free(*out);
	if ((*out = strdup(s)) == NULL)
		return yw_fail(&d->w, n, path, "out of memory");
	return 0;
}


static int
valid_code(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n > 4 || s[0] != 'S' || s[1] < '1' || s[1] > '9')
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static struct cat_in *
find_cat(struct doc *d, const char *code)
{
	for (size_t i = 0; i < d->n_cat; i++)
		if (strcmp(d->cat[i].code, code) == 0)
			return &d->cat[i];
	return NULL;
}

static int
parse_over(struct doc *d, yaml_node_t *m, const char *path, struct over *o, struct cat_in *c)
{
	char kp[256];

	YW_PAIRS(&d->w, m, path, k, v, {
		join(kp, sizeof(kp), path, k);
		if (strcmp(k, "threshold") == 0) {
			if (get_number(d, v, kp, &o->thr) == -1)
				return -1;
		} else if (strcmp(k, "action") == 0) {
			if (get_action(d, v, kp, &o->act, 1) == -1)
				return -1;
		} else if (strcmp(k, "exclude") == 0) {
			if (get_bool(d, v, kp, &o->exclude) == -1)
				return -1;
		} else if (c != NULL && strcmp(k, "name") == 0) {
			if (get_string(d, v, kp, 1, &c->name) == -1)
				return -1;
		} else if (c != NULL && strcmp(k, "description") == 0) {
			if (get_string(d, v, kp, 0, &c->desc) == -1)
				return -1;
		} else
			return yw_fail(&d->w, v, kp, "unknown key (%s)", c ? "name, description, exclude, "
			    "threshold, action" : "exclude, threshold, action");
	});
	return 0;
}

/* categories: { CODE: {...} } at the top level (define = 1) or inside request/response */
static int
parse_categories(struct doc *d, yaml_node_t *m, const char *path, int role)
{
	char kp[256];

	YW_PAIRS(&d->w, m, path, k, v, {
		join(kp, sizeof(kp), path, k);
		if (!valid_code(k))
			return yw_fail(&d->w, v, kp, "'%s' is not a category code (S1 to S999)", k);
		struct cat_in *c = find_cat(d, k);
		if (c == NULL) {
			if (role >= 0)
				return yw_fail(&d->w, v, kp, "unknown category: define %s under categories first", k);
			if (d->n_cat == MAX_CATEGORIES)
				return yw_fail(&d->w, v, kp, "more than %d categories", MAX_CATEGORIES);
			c = &d->cat[d->n_cat++];
			memcpy(c->code, k, strlen(k) + 1);	/* valid_code: at most 4 bytes */
		}
		if (parse_over(d, v, kp, role >= 0 ? &c->role[role] : &c->main, role >= 0 ? NULL : c) == -1)
			return -1;
		if (role < 0 && c->name == NULL)
			return yw_fail(&d->w, v, kp, "a custom category needs a name");
	});
	return 0;
}

static int
parse_role(struct doc *d, yaml_node_t *m, const char *path, int r)
{
	char kp[256];

	YW_PAIRS(&d->w, m, path, k, v, {
		join(kp, sizeof(kp), path, k);
		if (strcmp(k, "threshold") == 0) {
			if (get_number(d, v, kp, &d->role_thr[r]) == -1)
				return -1;
		} else if (strcmp(k, "action") == 0) {
			if (get_action(d, v, kp, &d->role_act[r], 1) == -1)
				return -1;
		} else if (strcmp(k, "categories") == 0) {
			/* after the top level's categories, whatever the order in the file */
		} else
			return yw_fail(&d->w, v, kp, "unknown key (threshold, action, categories)");
	});
	return 0;
}

static int
parse_root(struct doc *d, yaml_node_t *root)
{
	yaml_node_t *roles[2] = { NULL, NULL };

	YW_PAIRS(&d->w, root, "policy", k, v, {
		if (strcmp(k, "name") == 0) {
			if (get_string(d, v, "name", 1, &d->name) == -1)
				return -1;
		} else if (strcmp(k, "on_error") == 0) {
			if (get_action(d, v, "on_error", &d->on_error, 0) == -1)
				return -1;
		} else if (strcmp(k, "default") == 0) {
			YW_PAIRS(&d->w, v, "default", k2, v2, {
				char kp[64];
				join(kp, sizeof(kp), "default", k2);
				if (strcmp(k2, "threshold") == 0) {
					if (get_number(d, v2, kp, &d->thr) == -1)
						return -1;
				} else if (strcmp(k2, "action") == 0) {
					if (get_action(d, v2, kp, &d->act, 1) == -1)
						return -1;
				} else
					return yw_fail(&d->w, v2, kp, "unknown key (threshold, action)");
			});
		} else if (strcmp(k, "categories") == 0) {
			if (parse_categories(d, v, "categories", -1) == -1)
				return -1;
		} else if (strcmp(k, "request") == 0 || strcmp(k, "response") == 0) {
			int r = strcmp(k, "response") == 0;
			roles[r] = v;
			if (parse_role(d, v, k, r) == -1)
				return -1;
		} else if (strcmp(k, "structure_spoof") == 0) {
			YW_PAIRS(&d->w, v, "structure_spoof", k2, v2, {
				if (strcmp(k2, "action") != 0)
					return yw_fail(&d->w, v2, "structure_spoof", "unknown key '%s' (action)", k2);
				if (get_action(d, v2, "structure_spoof.action", &d->spoof, 1) == -1)
					return -1;
			});
		} else
			return yw_fail(&d->w, v, k, "unknown key (name, on_error, default, categories, "
			    "request, response, structure_spoof)");
	});
	for (int r = 0; r < 2; r++) {
		if (roles[r] == NULL)
			continue;
		YW_PAIRS(&d->w, roles[r], r ? "response" : "request", k, v, {
			char kp[64];
			join(kp, sizeof(kp), r ? "response" : "request", "categories");
			if (strcmp(k, "categories") == 0 && parse_categories(d, v, kp, r) == -1)
				return -1;
		});
	}
	return 0;
}

static struct policy *
resolve(struct doc *d)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->cat = calloc(d->n_cat, sizeof(*p->cat))) == NULL) {
		free(p);
		err_set(d->w.e, "%s: out of memory", d->w.file);
		return NULL;
	}
	p->name = strdup(d->name ? d->name : "default");
	p->on_error = d->on_error.set ? d->on_error.v : ACTION_BLOCK;
	p->spoof_action = d->spoof.set ? d->spoof.v : ACTION_ALLOW;
	p->n_cat = d->n_cat;
	for (size_t i = 0; i < d->n_cat; i++) {
		struct cat_in *c = &d->cat[i];
		struct policy_category *o = &p->cat[i];
		memcpy(o->code, c->code, sizeof(o->code));
		o->name = c->name;
		o->description = c->desc;
		c->name = c->desc = NULL;
		o->custom = i >= 13;
		for (int r = 0; r < 2; r++) {
			const struct over *ro = &c->role[r], *mo = &c->main;
			o->exclude[r] = ro->exclude.set ? ro->exclude.v : mo->exclude.set && mo->exclude.v;
			o->threshold[r] = ro->thr.set ? ro->thr.v : mo->thr.set ? mo->thr.v :
			    d->role_thr[r].set ? d->role_thr[r].v : d->thr.set ? d->thr.v : 0.5f;
			o->action[r] = ro->act.set ? ro->act.v : mo->act.set ? mo->act.v :
			    d->role_act[r].set ? d->role_act[r].v : d->act.set ? d->act.v : ACTION_BLOCK;
		}
	}
	for (int r = 0; r < 2; r++) {
		size_t shown = 0;
		for (size_t i = 0; i < p->n_cat; i++)
			shown += !p->cat[i].exclude[r];
		if (shown == 0) {
			err_set(d->w.e, "%s: every category is excluded for %s messages", d->w.file,
			    r ? "assistant" : "user");
			policy_free(p);
			return NULL;
		}
	}
	policy_compute_hash(p);
	return p;
}

struct policy *
policy_parse(const char *text, size_t len, const char *file, struct err *e)
{
	struct doc *d = calloc(1, sizeof(*d));
	struct policy *p = NULL;
	int failed;

	if (d == NULL) {
		err_set(e, "%s: out of memory", file);
		return NULL;
	}
	d->w.file = file;
	d->w.e = e;
	for (int i = 0; i < 13; i++) {
		snprintf(d->cat[i].code, sizeof(d->cat[i].code), "S%d", (i + 1) % 1000);
		d->cat[i].name = strdup(policy_default_names[i]);
	}
	d->n_cat = 13;
	yaml_node_t *root = yw_load(&d->w, text, len, &failed);
	if (!failed && root == NULL)
		p = policy_default();	/* an empty file is the default policy */
	else if (!failed && parse_root(d, root) == 0)
		p = resolve(d);
	yw_free(&d->w);
	for (size_t i = 0; i < d->n_cat; i++) {
		free(d->cat[i].name);
		free(d->cat[i].desc);
	}
	free(d->name);
	free(d);
	return p;
}

struct policy *
policy_load(const char *path, struct err *e)
{
	size_t len;
	char *text = file_read_all(path, &len, MAX_POLICY_BYTES, e);

	if (text == NULL)
		return NULL;
	struct policy *p = policy_parse(text, len, path, e);
	free(text);
	return p;
}
