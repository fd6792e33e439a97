/* priv.h - privilege separation: the privileged parent (parent.c) and the unprivileged
 * inference child it forks (child.c). */
#ifndef GUARDD_PRIV_H
#define GUARDD_PRIV_H

#include <stddef.h>
#include <sys/types.h>

#include "daemon/config.h"

struct server;

/* What the parent hands to each child it forks. */
struct priv_start {
	const struct config *cfg;
	int listen_fd, activated;
	int http_fd[CONFIG_MAX_HTTP];	/* the http.listen sockets, in their order */
	int n_http_fd;
	char *keys;			/* http.keys_file's text (NULL: none, or unreadable) */
	size_t keys_len;
	int chan_fd;			/* the child's end of the channel */
	int log_fd;			/* -1: no verdict log */
	char *text[CONFIG_MAX_POLICIES];	/* policy YAML (NULL: the built-in policy) */
	size_t text_len[CONFIG_MAX_POLICIES];
	int restarts;
	pid_t parent_pid;
};

/* The parent's loop: forks the child, restarts it, forwards signals, serves `busy` while no
 * child is ready, reopens the log and reads policies on SIGHUP. Returns the exit status. */
int parent_run(const struct config *cfg, int listen_fd, int activated, const int *http_fd,
    int n_http_fd, int foreground);
/* The child's life: drop privileges, load, serve until drained. Returns the exit status. */
int child_main(struct priv_start *ps);
/* Reads every policy file of the configuration (as the parent may, the child may not).
 * On failure fills msg (naming the file) and returns -1. */
int priv_read_policies(const struct config *cfg, char **text, size_t *len, char *msg,
    size_t msgsize);
void priv_free_policies(char **text, int n);
/* http.keys_file's text, read as the parent may (NULL with msg filled when it cannot be
 * read; NULL and no message when none is configured). */
char *priv_read_keys(const struct config *cfg, size_t *len, char *msg, size_t msgsize);
/* The HTTP front's keys, from that text, for the child's http_start (http.c). */
int http_keys_set(struct server *s, const char *text, size_t len);
/* The user the child runs as: -1/-1 when none is configured or we are not root. */
int priv_user(const struct config *cfg, uid_t *uid, gid_t *gid, char *msg, size_t msgsize);

#endif
