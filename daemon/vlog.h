/* vlog.h - the verdict log: one JSON line per verdict. The privileged parent opens the file
 * (and reopens it on SIGHUP, after logrotate); the child writes to the descriptor it is
 * given, so it needs no right to the log's directory. */
#ifndef GUARDD_VLOG_H
#define GUARDD_VLOG_H

#include <stdint.h>
#include <sys/types.h>

#include "daemon/config.h"
#include "util/err.h"

struct json_t;

struct vlog {
	char *path;
	int fd;
	enum log_content content;
	uint64_t lines, errors;
	char last_error[256];	/* the newest failure (a write, or a reopen), for stats */
};

/* The parent: opens path for appending; a file it creates is given to owner:group (-1 to
 * leave it) so the unprivileged user's tools can read it. Returns the descriptor or -1. */
int vlog_open_file(const char *path, uid_t owner, gid_t group, struct err *e);
/* The child: a log at path (NULL: none) written through fd (taken). */
void vlog_init(struct vlog *l, const char *path, int fd, enum log_content content);
/* A reopened file from the parent: later lines go there (the old descriptor is closed). */
void vlog_set_fd(struct vlog *l, int fd);
/* Appends the object as one line; a failure is counted and reported, never fatal. */
void vlog_write(struct vlog *l, struct json_t *line);
void vlog_close(struct vlog *l);

#endif
