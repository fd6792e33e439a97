/* config.c - reads guardd.yaml with libyaml: every key checked against the table below,
 * every value against its type and range, errors with file:line:column. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/mapfile.h"

struct ctx {
	const char *file;
	char *dir;
	yaml_document_t d;
	struct err *e;
	struct config *c;
};

static int
fail(struct ctx *x, yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(struct ctx *x, yaml_node_t *n, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(x->e, "%s:%zu:%zu: %s: %s", x->file, n ? n->start_mark.line + 1 : 0,
	    n ? n->start_mark.column + 1 : 0, key, msg);
}

static const char *
scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int
get_str(struct ctx *x, yaml_node_t *n, const char *key, char **out)
{
	const char *s = scalar(n);

	if (s == NULL || *s == '\0' || strlen(s) != n->data.scalar.length)
		return fail(x, n, key, "expected a non-empty string");
	free(*out);
	*out = strdup(s);
	return 0;
}

/* a path: relative ones are taken from the configuration file's directory */
static int
get_path(struct ctx *x, yaml_node_t *n, const char *key, char **out)
{
	if (get_str(x, n, key, out) == -1)
		return -1;
	if ((*out)[0] != '/') {
		char *abs;
		if (asprintf(&abs, "%s/%s", x->dir, *out) < 0)
			return fail(x, n, key, "out of memory");
		free(*out);
		*out = abs;
	}
	return 0;
}

static int
get_long(struct ctx *x, yaml_node_t *n, const char *key, long min, long max, int base, long *out)
{
	const char *s = scalar(n);
	char *end;

	if (s == NULL)
		return fail(x, n, key, "expected a number");
	errno = 0;
	long v = strtol(s, &end, base);
	if (*s == '\0' || *end != '\0' || errno != 0)
		return fail(x, n, key, "'%s' is not a number", s);
	if (v < min || v > max)
		return fail(x, n, key, "%s is outside [%ld, %ld]", s, min, max);
	*out = v;
	return 0;
}

#define FOR_PAIRS(x, map, what, k, v, body) do { \
	if ((map) == NULL || (map)->type != YAML_MAPPING_NODE) \
		return fail(x, map, what, "expected a mapping"); \
	for (yaml_node_pair_t *_p = (map)->data.mapping.pairs.start; \
	    _p < (map)->data.mapping.pairs.top; _p++) { \
		yaml_node_t *_k = yaml_document_get_node(&(x)->d, _p->key); \
		yaml_node_t *v = yaml_document_get_node(&(x)->d, _p->value); \
		const char *k = scalar(_k); \
		if (k == NULL) \
			return fail(x, _k, what, "keys must be plain strings"); \
		for (yaml_node_pair_t *_q = (map)->data.mapping.pairs.start; _q < _p; _q++) \
			if (scalar(yaml_document_get_node(&(x)->d, _q->key)) && \
			    strcmp(scalar(yaml_document_get_node(&(x)->d, _q->key)), k) == 0) \
				return fail(x, _k, what, "duplicate key '%s'", k); \
		body \
	} \
} while (0)

static int
get_ids(struct ctx *x, yaml_node_t *n, const char *key, unsigned *out, int *count)
{
	if (n == NULL || n->type != YAML_SEQUENCE_NODE)
		return fail(x, n, key, "expected a list of numeric ids");
	*count = 0;
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		long v;
		if (*count == CONFIG_MAX_IDS)
			return fail(x, n, key, "more than %d ids", CONFIG_MAX_IDS);
		if (get_long(x, yaml_document_get_node(&x->d, *it), key, 0, INT_MAX, 10, &v) == -1)
			return -1;
		out[(*count)++] = (unsigned)v;
	}
	return 0;
}

static int
parse(struct ctx *x, yaml_node_t *root)
{
	struct config *c = x->c;
	long v;

	FOR_PAIRS(x, root, "guardd.yaml", k, n, {
		if (strcmp(k, "listen") == 0) {
			if (get_path(x, n, k, &c->listen) == -1)
				return -1;
			if (strlen(c->listen) >= 108)
				return fail(x, n, k, "socket path longer than 107 bytes");
		} else if (strcmp(k, "socket_mode") == 0) {
			if (get_long(x, n, k, 0, 0777, 8, &v) == -1)
				return -1;
			c->socket_mode = (unsigned)v;
		} else if (strcmp(k, "socket_group") == 0) {
			if (get_str(x, n, k, &c->socket_group) == -1)
				return -1;
		} else if (strcmp(k, "user") == 0) {
			if (get_str(x, n, k, &c->user) == -1)
				return -1;
		} else if (strcmp(k, "model") == 0) {
			if (get_path(x, n, k, &c->model) == -1)
				return -1;
		} else if (strcmp(k, "policy") == 0) {
			if (get_path(x, n, k, &c->policy[0].path) == -1)
				return -1;
		} else if (strcmp(k, "policies") == 0) {
			FOR_PAIRS(x, n, "policies", pk, pv, {
				char kp[96];
				if (snprintf(kp, sizeof(kp), "policies.%.60s", pk) < 0 || strcmp(pk, "default") == 0)
					return fail(x, pv, "policies", "'default' is the name of 'policy'");
				if (c->n_policies == CONFIG_MAX_POLICIES)
					return fail(x, pv, kp, "more than %d policies", CONFIG_MAX_POLICIES);
				c->policy[c->n_policies].name = strdup(pk);
				if (get_path(x, pv, kp, &c->policy[c->n_policies].path) == -1)
					return -1;
				c->n_policies++;
			});
		} else if (strcmp(k, "threads") == 0) {
			if (get_long(x, n, k, 0, 1024, 10, &v) == -1)
				return -1;
			c->threads = (int)v;
		} else if (strcmp(k, "batch") == 0) {
			if (get_long(x, n, k, 1, 64, 10, &v) == -1)
				return -1;
			c->batch = (int)v;
		} else if (strcmp(k, "context") == 0) {
			if (get_long(x, n, k, 256, 1 << 20, 10, &v) == -1)
				return -1;
			c->context = (int)v;
		} else if (strcmp(k, "log") == 0) {
			FOR_PAIRS(x, n, "log", lk, lv, {
				if (strcmp(lk, "path") == 0) {
					if (get_path(x, lv, "log.path", &c->log_path) == -1)
						return -1;
				} else if (strcmp(lk, "content") == 0) {
					const char *s = scalar(lv);
					if (s && strcmp(s, "none") == 0) c->log_content = LOG_CONTENT_NONE;
					else if (s && strcmp(s, "sha256") == 0) c->log_content = LOG_CONTENT_SHA256;
					else if (s && strcmp(s, "full") == 0) c->log_content = LOG_CONTENT_FULL;
					else
						return fail(x, lv, "log.content", "expected none, sha256 or full");
				} else
					return fail(x, lv, "log", "unknown key '%s' (path, content)", lk);
			});
		} else if (strcmp(k, "limits") == 0) {
			FOR_PAIRS(x, n, "limits", lk, lv, {
				char kp[64];
				snprintf(kp, sizeof(kp), "limits.%.40s", lk);
				if (strcmp(lk, "max_request_bytes") == 0) {
					if (get_long(x, lv, kp, 64, 1L << 30, 10, &v) == -1) return -1;
					c->max_request_bytes = (size_t)v;
				} else if (strcmp(lk, "max_messages") == 0) {
					if (get_long(x, lv, kp, 1, 4096, 10, &v) == -1) return -1;
					c->max_messages = (int)v;
				} else if (strcmp(lk, "max_queue") == 0) {
					if (get_long(x, lv, kp, 1, 1 << 20, 10, &v) == -1) return -1;
					c->max_queue = (int)v;
				} else if (strcmp(lk, "deadline_ms") == 0) {
					if (get_long(x, lv, kp, 1, 3600000, 10, &v) == -1) return -1;
					c->deadline_ms = (int)v;
				} else if (strcmp(lk, "max_connections") == 0) {
					if (get_long(x, lv, kp, 1, 1 << 20, 10, &v) == -1) return -1;
					c->max_connections = (int)v;
				} else if (strcmp(lk, "drain_ms") == 0) {
					if (get_long(x, lv, kp, 0, 3600000, 10, &v) == -1) return -1;
					c->drain_ms = (int)v;
				} else
					return fail(x, lv, kp, "unknown key (max_request_bytes, max_messages, "
					    "max_queue, deadline_ms, max_connections, drain_ms)");
			});
		} else if (strcmp(k, "allow_uids") == 0) {
			if (get_ids(x, n, k, c->allow_uid, &c->n_allow_uid) == -1)
				return -1;
		} else if (strcmp(k, "allow_gids") == 0) {
			if (get_ids(x, n, k, c->allow_gid, &c->n_allow_gid) == -1)
				return -1;
		} else
			return fail(x, n, k, "unknown key (listen, socket_mode, socket_group, user, model, "
			    "policy, policies, threads, batch, context, log, limits, allow_uids, allow_gids)");
	});
	if (c->listen == NULL)
		return err_set(x->e, "%s: 'listen' (the socket path) is required", x->file);
	if (c->model == NULL)
		return err_set(x->e, "%s: 'model' is required", x->file);
	return 0;
}

struct config *
config_load(const char *path, struct err *e)
{
	struct config *c = calloc(1, sizeof(*c));
	struct ctx x = { .file = path, .e = e, .c = c };
	yaml_parser_t parser;
	size_t len;
	char *text;
	int ok = 0, have = 0;

	if (c == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	c->path = strdup(path);
	c->socket_mode = 0660;
	c->policy[0].name = strdup("default");
	c->n_policies = 1;
	c->batch = 4;
	c->context = 2048;
	c->max_request_bytes = 1 << 20;
	c->max_messages = 64;
	c->max_queue = 256;
	c->deadline_ms = 30000;
	c->max_connections = 256;
	c->drain_ms = 10000;
	x.dir = strdup(path);
	char *slash = strrchr(x.dir, '/');
	if (slash == NULL) {
		free(x.dir);
		x.dir = strdup(".");
	} else if (slash == x.dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((text = file_read_all(path, &len, 1 << 20, e)) == NULL)
		goto out;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &x.d))
		err_set(e, "%s:%zu:%zu: YAML: %s", path, parser.problem_mark.line + 1,
		    parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error");
	else {
		have = 1;
		yaml_node_t *root = yaml_document_get_root_node(&x.d);
		if (root == NULL)
			err_set(e, "%s: empty configuration ('listen' and 'model' are required)", path);
		else
			ok = parse(&x, root) == 0;
	}
	if (have)
		yaml_document_delete(&x.d);
	yaml_parser_delete(&parser);
	free(text);
out:
	free(x.dir);
	if (!ok) {
		config_free(c);
		return NULL;
	}
	return c;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->listen);
	free(c->socket_group);
	free(c->user);
	free(c->model);
	free(c->log_path);
	for (int i = 0; i < CONFIG_MAX_POLICIES; i++) {
		free(c->policy[i].name);
		free(c->policy[i].path);
	}
	free(c);
}

int
config_policy(const struct config *c, const char *name)
{
	for (int i = 0; i < c->n_policies; i++)
		if (strcmp(c->policy[i].name, name) == 0)
			return i;
	return -1;
}
