/* vlog.c - appends verdicts to the log, whole lines per write(2); opening the file is the
 * parent's part (vlog_open_file), writing the child's. */
#include "daemon/vlog.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"

int
vlog_open_file(const char *path, uid_t owner, gid_t group, struct err *e)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);

	if (fd >= 0) {
		/* new: it belongs to the daemon's user, as a file it made itself would */
		if ((owner != (uid_t)-1 || group != (gid_t)-1) && fchown(fd, owner, group) == -1) {
			err_set(e, "%s: chown: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		return fd;
	}
	if (errno == EEXIST)
		fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC, 0640);
	if (fd == -1)
		return err_set(e, "%s: %s", path, strerror(errno));
	return fd;
}

void
vlog_init(struct vlog *l, const char *path, int fd, enum log_content content)
{
	memset(l, 0, sizeof(*l));
	l->fd = fd;
	l->content = content;
	l->path = path ? strdup(path) : NULL;
}

void
vlog_set_fd(struct vlog *l, int fd)
{
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
		snprintf(l->last_error, sizeof(l->last_error), "%s: write: %s", l->path,
		    w < 0 ? strerror(errno) : "short write");
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
