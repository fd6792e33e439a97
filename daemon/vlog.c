/* vlog.c - appends verdicts to the log file, whole lines per write(2). */
#include "daemon/vlog.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"

int
vlog_open(struct vlog *l, const char *path, enum log_content content, struct err *e)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->content = content;
	if (path == NULL)
		return 0;
	l->path = strdup(path);
	if ((l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) == -1)
		return err_set(e, "%s: %s", path, strerror(errno));
	return 0;
}

void
vlog_reopen(struct vlog *l)
{
	if (l->path == NULL)
		return;
	int fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1) {
		l->errors++;
		log_warn("verdict log %s: reopen", l->path);
		return;	/* keep writing to the old file rather than nowhere */
	}
	if (l->fd != -1)
		close(l->fd);
	l->fd = fd;
}

void
vlog_write(struct vlog *l, json_t *line)
{
	if (l->path == NULL)
		return;
	char *s = json_dumps(line, JSON_COMPACT);
	if (s == NULL) {
		l->errors++;
		return;
	}
	size_t n = strlen(s);
	s[n] = '\n';	/* json_dumps' NUL becomes the newline: one write of one line */
	ssize_t w = l->fd == -1 ? -1 : write(l->fd, s, n + 1);
	if (w != (ssize_t)(n + 1)) {
		if (l->errors++ % 100 == 0)
			log_warn("verdict log %s: write failed (%llu so far)", l->path,
			    (unsigned long long)l->errors);
	} else
		l->lines++;
	free(s);
}

void
vlog_close(struct vlog *l)
{
	if (l->fd != -1)
		close(l->fd);
	free(l->path);
	memset(l, 0, sizeof(*l));
	l->fd = -1;
}
