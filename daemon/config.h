/* config.h - guardd's configuration file (guardd.yaml(5)). */
#ifndef GUARDD_CONFIG_H
#define GUARDD_CONFIG_H

#include <stddef.h>
#include <sys/types.h>
#include "core/err.h"

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
};

/* Loads and validates; relative paths are taken from the file's directory. Errors name
 * file:line:column and the key. */
struct config *config_load(const char *path, struct err *e);
void config_free(struct config *c);
/* Index of a named policy, or -1. */
int config_policy(const struct config *c, const char *name);

#endif
