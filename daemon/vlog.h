/* vlog.h - the verdict log: one JSON line per verdict, reopened on SIGHUP. */
#ifndef GUARDD_VLOG_H
#define GUARDD_VLOG_H

#include <stdint.h>

#include "daemon/config.h"
#include "util/err.h"

struct json_t;

struct vlog {
	char *path;
	int fd;
	enum log_content content;
	uint64_t lines, errors;
};

/* path NULL: no log. */
int vlog_open(struct vlog *l, const char *path, enum log_content content, struct err *e);
/* After logrotate moved the file: open the path again (the old file is closed). */
void vlog_reopen(struct vlog *l);
/* Appends the object as one line; a failure is counted and reported, never fatal. */
void vlog_write(struct vlog *l, struct json_t *line);
void vlog_close(struct vlog *l);

#endif
