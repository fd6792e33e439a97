/* config.c - reads guardd.yaml with libyaml, driven by config_keys: each key is looked up
 * in the table, its value checked against the key's type and range, unset keys take the
 * table's default, and errors name file:line:column and the key. */
#include "daemon/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/listen.h"
#include "daemon/upstream.h"
#include "util/keytab.h"
#include "util/mapfile.h"
#include "policy/yamlwalk.h"

#define F(field) offsetof(struct config, field)
#define MS_HOUR 3600000L

static const char *const log_contents[] = { "none", "sha256", "full", NULL };	/* enum log_content */
static const char *const chat_formats[] = { "auto", "llama3", "llama2", NULL };	/* enum chat_format */
static const char *const http_auths[] = { "keys", "none", NULL };	/* enum http_auth */
static const char *const booleans[] = { "false", "true", NULL };

const struct config_key config_keys[] = {
	{ "listen", CONFIG_PATH, 1, 107, 0, NULL, CONFIG_REQUIRED, F(listen), 0,
	  "the Unix socket clients connect to" },
	{ "socket_mode", CONFIG_MODE, 0, 0777, 0660, NULL, CONFIG_HAS_DEFAULT, F(socket_mode), 0,
	  "the socket's permissions" },
	{ "socket_group", CONFIG_STRING, 1, 255, 0, NULL, 0, F(socket_group), 0, "the socket's group" },
	{ "user", CONFIG_STRING, 1, 255, 0, NULL, 0, F(user), 0,
	  "started as root, the user guardd's inference process runs as" },
	{ "model", CONFIG_PATH, 1, PATH_MAX - 1, 0, NULL, CONFIG_REQUIRED, F(model), 0,
	  "Llama Guard 3: a GGUF file or a Hugging Face model directory" },
	{ "policy", CONFIG_PATH, 1, PATH_MAX - 1, 0, NULL, 0, F(policy[0].path), 0,
	  "the default policy; without it, the built-in one" },
	{ "policies", CONFIG_POLICIES, 1, PATH_MAX - 1, 0, NULL, 0, 0, 0,
	  "named policies a request can choose" },
	{ "threads", CONFIG_INT, 0, 1024, 0, NULL, CONFIG_HAS_DEFAULT, F(threads), 0,
	  "threads for the model; 0: every CPU" },
	{ "batch", CONFIG_INT, 1, 64, 4, NULL, CONFIG_HAS_DEFAULT, F(batch), 0,
	  "requests for one policy classified in one forward pass" },
	{ "context", CONFIG_INT, 256, 1 << 20, 2048, NULL, CONFIG_HAS_DEFAULT, F(context), 0,
	  "tokens per conversation, policy prefix included" },
	{ "log.path", CONFIG_PATH, 1, PATH_MAX - 1, 0, NULL, 0, F(log_path), 0,
	  "the verdict log (JSON lines); none without it" },
	{ "log.content", CONFIG_ENUM, 0, 0, LOG_CONTENT_NONE, log_contents, CONFIG_HAS_DEFAULT,
	  F(log_content), 0, "how much of the messages the log keeps" },
	{ "limits.max_request_bytes", CONFIG_SIZE, 64, 1L << 30, 1L << 20, NULL, CONFIG_HAS_DEFAULT,
	  F(max_request_bytes), 0, "the largest request; a larger one closes its connection" },
	{ "limits.max_messages", CONFIG_INT, 1, 4096, 64, NULL, CONFIG_HAS_DEFAULT, F(max_messages), 0,
	  "messages per conversation" },
	{ "limits.max_image_bytes", CONFIG_SIZE, 1, 1L << 30, 20L << 20, NULL, CONFIG_HAS_DEFAULT,
	  F(max_image_bytes), 0, "one image part, decoded" },
	{ "limits.max_images", CONFIG_INT, 1, 64, 4, NULL, CONFIG_HAS_DEFAULT, F(max_images), 0,
	  "image parts per request" },
	{ "limits.max_queue", CONFIG_INT, 1, 1 << 20, 256, NULL, CONFIG_HAS_DEFAULT, F(max_queue), 0,
	  "requests waiting; beyond it, busy" },
	{ "limits.deadline_ms", CONFIG_INT, 1, MS_HOUR, 30000, NULL, CONFIG_HAS_DEFAULT, F(deadline_ms), 0,
	  "per request; a request may ask for less" },
	{ "limits.max_connections", CONFIG_INT, 1, 1 << 20, 256, NULL, CONFIG_HAS_DEFAULT,
	  F(max_connections), 0, "connections at once" },
	{ "limits.drain_ms", CONFIG_INT, 0, MS_HOUR, 10000, NULL, CONFIG_HAS_DEFAULT, F(drain_ms), 0,
	  "how long SIGTERM waits for queued work" },
	{ "limits.idle_timeout_ms", CONFIG_INT, 10, 24 * MS_HOUR, 60000, NULL, CONFIG_HAS_DEFAULT,
	  F(idle_timeout_ms), 0, "a connection with nothing in flight is closed after this" },
	{ "limits.read_timeout_ms", CONFIG_INT, 10, MS_HOUR, 10000, NULL, CONFIG_HAS_DEFAULT,
	  F(read_timeout_ms), 0, "a request begun must be complete within this" },
	{ "limits.write_timeout_ms", CONFIG_INT, 10, MS_HOUR, 30000, NULL, CONFIG_HAS_DEFAULT,
	  F(write_timeout_ms), 0, "a peer that takes no output for this long is closed" },
	{ "limits.max_inflight", CONFIG_INT, 1, 65536, 32, NULL, CONFIG_HAS_DEFAULT, F(max_inflight), 0,
	  "requests of one connection in flight before reading pauses" },
	{ "limits.output_high_water", CONFIG_SIZE, 1, 1L << 30, 1L << 20, NULL, CONFIG_HAS_DEFAULT,
	  F(output_high_water), 0, "answer bytes waiting to be sent before reading pauses" },
	{ "allow_uids", CONFIG_IDS, 0, INT_MAX, 0, NULL, 0, F(allow_uid), F(n_allow_uid),
	  "peers (uid) allowed to connect" },
	{ "allow_gids", CONFIG_IDS, 0, INT_MAX, 0, NULL, 0, F(allow_gid), F(n_allow_gid),
	  "peers (gid) allowed to connect" },
	{ "control_uids", CONFIG_IDS, 0, INT_MAX, 0, NULL, 0, F(control_uid), F(n_control_uid),
	  "peers (uid) allowed control requests such as reload" },
	{ "control_gids", CONFIG_IDS, 0, INT_MAX, 0, NULL, 0, F(control_gid), F(n_control_gid),
	  "peers (gid) allowed control requests such as reload" },
	{ "restart.min_ms", CONFIG_INT, 1, 60000, 100, NULL, CONFIG_HAS_DEFAULT, F(restart_min_ms), 0,
	  "the first pause before restarting a crashed inference process" },
	{ "restart.max_ms", CONFIG_INT, 1, MS_HOUR, 10000, NULL, CONFIG_HAS_DEFAULT, F(restart_max_ms), 0,
	  "the longest pause, reached by doubling" },
	{ "generator.model", CONFIG_PATH, 1, PATH_MAX - 1, 0, NULL, 0, F(gen_model), 0,
	  "the chat model guardd hosts: a GGUF file or a Hugging Face directory; none without it" },
	{ "generator.format", CONFIG_ENUM, 0, 0, 0, chat_formats, CONFIG_HAS_DEFAULT, F(gen_format), 0,
	  "its chat format; auto: from the vocabulary (Llama 3 or Llama 2)" },
	{ "generator.date", CONFIG_STRING, 1, 15, 0, NULL, 0, F(gen_date), 0,
	  "the Llama 3 prompt's Today Date, as 30 Nov 2026; default: today in UTC" },
	{ "generator.context", CONFIG_INT, 64, 1 << 20, 4096, NULL, CONFIG_HAS_DEFAULT, F(gen_context), 0,
	  "tokens per chat: prompt and answer" },
	{ "generator.max_chats", CONFIG_INT, 1, 64, 4, NULL, CONFIG_HAS_DEFAULT, F(gen_max_chats), 0,
	  "chats generated at once, decoded together; more wait in the queue" },
	{ "generator.max_tokens", CONFIG_INT, 1, 1 << 20, 512, NULL, CONFIG_HAS_DEFAULT,
	  F(gen_max_tokens), 0, "the longest answer, unless a request asks for less" },
	{ "generator.temperature", CONFIG_MILLI, 0, 10000, 600, NULL, CONFIG_HAS_DEFAULT,
	  F(gen_temperature), 0, "sampling temperature; 0: greedy" },
	{ "generator.top_k", CONFIG_INT, 0, 1 << 20, 0, NULL, CONFIG_HAS_DEFAULT, F(gen_top_k), 0,
	  "keep the k likeliest tokens; 0: no limit" },
	{ "generator.top_p", CONFIG_MILLI, 0, 1000, 900, NULL, CONFIG_HAS_DEFAULT, F(gen_top_p), 0,
	  "keep the likeliest tokens up to this probability mass" },
	{ "generator.min_p", CONFIG_MILLI, 0, 1000, 0, NULL, CONFIG_HAS_DEFAULT, F(gen_min_p), 0,
	  "drop tokens less likely than this share of the likeliest; 0: none" },
	{ "generator.repeat_penalty", CONFIG_MILLI, 0, 10000, 1000, NULL, CONFIG_HAS_DEFAULT,
	  F(gen_repeat_penalty), 0, "divides the logits of recent tokens; 1: none" },
	{ "generator.seed", CONFIG_LONG, -1, INT64_MAX, -1, NULL, CONFIG_HAS_DEFAULT, F(gen_seed), 0,
	  "the sampling seed of a chat that names none; -1: random" },
	{ "generator.deadline_ms", CONFIG_INT, 1, 24 * MS_HOUR, 600000, NULL, CONFIG_HAS_DEFAULT,
	  F(gen_deadline_ms), 0, "per chat, from arrival to its last token; a request may ask for less" },
	/* the HTTP front (http.*, guardd-http(7)) */
	{ "http.listen", CONFIG_LISTEN, 1, 107, 0, NULL, 0, F(http_listen), F(n_http_listen),
	  "Unix socket paths and TCP host:port addresses to serve HTTP on; none without it" },
	{ "http.auth", CONFIG_ENUM, 0, 0, HTTP_AUTH_KEYS, http_auths, CONFIG_HAS_DEFAULT,
	  F(http_auth), 0, "keys: TCP clients need a bearer key from keys_file; none: no key" },
	{ "http.keys_file", CONFIG_PATH, 1, PATH_MAX - 1, 0, NULL, 0, F(http_keys_file), 0,
	  "the bearer keys TCP clients may use, one a line" },
	{ "http.max_body_bytes", CONFIG_SIZE, 64, 1L << 30, 1L << 20, NULL, CONFIG_HAS_DEFAULT,
	  F(http_max_body_bytes), 0, "the largest request body; a larger one gets 413" },
	{ "http.max_header_bytes", CONFIG_SIZE, 256, 1L << 20, 16384, NULL, CONFIG_HAS_DEFAULT,
	  F(http_max_header_bytes), 0, "the request line and headers together, at most" },
	{ "http.max_headers", CONFIG_INT, 1, 1024, 64, NULL, CONFIG_HAS_DEFAULT, F(http_max_headers), 0,
	  "headers per request; more get 431" },
	{ "http.timeout_ms", CONFIG_INT, 10, MS_HOUR, 30000, NULL, CONFIG_HAS_DEFAULT,
	  F(http_timeout_ms), 0, "an idle connection, a request being read, or an answer the client "
	  "does not take, for this long: the connection is closed" },
	{ "http.max_connections", CONFIG_INT, 1, 1 << 20, 256, NULL, CONFIG_HAS_DEFAULT,
	  F(http_max_connections), 0, "HTTP connections at once; a request on one more gets 503" },
	{ "stream.check_every", CONFIG_INT, 1, 4096, 16, NULL, CONFIG_HAS_DEFAULT, F(check_every), 0,
	  "generated tokens held back between two checks of the response" },
	{ "cache.conversations_mb", CONFIG_INT, 0, 1 << 20, 256, NULL, CONFIG_HAS_DEFAULT,
	  F(conv_cache_mb), 0, "MiB of recent conversations' keys and values kept for re-checks; "
	  "0: none" },
	{ "cache.images", CONFIG_INT, 0, 1024, 8, NULL, CONFIG_HAS_DEFAULT, F(img_cache_entries), 0,
	  "images a vision guard keeps with their policy prefixes' keys and values; 0: none" },
	{ "cache.images_mb", CONFIG_INT, 0, 1 << 20, 1024, NULL, CONFIG_HAS_DEFAULT,
	  F(img_cache_mb), 0, "MiB those images' entries may hold together; 0: none" },
	/* proxy mode (upstream.*, guardd-http(7)) */
	{ "upstream.url", CONFIG_STRING, 1, 2048, 0, NULL, 0, F(upstream_url), 0,
	  "the OpenAI-compatible server /v1/chat/completions is forwarded to (http:// or "
	  "https://, up to the /v1); no proxy without it" },
	{ "upstream.api_key_file", CONFIG_PATH, 1, PATH_MAX - 1, 0, NULL, 0,
	  F(upstream_api_key_file), 0, "a file whose first line is the upstream's bearer key" },
	{ "upstream.ca_file", CONFIG_PATH, 1, PATH_MAX - 1, 0, NULL, 0, F(upstream_ca_file), 0,
	  "PEM certificates to trust for an https upstream instead of the system's" },
	{ "upstream.model", CONFIG_STRING, 1, 255, 0, NULL, 0, F(upstream_model), 0,
	  "the model name sent upstream in place of the client's" },
	{ "upstream.timeout_ms", CONFIG_INT, 10, 24 * MS_HOUR, 120000, NULL, CONFIG_HAS_DEFAULT,
	  F(upstream_timeout_ms), 0, "the longest the upstream may stay silent (no header or "
	  "stream byte) before the client gets 504" },
	{ "upstream.connect_timeout_ms", CONFIG_INT, 10, MS_HOUR, 10000, NULL, CONFIG_HAS_DEFAULT,
	  F(upstream_connect_timeout_ms), 0, "connecting (and the TLS handshake) must end within "
	  "this" },
	{ "upstream.verify", CONFIG_ENUM, 0, 0, 1, booleans, CONFIG_HAS_DEFAULT, F(upstream_verify),
	  0, "check an https upstream's certificate and host name" },
	{ "upstream.max_response_bytes", CONFIG_SIZE, 1024, 1L << 30, 16L << 20, NULL,
	  CONFIG_HAS_DEFAULT, F(upstream_max_response_bytes), 0,
	  "the largest upstream answer; beyond it, 502" },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0, NULL },
};

#define N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]) - 1)

_Static_assert(sizeof(uid_t) == sizeof(unsigned) && sizeof(gid_t) == sizeof(unsigned),
    "id lists are stored as unsigned");
_Static_assert(sizeof(enum log_content) == sizeof(int), "log.content is stored as an int");

struct ctx {
	struct ywalk w;
	char *dir;			/* the real directory of the file */
	struct config *c;
	yaml_node_t *at[N_KEYS];	/* where each key was set, NULL if not */
};

#define FIELD(c, k, type) ((type *)(void *)((char *)(c) + (k)->off))

const char *
config_key_default(const struct config_key *k, char *buf, size_t n)
{
	if (!(k->flags & CONFIG_HAS_DEFAULT))
		return NULL;
	if (k->type == CONFIG_ENUM)
		snprintf(buf, n, "%s", k->choices[k->def]);
	else if (k->type == CONFIG_MODE)
		snprintf(buf, n, "%04lo", k->def);
	else if (k->type == CONFIG_MILLI)
		snprintf(buf, n, "%g", (double)k->def / 1000);
	else
		snprintf(buf, n, "%ld", k->def);
	return buf;
}

const char *
config_key_describe(const struct config_key *k, char *buf, size_t n)
{
	size_t used;

	switch (k->type) {
	case CONFIG_STRING:
		snprintf(buf, n, "a string of at most %ld bytes", k->max);
		break;
	case CONFIG_PATH:
		snprintf(buf, n, "a path of at most %ld bytes", k->max);
		break;
	case CONFIG_INT:
	case CONFIG_SIZE:
	case CONFIG_LONG:
		snprintf(buf, n, "an integer in [%ld, %ld]", k->min, k->max);
		break;
	case CONFIG_MILLI:
		snprintf(buf, n, "a number in [%g, %g]", (double)k->min / 1000, (double)k->max / 1000);
		break;
	case CONFIG_MODE:
		snprintf(buf, n, "an octal mode in [%#lo, %#lo]", k->min, k->max);
		break;
	case CONFIG_ENUM:
		used = (size_t)snprintf(buf, n, "one of");
		for (int i = 0; k->choices[i] && used < n; i++)
			used += (size_t)snprintf(buf + used, n - used, "%s %s", i ? "," : "", k->choices[i]);
		break;
	case CONFIG_IDS:
		snprintf(buf, n, "a list of at most %d ids in [%ld, %ld]", CONFIG_MAX_IDS, k->min, k->max);
		break;
	case CONFIG_POLICIES:
		snprintf(buf, n, "a mapping of at most %d names to paths", CONFIG_MAX_POLICIES - 1);
		break;
	case CONFIG_LISTEN:
		snprintf(buf, n, "a list of at most %d socket paths and host:port addresses",
		    CONFIG_MAX_HTTP);
		break;
	}
	return buf;
}

static const struct config_key *
key_find(const char *path)
{
	return keytab_find(KEYTAB(config_keys), path);
}

static int
get_string(struct ctx *x, yaml_node_t *n, const char *path, const struct config_key *k, char **out)
{
	const char *s = yw_scalar(n);

	if (s == NULL || *s == '\0')
		return yw_fail(&x->w, n, path, "expected a non-empty string");
	if (strlen(s) != n->data.scalar.length)
		return yw_fail(&x->w, n, path, "contains a NUL byte");
	free(*out);
	if ((k->type == CONFIG_PATH || k->type == CONFIG_POLICIES ||
	    (k->type == CONFIG_LISTEN && s[0] == '.')) && s[0] != '/') {
		if (k->type == CONFIG_LISTEN && strncmp(s, "./", 2) == 0)
			s += 2;
		/* the real directory: daemon() and chdir("/") cannot change what it names */
		const char *sep = x->dir[strlen(x->dir) - 1] == '/' ? "" : "/";
		if (asprintf(out, "%s%s%s", x->dir, sep, s) < 0)
			*out = NULL;
	} else
		*out = strdup(s);
	if (*out == NULL)
		return yw_fail(&x->w, n, path, "out of memory");
	if ((long)strlen(*out) > k->max)
		return yw_fail(&x->w, n, path, "'%s' is longer than %ld bytes", *out, k->max);
	return 0;
}

static int
get_long(struct ctx *x, yaml_node_t *n, const char *path, const struct config_key *k, long *out)
{
	const char *s = yw_scalar(n);
	int base = k->type == CONFIG_MODE ? 8 : 10;
	char *end;

	if (s == NULL)
		return yw_fail(&x->w, n, path, "expected %s", base == 8 ? "an octal mode" : "a number");
	errno = 0;
	long v = strtol(s, &end, base);
	if (*s == '\0' || *end != '\0' || errno != 0)
		return yw_fail(&x->w, n, path, "'%s' is not %s", s, base == 8 ? "an octal mode" : "a number");
	if (v < k->min || v > k->max)
		return base == 8 ? yw_fail(&x->w, n, path, "%s is outside [%#lo, %#lo]", s, k->min, k->max) :
		    yw_fail(&x->w, n, path, "%s is outside [%ld, %ld]", s, k->min, k->max);
	*out = v;
	return 0;
}

static int
get_ids(struct ctx *x, yaml_node_t *n, const char *path, const struct config_key *k)
{
	unsigned *ids = FIELD(x->c, k, unsigned);
	int *count = (int *)(void *)((char *)x->c + k->n_off);
	long v;

	if (n == NULL || n->type != YAML_SEQUENCE_NODE)
		return yw_fail(&x->w, n, path, "expected a list of numeric ids");
	*count = 0;
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		if (*count == CONFIG_MAX_IDS)
			return yw_fail(&x->w, n, path, "more than %d ids", CONFIG_MAX_IDS);
		if (get_long(x, yw_node(&x->w, *it), path, k, &v) == -1)
			return -1;
		ids[(*count)++] = (unsigned)v;
	}
	return 0;
}

/* http.listen: absolute (or ./relative) Unix socket paths and TCP host:port addresses */
static int
get_listen(struct ctx *x, yaml_node_t *n, const char *path, const struct config_key *k)
{
	char **list = FIELD(x->c, k, char *);
	int *count = (int *)(void *)((char *)x->c + k->n_off);

	if (n == NULL || n->type != YAML_SEQUENCE_NODE)
		return yw_fail(&x->w, n, path, "expected a list of socket paths and host:port addresses");
	for (int i = 0; i < *count; i++) {
		free(list[i]);
		list[i] = NULL;
	}
	*count = 0;
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *v = yw_node(&x->w, *it);
		const char *s = yw_scalar(v);
		struct err e;
		if (*count == CONFIG_MAX_HTTP)
			return yw_fail(&x->w, v, path, "more than %d listeners", CONFIG_MAX_HTTP);
		char *item = NULL;
		if (get_string(x, v, path, k, &item) == -1) {
			free(item);
			return -1;
		}
		list[(*count)++] = item;
		/* not a path: a TCP address, checked here so that a typo names its line */
		if (s[0] != '/' && s[0] != '.' &&
		    listen_tcp_parse(item, NULL, 0, NULL, 0, &e) == -1)
			return yw_fail(&x->w, v, path, "%s", e.msg);
		for (int j = 0; j < *count - 1; j++)
			if (strcmp(list[j], item) == 0)
				return yw_fail(&x->w, v, path, "'%s' is listed twice", item);
	}
	return 0;
}

static int
get_policies(struct ctx *x, yaml_node_t *n, const char *path, const struct config_key *k)
{
	struct config *c = x->c;

	YW_PAIRS(&x->w, n, path, kn, name, v, {
		char kp[128];
		yw_join(kp, sizeof(kp), path, name);
		if (strcmp(name, "default") == 0)
			return yw_fail(&x->w, kn, kp, "'default' is the name of 'policy'");
		if (*name == '\0')
			return yw_fail(&x->w, kn, path, "a policy needs a name");
		if (c->n_policies == CONFIG_MAX_POLICIES)
			return yw_fail(&x->w, kn, kp, "more than %d named policies", CONFIG_MAX_POLICIES - 1);
		if ((c->policy[c->n_policies].name = strdup(name)) == NULL)
			return yw_fail(&x->w, kn, kp, "out of memory");
		if (get_string(x, v, kp, k, &c->policy[c->n_policies++].path) == -1)
			return -1;
	});
	return 0;
}

static int
set_key(struct ctx *x, const struct config_key *k, yaml_node_t *n, const char *path)
{
	long v;

	x->at[k - config_keys] = n;
	switch (k->type) {
	case CONFIG_STRING:
	case CONFIG_PATH:
		return get_string(x, n, path, k, FIELD(x->c, k, char *));
	case CONFIG_INT:
		if (get_long(x, n, path, k, &v) == -1)
			return -1;
		*FIELD(x->c, k, int) = (int)v;
		return 0;
	case CONFIG_SIZE:
		if (get_long(x, n, path, k, &v) == -1)
			return -1;
		*FIELD(x->c, k, size_t) = (size_t)v;
		return 0;
	case CONFIG_LONG:
		if (get_long(x, n, path, k, &v) == -1)
			return -1;
		*FIELD(x->c, k, long) = v;
		return 0;
	case CONFIG_MILLI: {
		const char *str = yw_scalar(n);
		char *end;
		double d;
		if (str == NULL)
			return yw_fail(&x->w, n, path, "expected a number");
		errno = 0;
		d = strtod(str, &end);
		if (*str == '\0' || *end != '\0' || errno != 0 || !(d == d))
			return yw_fail(&x->w, n, path, "'%s' is not a number", str);
		if (d < (double)k->min / 1000 || d > (double)k->max / 1000)
			return yw_fail(&x->w, n, path, "%s is outside [%g, %g]", str,
			    (double)k->min / 1000, (double)k->max / 1000);
		*FIELD(x->c, k, double) = d;
		return 0;
	}
	case CONFIG_MODE:
		if (get_long(x, n, path, k, &v) == -1)
			return -1;
		*FIELD(x->c, k, unsigned) = (unsigned)v;
		return 0;
	case CONFIG_ENUM: {
		const char *s = yw_scalar(n);
		char why[128];
		for (int i = 0; s && k->choices[i]; i++)
			if (strcmp(s, k->choices[i]) == 0) {
				*FIELD(x->c, k, int) = i;
				return 0;
			}
		config_key_describe(k, why, sizeof(why));
		return s ? yw_fail(&x->w, n, path, "'%s' is not %s", s, why) :
		    yw_fail(&x->w, n, path, "expected %s", why);
	}
	case CONFIG_IDS:
		return get_ids(x, n, path, k);
	case CONFIG_POLICIES:
		return get_policies(x, n, path, k);
	case CONFIG_LISTEN:
		return get_listen(x, n, path, k);
	}
	return 0;
}

/* one mapping of the document: level is "" for the root, "limits", ... */
static int
walk(struct ctx *x, yaml_node_t *m, const char *level)
{
	YW_PAIRS(&x->w, m, level, kn, name, v, {
		char path[128];
		char keys[512];
		yw_join(path, sizeof(path), level, name);
		/* a key is one name: "limits.max_queue" at the root is not limits: {max_queue} */
		const struct config_key *k = strchr(name, '.') ? NULL : key_find(path);
		if (k != NULL) {
			if (set_key(x, k, v, path) == -1)
				return -1;
		} else if (!strchr(name, '.') && keytab_is_level(KEYTAB(config_keys), path)) {
			if (walk(x, v, path) == -1)
				return -1;
		} else {
			keytab_level_keys(KEYTAB(config_keys), level, keys, sizeof(keys));
			return yw_fail(&x->w, kn, path, "unknown key '%s' (%s)", name, keys);
		}
	});
	return 0;
}

/* what no single key can check */
static int
check(struct ctx *x)
{
	struct config *c = x->c;

	for (const struct config_key *k = config_keys; k->path; k++)
		if ((k->flags & CONFIG_REQUIRED) && x->at[k - config_keys] == NULL)
			return err_set(x->w.e, "%s: '%s' is required (%s)", x->w.file, k->path, k->help);
	if (c->gen_date != NULL) {
		struct tm tm;
		const char *end = strptime(c->gen_date, "%d %b %Y", &tm);
		if (end == NULL || *end != '\0')
			return yw_fail(&x->w, x->at[key_find("generator.date") - config_keys],
			    "generator.date", "'%s' is not a date like 30 Nov 2026 (%%d %%b %%Y)",
			    c->gen_date);
	}
	/* TCP listeners take bearer keys unless `http.auth: none` says so explicitly */
	for (int i = 0; i < c->n_http_listen; i++)
		if (c->http_listen[i][0] != '/' && c->http_auth == HTTP_AUTH_KEYS &&
		    c->http_keys_file == NULL)
			return yw_fail(&x->w, x->at[key_find("http.listen") - config_keys], "http.listen",
			    "the TCP listener '%s' needs http.keys_file (or http.auth: none)",
			    c->http_listen[i]);
	if (c->upstream_url != NULL) {
		struct err ue;
		if (upstream_url_check(c->upstream_url, &ue) == -1)
			return yw_fail(&x->w, x->at[key_find("upstream.url") - config_keys],
			    "upstream.url", "%s", ue.msg);
	}
	if (c->restart_max_ms < c->restart_min_ms) {
		yaml_node_t *max = x->at[key_find("restart.max_ms") - config_keys];
		yaml_node_t *min = x->at[key_find("restart.min_ms") - config_keys];
		if (max != NULL)
			return yw_fail(&x->w, max, "restart.max_ms", "%d is less than restart.min_ms (%d)",
			    c->restart_max_ms, c->restart_min_ms);
		return yw_fail(&x->w, min, "restart.min_ms", "%d is more than restart.max_ms (%d by default)",
		    c->restart_min_ms, c->restart_max_ms);
	}
	return 0;
}

/* the real directory of path: later chdir("/") cannot change what the config names */
static char *
real_dir(const char *path, struct err *e)
{
	char *dir = strdup(path), *slash, *real;

	if (dir == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	if ((slash = strrchr(dir, '/')) == NULL)
		strcpy(dir, ".");
	else
		slash[slash == dir] = '\0';	/* "/x" -> "/", "a/b" -> "a" */
	if ((real = realpath(dir, NULL)) == NULL)
		err_set(e, "%s: cannot resolve its directory %s: %s", path, dir, strerror(errno));
	free(dir);
	return real;
}

struct config *
config_load(const char *path, struct err *e)
{
	struct config *c = calloc(1, sizeof(*c));
	struct ctx x = { .w = { .file = path, .e = e }, .c = c };
	size_t len;
	char *text = NULL;
	int ok = 0, failed;

	if (c == NULL || (c->policy[0].name = strdup("default")) == NULL) {
		err_set(e, "out of memory");
		free(c);
		return NULL;
	}
	c->n_policies = 1;
	for (const struct config_key *k = config_keys; k->path; k++)
		if (k->flags & CONFIG_HAS_DEFAULT) {
			switch (k->type) {
			case CONFIG_SIZE: *FIELD(c, k, size_t) = (size_t)k->def; break;
			case CONFIG_MODE: *FIELD(c, k, unsigned) = (unsigned)k->def; break;
			case CONFIG_LONG: *FIELD(c, k, long) = k->def; break;
			case CONFIG_MILLI: *FIELD(c, k, double) = (double)k->def / 1000; break;
			default: *FIELD(c, k, int) = (int)k->def; break;
			}
		}
	if ((text = file_read_all(path, &len, 1 << 20, e)) == NULL || (x.dir = real_dir(path, e)) == NULL)
		goto out;
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (asprintf(&c->path, "%s%s%s", x.dir, x.dir[strlen(x.dir) - 1] == '/' ? "" : "/", base) < 0) {
		c->path = NULL;
		err_set(e, "out of memory");
		goto out;
	}
	yaml_node_t *root = yw_load(&x.w, text, len, &failed);
	if (!failed)
		ok = (root == NULL || walk(&x, root, "") == 0) && check(&x) == 0;
	yw_free(&x.w);
out:
	free(text);
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
	free(c->gen_model);
	free(c->gen_date);
	for (int i = 0; i < c->n_http_listen; i++)
		free(c->http_listen[i]);
	free(c->http_keys_file);
	free(c->upstream_url);
	free(c->upstream_api_key_file);
	free(c->upstream_ca_file);
	free(c->upstream_model);
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
