/* config.c - reads guardd.yaml with libyaml: every key checked against the table below,
 * every value against its type and range, errors with file:line:column. */
#include "daemon/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mapfile.h"
#include "policy/yamlwalk.h"

struct ctx {
	struct ywalk w;
	char *dir;
	struct config *c;
};

static int
get_str(struct ctx *x, yaml_node_t *n, const char *key, char **out)
{
	const char *s = yw_scalar(n);

	if (s == NULL || *s == '\0' || strlen(s) != n->data.scalar.length)
		return yw_fail(&x->w, n, key, "expected a non-empty string");
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
			return yw_fail(&x->w, n, key, "out of memory");
		free(*out);
		*out = abs;
	}
	return 0;
}

static int
get_long(struct ctx *x, yaml_node_t *n, const char *key, long min, long max, int base, long *out)
{
	const char *s = yw_scalar(n);
	char *end;

	if (s == NULL)
		return yw_fail(&x->w, n, key, "expected a number");
	errno = 0;
	long v = strtol(s, &end, base);
	if (*s == '\0' || *end != '\0' || errno != 0)
		return yw_fail(&x->w, n, key, "'%s' is not a number", s);
	if (v < min || v > max)
		return yw_fail(&x->w, n, key, "%s is outside [%ld, %ld]", s, min, max);
	*out = v;
	return 0;
}


static int
get_ids(struct ctx *x, yaml_node_t *n, const char *key, unsigned *out, int *count)
{
	if (n == NULL || n->type != YAML_SEQUENCE_NODE)
		return yw_fail(&x->w, n, key, "expected a list of numeric ids");
	*count = 0;
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		long v;
		if (*count == CONFIG_MAX_IDS)
			return yw_fail(&x->w, n, key, "more than %d ids", CONFIG_MAX_IDS);
		if (get_long(x, yw_node(&x->w, *it), key, 0, INT_MAX, 10, &v) == -1)
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

	YW_PAIRS(&x->w, root, "guardd.yaml", k, n, {
		if (strcmp(k, "listen") == 0) {
			if (get_path(x, n, k, &c->listen) == -1)
				return -1;
			if (strlen(c->listen) >= 108)
				return yw_fail(&x->w, n, k, "socket path longer than 107 bytes");
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
			YW_PAIRS(&x->w, n, "policies", pk, pv, {
				char kp[96];
				if (snprintf(kp, sizeof(kp), "policies.%.60s", pk) < 0 || strcmp(pk, "default") == 0)
					return yw_fail(&x->w, pv, "policies", "'default' is the name of 'policy'");
				if (c->n_policies == CONFIG_MAX_POLICIES)
					return yw_fail(&x->w, pv, kp, "more than %d policies", CONFIG_MAX_POLICIES);
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
			YW_PAIRS(&x->w, n, "log", lk, lv, {
				if (strcmp(lk, "path") == 0) {
					if (get_path(x, lv, "log.path", &c->log_path) == -1)
						return -1;
				} else if (strcmp(lk, "content") == 0) {
					const char *s = yw_scalar(lv);
					if (s && strcmp(s, "none") == 0) c->log_content = LOG_CONTENT_NONE;
					else if (s && strcmp(s, "sha256") == 0) c->log_content = LOG_CONTENT_SHA256;
					else if (s && strcmp(s, "full") == 0) c->log_content = LOG_CONTENT_FULL;
					else
						return yw_fail(&x->w, lv, "log.content", "expected none, sha256 or full");
				} else
					return yw_fail(&x->w, lv, "log", "unknown key '%s' (path, content)", lk);
			});
		} else if (strcmp(k, "limits") == 0) {
			YW_PAIRS(&x->w, n, "limits", lk, lv, {
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
					return yw_fail(&x->w, lv, kp, "unknown key (max_request_bytes, max_messages, "
					    "max_queue, deadline_ms, max_connections, drain_ms)");
			});
		} else if (strcmp(k, "allow_uids") == 0) {
			if (get_ids(x, n, k, c->allow_uid, &c->n_allow_uid) == -1)
				return -1;
		} else if (strcmp(k, "allow_gids") == 0) {
			if (get_ids(x, n, k, c->allow_gid, &c->n_allow_gid) == -1)
				return -1;
		} else
			return yw_fail(&x->w, n, k, "unknown key (listen, socket_mode, socket_group, user, model, "
			    "policy, policies, threads, batch, context, log, limits, allow_uids, allow_gids)");
	});
	if (c->listen == NULL)
		return err_set(x->w.e, "%s: 'listen' (the socket path) is required", x->w.file);
	if (c->model == NULL)
		return err_set(x->w.e, "%s: 'model' is required", x->w.file);
	return 0;
}

struct config *
config_load(const char *path, struct err *e)
{
	struct config *c = calloc(1, sizeof(*c));
	struct ctx x = { .w = { .file = path, .e = e }, .c = c };
	size_t len;
	char *text;
	int ok = 0, failed;

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
	c->idle_timeout_ms = 60000;
	c->read_timeout_ms = 10000;
	c->write_timeout_ms = 30000;
	c->max_inflight = 32;
	c->output_high_water = 1 << 20;
	c->restart_min_ms = 100;
	c->restart_max_ms = 10000;
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
	yaml_node_t *root = yw_load(&x.w, text, len, &failed);
	if (!failed && root == NULL)
		err_set(e, "%s: empty configuration ('listen' and 'model' are required)", path);
	else if (!failed)
		ok = parse(&x, root) == 0;
	yw_free(&x.w);
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
