/* listen.c - guardd's listening sockets: the msgpack one (the one systemd passed, or a Unix
 * socket bound at the configured path with its mode and group) and the HTTP front's (Unix
 * sockets made the same way, TCP sockets bound to the one address given). The privileged
 * parent makes them once; children inherit them. */
#include "daemon/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
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
socket_group(const struct config *cfg, const char *path, int *code)
{
	struct group *gr;

	if (cfg->socket_group == NULL)
		return 0;
	if ((gr = getgrnam(cfg->socket_group)) == NULL) {
		*code = EX_NOUSER;
		log_warnx("group '%s' does not exist", cfg->socket_group);
		return -1;
	}
	if (chown(path, (uid_t)-1, gr->gr_gid) == -1) {
		*code = EX_NOPERM;
		log_warn("chown %s", path);
		return -1;
	}
	return 0;
}

/* a Unix socket at path with the configured mode and group */
static int
unix_open(const struct config *cfg, const char *path, int *code)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	*code = EX_OSERR;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
		log_warn("socket");
		return -1;
	}
	/* a stale socket is replaced, a live one means another guardd */
	if (lstat(path, &st) == 0) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (S_ISSOCK(st.st_mode) && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			close(fd);
			*code = EX_UNAVAILABLE;
			log_warnx("%s: another guardd is listening there", path);
			return -1;
		}
		close(probe);
		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			*code = EX_CANTCREAT;
			log_warnx("%s: exists and is not a socket", path);
			return -1;
		}
		unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		*code = errno == EACCES ? EX_NOPERM : EX_CANTCREAT;
		log_warn("bind %s", path);
		close(fd);
		return -1;
	}
	if (chmod(path, cfg->socket_mode) == -1)
		log_warn("chmod %s", path);
	if (socket_group(cfg, path, code) == -1 || listen(fd, 128) == -1) {
		if (*code == EX_OSERR)
			log_warn("listen");
		unlink(path);
		close(fd);
		return -1;
	}
	*code = 0;
	return fd;
}

int
listen_open(const struct config *cfg, int *activated, int *code)
{
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
	return unix_open(cfg, cfg->listen, code);
}

int
listen_tcp_parse(const char *addr, char *host, size_t hn, char *port, size_t pn, struct err *e)
{
	const char *h = "127.0.0.1", *p = addr, *colon;
	size_t hl = strlen(h);

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (close == NULL || close == addr + 1 || close[1] != ':')
			return err_set(e, "'%s' is not [IPv6 address]:port", addr);
		h = addr + 1;
		hl = (size_t)(close - h);
		p = close + 2;
	} else if ((colon = strrchr(addr, ':')) != NULL) {
		if (strchr(addr, ':') != colon)
			return err_set(e, "'%s': write an IPv6 address in brackets, [::1]:8080", addr);
		if (colon > addr) {	/* ":port" is loopback, like "port" */
			h = addr;
			hl = (size_t)(colon - addr);
		}
		p = colon + 1;
	}
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5 || atoi(p) < 1 ||
	    atoi(p) > 65535)
		return err_set(e, "'%s' is not a socket path (absolute) or host:port with a port in "
		    "[1, 65535]", addr);
	for (size_t i = 0; i < hl; i++)
		if (h[i] == '/' || h[i] == ' ' || h[i] == '[' || h[i] == ']')
			return err_set(e, "'%s': '%.*s' is not a host name or address", addr, (int)hl, h);
	if (host != NULL) {
		if (hl >= hn)
			return err_set(e, "'%s': the host is too long", addr);
		memcpy(host, h, hl);
		host[hl] = '\0';
	}
	if (port != NULL)
		snprintf(port, pn, "%s", p);
	return 0;
}

/* a TCP socket bound to the one address given (never every interface unless it says so) */
static int
tcp_open(const char *addr, int *code)
{
	char host[256], port[8];
	struct addrinfo hints, *ai = NULL;
	struct err e;
	int fd, on = 1, rc;

	*code = EX_CONFIG;
	if (listen_tcp_parse(addr, host, sizeof(host), port, sizeof(port), &e) == -1) {
		log_warnx("http.listen: %s", e.msg);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
		*code = EX_NOHOST;
		log_warnx("http.listen: %s: %s", addr, gai_strerror(rc));
		return -1;
	}
	*code = EX_OSERR;
	if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
		log_warn("socket for %s", addr);
		freeaddrinfo(ai);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ai->ai_family == AF_INET6)	/* [::1]:port is IPv6 only, as written */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 || listen(fd, 128) == -1) {
		*code = errno == EACCES ? EX_NOPERM : EX_CANTCREAT;
		log_warn("bind %s", addr);
		close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	return fd;
}

int
listen_http_open(const struct config *cfg, int i, int *code)
{
	const char *a = cfg->http_listen[i];
	int fd = a[0] == '/' ? unix_open(cfg, a, code) : tcp_open(a, code);

	if (fd >= 0) {
		*code = 0;
		log_info("HTTP: listening on %s", a);
	}
	return fd;
}
