/* policy_yaml.c - reads a policy from YAML, driven by policy_keys: every key of the file
 * is looked up in the table, its value checked against the key's type and range as the
 * table writes them, unset keys take the table's defaults, and errors carry
 * file:line:column and the key's path. The whole document is validated before a policy
 * exists, so a reload either gets a complete new policy or keeps the old one. */
#include "policy/policy_int.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/keytab.h"
#include "util/mapfile.h"
#include "policy/yamlwalk.h"

#define MAX_POLICY_BYTES (1 << 20)
#define MAX_CATEGORIES 256
#define DEFAULT_REFUSAL "I can't help with that."

struct opt_f { int set; float v; };
struct opt_a { int set; enum action v; };
struct opt_b { int set; int v; };

/* What one mapping of the file can set; each key of the table names its field. */
struct scope {
	char *name, *description, *refusal;
	struct opt_a on_error, action;
	struct opt_f threshold;
	struct opt_b exclude;
};

#define S(field) offsetof(struct scope, field)

/* The one list of keys: the loader below, guard-policy(5) and its test read it. A type
 * is checked against its range exactly as written here: "[lo, hi]" for a number, the
 * allowed words for an action, "one line" for a string. CODE stands for a category code;
 * a NULL default is inherited (see the help) or absent. */
const struct policy_key policy_keys[] = {
	{ "name", "string", "one line", "default", "a label carried by every verdict", S(name) },
	{ "on_error", "action", "block | allow", "block", "the outcome when classification fails",
	  S(on_error) },
	{ "refusal", "string", "at most 4096 bytes", DEFAULT_REFUSAL,
	  "what a blocked chat answers with, one line or more", S(refusal) },
	{ "default.threshold", "number", "[0, 1]", "0.5", "unsafe_score at which a category triggers",
	  S(threshold) },
	{ "default.action", "action", "block | flag | allow", "block", "action for a triggered category",
	  S(action) },
	{ "categories.CODE.name", "string", "one line", NULL,
	  "text after 'CODE: ' in the prompt; S1-S13 have the model's names, a custom code needs one",
	  S(name) },
	{ "categories.CODE.description", "string", "", NULL, "printed on the lines after the name",
	  S(description) },
	{ "categories.CODE.exclude", "bool", "true | false", "false", "leave the category out of the prompt",
	  S(exclude) },
	{ "categories.CODE.threshold", "number", "[0, 1]", NULL, "per category; else the role's, then default's",
	  S(threshold) },
	{ "categories.CODE.action", "action", "block | flag | allow", NULL,
	  "per category; else the role's, then default's", S(action) },
	{ "request.threshold", "number", "[0, 1]", NULL, "for user messages; else default.threshold",
	  S(threshold) },
	{ "request.action", "action", "block | flag | allow", NULL, "for user messages; else default.action",
	  S(action) },
	{ "request.on_error", "action", "block | allow", NULL, "when classifying a user message fails; else on_error",
	  S(on_error) },
	{ "request.categories.CODE.threshold", "number", "[0, 1]", NULL,
	  "per category for user messages", S(threshold) },
	{ "request.categories.CODE.action", "action", "block | flag | allow", NULL,
	  "per category for user messages", S(action) },
	{ "request.categories.CODE.exclude", "bool", "true | false", NULL,
	  "per category for user messages", S(exclude) },
	{ "response.threshold", "number", "[0, 1]", NULL, "for assistant messages; else default.threshold",
	  S(threshold) },
	{ "response.action", "action", "block | flag | allow", NULL,
	  "for assistant messages; else default.action", S(action) },
	{ "response.on_error", "action", "block | allow", NULL,
	  "when classifying an assistant message fails; else on_error", S(on_error) },
	{ "response.categories.CODE.threshold", "number", "[0, 1]", NULL,
	  "per category for assistant messages", S(threshold) },
	{ "response.categories.CODE.action", "action", "block | flag | allow", NULL,
	  "per category for assistant messages", S(action) },
	{ "response.categories.CODE.exclude", "bool", "true | false", NULL,
	  "per category for assistant messages", S(exclude) },
	{ "structure_spoof.action", "action", "block | flag | allow", "allow",
	  "applied when a message imitates the prompt's scaffolding", S(action) },
	{ NULL, NULL, NULL, NULL, NULL, 0 },
};

struct cat_in {
	char code[8];
	struct scope main, role[2];
};

struct doc {
	struct ywalk w;
	struct scope root, def, role[2], spoof;
	yaml_node_t *role_cats[2];	/* request/response.categories, walked after categories */
	struct cat_in cat[MAX_CATEGORIES];
	size_t n_cat;
	short index[1000];		/* code number -> 1 + index in cat, 0: none */
};

static const struct policy_key *
key_find(const char *path)
{
	return keytab_find(KEYTAB(policy_keys), path);
}

static int
is_level(const char *path)
{
	return keytab_is_level(KEYTAB(policy_keys), path);
}

static int
parse_action(const char *s, enum action *out)
{
	static const enum action all[] = { ACTION_BLOCK, ACTION_FLAG, ACTION_ALLOW };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(s, action_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	return -1;
}

/* whether word is one of range's "a | b | c" */
static int
in_words(const char *range, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = range; *p; p += strspn(p, " |")) {
		size_t len = strcspn(p, " |");
		if (len == n && strncmp(p, word, n) == 0)
			return 1;
		p += len;
	}
	return 0;
}

/* Stores text as the value of key k into s. Returns NULL, or why not (in why). Used for
 * the file's values and for the table's defaults alike. */
static const char *
set_text(struct scope *s, const struct policy_key *k, const char *text, char *why, size_t n)
{
	void *field = (char *)s + k->field;

	if (strcmp(k->type, "number") == 0) {
		struct opt_f *o = field;
		double lo = 0, hi = 0, v;
		char *end;
		if (sscanf(k->range, "[%lf, %lf]", &lo, &hi) != 2)
			lo = -INFINITY, hi = INFINITY;
		errno = 0;
		v = strtod(text, &end);
		if (*text == '\0' || *end != '\0' || errno != 0 || !isfinite(v))
			snprintf(why, n, "'%s' is not a number", text);
		else if (v < lo || v > hi)
			snprintf(why, n, "%s is outside %s", text, k->range);
		else {
			o->set = 1;
			o->v = (float)v;
			return NULL;
		}
	} else if (strcmp(k->type, "action") == 0) {
		struct opt_a *o = field;
		if (in_words(k->range, text) && parse_action(text, &o->v) == 0) {
			o->set = 1;
			return NULL;
		}
		snprintf(why, n, "'%s' is not one of %s", text, k->range);
	} else if (strcmp(k->type, "bool") == 0) {
		struct opt_b *o = field;
		/* YAML 1.1 spellings as well, which is what libyaml's users write */
		if (strcmp(text, "true") == 0 || strcmp(text, "yes") == 0 || strcmp(text, "false") == 0 ||
		    strcmp(text, "no") == 0) {
			o->set = 1;
			o->v = text[0] == 't' || text[0] == 'y';
			return NULL;
		}
		snprintf(why, n, "'%s' is not true or false", text);
	} else {	/* string */
		char **o = field;
		size_t len = strlen(text), max = SIZE_MAX;
		if (sscanf(k->range, "at most %zu bytes", &max) != 1)
			max = SIZE_MAX;
		if (*text == '\0')
			snprintf(why, n, "must not be empty");
		else if (strcmp(k->range, "one line") == 0 && strpbrk(text, "\r\n") != NULL)
			snprintf(why, n, "must be one line");
		else if (len > max)
			snprintf(why, n, "is %zu bytes, more than %zu", len, max);
		else if (utf8_valid_prefix(text, len) != len)	/* libyaml checks too; the table's defaults are ours */
			snprintf(why, n, "invalid UTF-8 at byte %zu", utf8_valid_prefix(text, len));
		else {
			free(*o);
			if ((*o = strdup(text)) != NULL)
				return NULL;
			snprintf(why, n, "out of memory");
		}
	}
	return why;
}

static int
set_node(struct doc *d, struct scope *s, const struct policy_key *k, yaml_node_t *v, const char *path)
{
	const char *text = yw_scalar(v);
	char why[160];

	if (text == NULL)
		return yw_fail(&d->w, v, path, "expected %s %s%s%s", strcmp(k->type, "action") == 0 ? "an" : "a",
		    k->type, *k->range ? ": " : "", k->range);
	if (strlen(text) != v->data.scalar.length)
		return yw_fail(&d->w, v, path, "contains a NUL byte");
	if (set_text(s, k, text, why, sizeof(why)) != NULL)
		return yw_fail(&d->w, v, path, "%s", why);
	return 0;
}

/* Sets the table's defaults of the keys directly under level into s. */
static int
set_defaults(struct doc *d, struct scope *s, const char *level)
{
	size_t n = strlen(level);
	char why[160];

	for (const struct policy_key *k = policy_keys; k->path; k++) {
		const char *leaf = n ? k->path + n + 1 : k->path;
		if (k->def == NULL || (n && (strncmp(k->path, level, n) != 0 || k->path[n] != '.')) ||
		    strchr(leaf, '.') != NULL)
			continue;
		if (set_text(s, k, k->def, why, sizeof(why)) != NULL)
			return err_set(d->w.e, "%s: the default of %s: %s", d->w.file, k->path, why);
	}
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
	int i = d->index[atoi(code + 1)];

	return i ? &d->cat[i - 1] : NULL;
}

static struct cat_in *
add_cat(struct doc *d, const char *code)
{
	struct cat_in *c = &d->cat[d->n_cat++];

	memcpy(c->code, code, strlen(code) + 1);	/* valid_code: at most 4 bytes */
	d->index[atoi(code + 1)] = (short)d->n_cat;
	if (set_defaults(d, &c->main, "categories.CODE") == -1 ||
	    set_defaults(d, &c->role[0], "request.categories.CODE") == -1 ||
	    set_defaults(d, &c->role[1], "response.categories.CODE") == -1)
		return NULL;
	return c;
}

/* the scope a level of the table sets; NULL for a level of codes ("categories") */
static struct scope *
scope_of(struct doc *d, const char *level, struct cat_in *c)
{
	static const char *const fixed[] = { "", "default", "request", "response", "structure_spoof" };
	struct scope *const at[] = { &d->root, &d->def, &d->role[0], &d->role[1], &d->spoof };

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(level, fixed[i]) == 0)
			return at[i];
	if (c == NULL)
		return NULL;
	if (strcmp(level, "categories.CODE") == 0)
		return &c->main;
	return &c->role[strncmp(level, "response.", 9) == 0];
}

static int walk(struct doc *d, yaml_node_t *m, const char *level, const char *shown, struct cat_in *c);

/* a mapping of category codes: level is "categories" (which defines them) or a role's */
static int
walk_codes(struct doc *d, yaml_node_t *m, const char *level, const char *shown)
{
	int define = strcmp(level, "categories") == 0;
	char tl[64];

	yw_join(tl, sizeof(tl), level, "CODE");
	YW_PAIRS(&d->w, m, shown, kn, k, v, {
		char path[256];
		yw_join(path, sizeof(path), shown, k);
		if (!valid_code(k))
			return yw_fail(&d->w, kn, path, "'%s' is not a category code (S1 to S999)", k);
		struct cat_in *c = find_cat(d, k);
		if (c == NULL && !define)
			return yw_fail(&d->w, kn, path, "unknown category: define %s under categories first", k);
		if (c == NULL && d->n_cat == MAX_CATEGORIES)
			return yw_fail(&d->w, kn, path, "more than %d categories", MAX_CATEGORIES);
		if (c == NULL && (c = add_cat(d, k)) == NULL)
			return -1;
		if (walk(d, v, tl, path, c) == -1)
			return -1;
		if (define && c->main.name == NULL)
			return yw_fail(&d->w, v, path, "a custom category needs a name");
	});
	return 0;
}

/* One mapping of the file: level is its path in the table ("request"), shown its path in
 * messages, c the category it belongs to (or NULL). */
static int
walk(struct doc *d, yaml_node_t *m, const char *level, const char *shown, struct cat_in *c)
{
	YW_PAIRS(&d->w, m, shown, kn, k, v, {
		char tpath[96];
		char path[256];
		char keys[256];
		yw_join(tpath, sizeof(tpath), level, k);
		yw_join(path, sizeof(path), shown, k);
		if (strchr(k, '.') != NULL) {	/* "categories.CODE" as one key is no table path */
			keytab_level_keys(KEYTAB(policy_keys), level, keys, sizeof(keys));
			return yw_fail(&d->w, kn, path, "unknown key '%s' (%s)", k, keys);
		}
		const struct policy_key *pk = key_find(tpath);
		char code_level[112];
		yw_join(code_level, sizeof(code_level), tpath, "CODE");
		if (pk != NULL) {
			if (set_node(d, scope_of(d, level, c), pk, v, path) == -1)
				return -1;
		} else if (is_level(code_level)) {
			if (strcmp(tpath, "categories") != 0)	/* after the categories are defined */
				d->role_cats[strncmp(tpath, "response.", 9) == 0] = v;
			else if (walk_codes(d, v, tpath, path) == -1)
				return -1;
		} else if (is_level(tpath)) {
			if (walk(d, v, tpath, path, c) == -1)
				return -1;
		} else {
			keytab_level_keys(KEYTAB(policy_keys), level, keys, sizeof(keys));
			return yw_fail(&d->w, kn, path, "unknown key '%s' (%s)", k, keys);
		}
	});
	return 0;
}

static struct policy *
resolve(struct doc *d)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->cat = calloc(d->n_cat, sizeof(*p->cat))) == NULL ||
	    (p->name = strdup(d->root.name)) == NULL) {
		if (p != NULL)
			free(p->cat);
		free(p);
		err_set(d->w.e, "%s: out of memory", d->w.file);
		return NULL;
	}
	p->on_error = d->root.on_error.v;
	for (int r = 0; r < 2; r++)
		p->on_error_role[r] = d->role[r].on_error.set ? d->role[r].on_error.v : p->on_error;
	p->refusal = d->root.refusal;
	d->root.refusal = NULL;
	p->spoof_action = d->spoof.action.v;
	p->n_cat = d->n_cat;
	for (size_t i = 0; i < d->n_cat; i++) {
		struct cat_in *c = &d->cat[i];
		struct policy_category *o = &p->cat[i];
		memcpy(o->code, c->code, sizeof(o->code));
		o->name = c->main.name;
		o->description = c->main.description;
		c->main.name = c->main.description = NULL;
		o->custom = i >= 13;
		/* the role's category entry, the category entry, the role, the default */
		for (int r = 0; r < 2; r++) {
			const struct scope *rc = &c->role[r], *mc = &c->main, *rd = &d->role[r];
			o->exclude[r] = rc->exclude.set ? rc->exclude.v : mc->exclude.v;
			o->threshold[r] = rc->threshold.set ? rc->threshold.v : mc->threshold.set ?
			    mc->threshold.v : rd->threshold.set ? rd->threshold.v : d->def.threshold.v;
			o->action[r] = rc->action.set ? rc->action.v : mc->action.set ? mc->action.v :
			    rd->action.set ? rd->action.v : d->def.action.v;
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

static void
scope_free(struct scope *s)
{
	free(s->name);
	free(s->description);
	free(s->refusal);
}

static int
parse_doc(struct doc *d, const char *text, size_t len)
{
	int failed;

	if (set_defaults(d, &d->root, "") == -1 || set_defaults(d, &d->def, "default") == -1 ||
	    set_defaults(d, &d->role[0], "request") == -1 || set_defaults(d, &d->role[1], "response") == -1 ||
	    set_defaults(d, &d->spoof, "structure_spoof") == -1)
		return -1;
	for (int i = 0; i < 13; i++) {
		char code[8];
		snprintf(code, sizeof(code), "S%d", (i + 1) % 1000);
		struct cat_in *c = add_cat(d, code);
		if (c == NULL || (c->main.name = strdup(policy_default_names[i])) == NULL)
			return err_set(d->w.e, "%s: out of memory", d->w.file);
	}
	yaml_node_t *root = yw_load(&d->w, text, len, &failed);
	if (failed)
		return -1;
	if (root == NULL)	/* an empty file is the default policy */
		return 0;
	if (walk(d, root, "", "", NULL) == -1)
		return -1;
	for (int r = 0; r < 2; r++)
		if (d->role_cats[r] != NULL &&
		    walk_codes(d, d->role_cats[r], r ? "response.categories" : "request.categories",
		    r ? "response.categories" : "request.categories") == -1)
			return -1;
	return 0;
}

struct policy *
policy_parse(const char *text, size_t len, const char *file, struct err *e)
{
	struct doc *d = calloc(1, sizeof(*d));
	struct policy *p = NULL;

	if (d == NULL) {
		err_set(e, "%s: out of memory", file);
		return NULL;
	}
	d->w.file = file;
	d->w.e = e;
	if (parse_doc(d, text, len) == 0)
		p = resolve(d);
	yw_free(&d->w);
	for (size_t i = 0; i < d->n_cat; i++) {
		scope_free(&d->cat[i].main);
		scope_free(&d->cat[i].role[0]);
		scope_free(&d->cat[i].role[1]);
	}
	scope_free(&d->root);
	scope_free(&d->def);
	scope_free(&d->role[0]);
	scope_free(&d->role[1]);
	scope_free(&d->spoof);
	free(d);
	return p;
}

struct policy *
policy_default(void)
{
	struct err e;

	return policy_parse("", 0, "built-in policy", &e);
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
