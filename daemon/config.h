/* config.h - guardd's configuration file (guardd.yaml(5)). */
#ifndef GUARDD_CONFIG_H
#define GUARDD_CONFIG_H

#include <stddef.h>
#include <sys/types.h>
#include "util/err.h"

enum log_content { LOG_CONTENT_NONE, LOG_CONTENT_SHA256, LOG_CONTENT_FULL };

#define CONFIG_MAX_POLICIES 16
#define CONFIG_MAX_IDS 64
#define CONFIG_MAX_HTTP 8

struct config {
	char *path;
	char *listen, *socket_group, *user, *model, *log_path;
	unsigned socket_mode;
	struct {
		char *name, *path;
	} policy[CONFIG_MAX_POLICIES];	/* [0] is "default" */
	int n_policies;
	int threads, batch, context;
	enum log_content log_content;
	size_t max_request_bytes;
	size_t max_image_bytes;
	int max_images;
	int max_messages, max_queue, deadline_ms, max_connections, drain_ms;
	uid_t allow_uid[CONFIG_MAX_IDS];
	gid_t allow_gid[CONFIG_MAX_IDS];
	int n_allow_uid, n_allow_gid;
	/* hardening (limits.*): a connection with no request in flight and no partial input is
	 * closed after idle_timeout_ms; a request whose first byte has arrived must be complete
	 * within read_timeout_ms; a connection that has not accepted pending output for
	 * write_timeout_ms is closed; reading pauses while max_inflight requests of the
	 * connection are queued or running, or while more than output_high_water answer bytes
	 * wait to be sent (and resumes below half of it) */
	int idle_timeout_ms, read_timeout_ms, write_timeout_ms, max_inflight;
	size_t output_high_water;
	/* control_uids / control_gids: who may send `reload` (and other control ops); with
	 * neither set, root and the daemon's own (unprivileged) user */
	uid_t control_uid[CONFIG_MAX_IDS];
	gid_t control_gid[CONFIG_MAX_IDS];
	int n_control_uid, n_control_gid;
	/* privilege separation: the inference process is restarted after a crash with a
	 * back-off from restart_min_ms doubling to restart_max_ms */
	int restart_min_ms, restart_max_ms;
	/* the co-hosted chat model (generator.*); gen_model NULL: guardd only classifies */
	char *gen_model, *gen_date;
	int gen_format;			/* enum chat_format */
	int gen_context, gen_max_chats, gen_max_tokens, gen_top_k, gen_deadline_ms;
	long gen_seed;			/* -1: a random seed per chat */
	double gen_temperature, gen_top_p, gen_min_p, gen_repeat_penalty;
	int check_every;		/* stream.check_every: tokens per response check */
	int conv_cache_mb;		/* cache.conversations_mb: the conversation cache's budget */
	int img_cache_entries, img_cache_mb;	/* cache.images, cache.images_mb: the image cache's */
	/* the HTTP front (http.*, guardd-http(7)): Unix socket paths (absolute) and TCP
	 * "host:port" addresses; keys for TCP listeners; limits */
	char *http_listen[CONFIG_MAX_HTTP];
	int n_http_listen;
	int http_auth;			/* enum http_auth */
	char *http_keys_file;		/* one bearer key per line */
	size_t http_max_body_bytes, http_max_header_bytes;
	int http_max_headers, http_timeout_ms, http_max_connections;
	/* proxy mode (upstream.*): /v1/chat/completions guarded and forwarded */
	char *upstream_url, *upstream_api_key_file, *upstream_ca_file, *upstream_model;
	int upstream_timeout_ms, upstream_connect_timeout_ms, upstream_verify;
	size_t upstream_max_response_bytes;
};

enum http_auth { HTTP_AUTH_KEYS, HTTP_AUTH_NONE };

/* Loads and validates into a fresh struct: every key checked against config_keys, errors
 * naming file:line:column and the key. config->path and every path in the config are
 * absolute: relative ones are taken from the real directory of the file (the files they
 * name need not exist yet). Free with config_free. */
struct config *config_load(const char *path, struct err *e);
void config_free(struct config *c);
/* Index of a named policy, or -1. */
int config_policy(const struct config *c, const char *name);

/* The one table of guardd.yaml's keys (tmux's options table): the loader dispatches,
 * checks and fills defaults from it, its messages list the keys of a level from it, and a
 * test compares it with guardd.yaml(5). */
enum config_type {
	CONFIG_STRING,		/* char *: a non-empty string */
	CONFIG_PATH,		/* char *: absolute once loaded; max: its longest length */
	CONFIG_INT,		/* int in [min, max] */
	CONFIG_SIZE,		/* size_t in [min, max] */
	CONFIG_MODE,		/* unsigned, octal, in [min, max] */
	CONFIG_ENUM,		/* int: the index of the value in choices */
	CONFIG_IDS,		/* unsigned[CONFIG_MAX_IDS] and an int count at n_off */
	CONFIG_POLICIES,	/* the mapping name: path of the extra policies */
	CONFIG_MILLI,		/* double in [min, max] / 1000; def in thousandths too */
	CONFIG_LONG,		/* long in [min, max] */
	CONFIG_LISTEN,		/* char *[CONFIG_MAX_HTTP] and an int count at n_off: absolute
				   Unix socket paths (max: their longest length) and TCP
				   "host:port" addresses */
};

#define CONFIG_REQUIRED 1	/* no default: the file must set it */
#define CONFIG_HAS_DEFAULT 2	/* def (or choices[def]) is the value when unset */

struct config_key {
	const char *path;		/* "limits.max_queue" */
	enum config_type type;
	long min, max, def;
	const char *const *choices;	/* CONFIG_ENUM: NULL-terminated */
	int flags;
	size_t off, n_off;		/* offsetof(struct config, the field [, its count]) */
	const char *help;
};
extern const struct config_key config_keys[];	/* ends with a NULL path */

/* The default as guardd.yaml(5) writes it ("256", "0660", "none") in buf, or NULL when the
 * key has none. */
const char *config_key_default(const struct config_key *k, char *buf, size_t n);
/* "integer in [1, 1048576]", "one of none, sha256, full", ... in buf. */
const char *config_key_describe(const struct config_key *k, char *buf, size_t n);

#endif
