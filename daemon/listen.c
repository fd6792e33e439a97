/* listen.c - guardd's listening socket: the one systemd passed (socket activation), or a
 * Unix socket bound at the configured path with its mode and group. The privileged parent
 * makes it once; children inherit it. */
#include "daemon/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "daemon/log.h"

/* systemd socket activation: LISTEN_PID is us and LISTEN_FDS >= 1 (the socket is fd 3) */
static int
activated_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid() || atoi(fds) < 1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 3;
}

static int
socket_group(const struct config *cfg, int *code)
{
	struct group *gr;

	if (cfg->socket_group == NULL)
		return 0;
	if ((gr = getgrnam(cfg->socket_group)) == NULL) {
		*code = EX_NOUSER;
		log_warnx("group '%s' does not exist", cfg->socket_group);
		return -1;
	}
	if (chown(cfg->listen, (uid_t)-1, gr->gr_gid) == -1) {
		*code = EX_NOPERM;
		log_warn("chown %s", cfg->listen);
		return -1;
	}
	return 0;
}

int
listen_open(const struct config *cfg, int *activated, int *code)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd = activated_fd();

	*code = EX_OSERR;
	*activated = fd >= 0;
	if (fd >= 0) {
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
			log_warn("the socket passed by systemd");
		log_info("listening on the socket passed by systemd");
		return fd;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", cfg->listen);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
		log_warn("socket");
		return -1;
	}
	/* a stale socket is replaced, a live one means another guardd */
	if (lstat(cfg->listen, &st) == 0) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (S_ISSOCK(st.st_mode) && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			close(fd);
			*code = EX_UNAVAILABLE;
			log_warnx("%s: another guardd is listening there", cfg->listen);
			return -1;
		}
		close(probe);
		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			*code = EX_CANTCREAT;
			log_warnx("%s: exists and is not a socket", cfg->listen);
			return -1;
		}
		unlink(cfg->listen);
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		*code = errno == EACCES ? EX_NOPERM : EX_CANTCREAT;
		log_warn("bind %s", cfg->listen);
		close(fd);
		return -1;
	}
	if (chmod(cfg->listen, cfg->socket_mode) == -1)
		log_warn("chmod %s", cfg->listen);
	if (socket_group(cfg, code) == -1 || listen(fd, 128) == -1) {
		if (*code == EX_OSERR)
			log_warn("listen");
		unlink(cfg->listen);
		close(fd);
		return -1;
	}
	*code = 0;
	return fd;
}
