/* config.h - guardd's configuration file (guardd.yaml(5)). */
#ifndef GUARDD_CONFIG_H
#define GUARDD_CONFIG_H

#include <stddef.h>
#include <sys/types.h>
#include "util/err.h"

enum log_content { LOG_CONTENT_NONE, LOG_CONTENT_SHA256, LOG_CONTENT_FULL };

#define CONFIG_MAX_POLICIES 16
#define CONFIG_MAX_IDS 64

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
};

/* Loads and validates; relative paths are taken from the file's directory. Errors name
 * file:line:column and the key. */
struct config *config_load(const char *path, struct err *e);
void config_free(struct config *c);
/* Index of a named policy, or -1. */
int config_policy(const struct config *c, const char *name);

#endif
