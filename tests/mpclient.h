/* mpclient.h - what the daemon's tests and load generators share: a clock, connecting to a
 * Unix socket, sending, receiving one msgpack object, packing strings, sorting latencies. */
#ifndef GUARDD_MPCLIENT_H
#define GUARDD_MPCLIENT_H

#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static inline double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* a connected socket, or -1 */
static inline int
try_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* writes all n bytes (a peer that closed gives -1, never SIGPIPE) */
static inline int
send_all(int fd, const void *p, size_t n)
{
	const char *b = p;

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Receives from fd until up holds a whole object and unpacks it into res. Returns NULL, or
 * why not: the peer closed (or recv failed), sent garbage, or memory ran out. */
static inline const char *
recv_object(int fd, msgpack_unpacker *up, msgpack_unpacked *res)
{
	for (;;) {
		int rc = msgpack_unpacker_next(up, res);
		if (rc == MSGPACK_UNPACK_SUCCESS)
			return NULL;
		if (rc == MSGPACK_UNPACK_PARSE_ERROR)
			return "garbage from the daemon";
		if (!msgpack_unpacker_reserve_buffer(up, 65536))
			return "out of memory";
		ssize_t n = recv(fd, msgpack_unpacker_buffer(up), 65536, 0);
		if (n <= 0)
			return "the daemon closed the connection";
		msgpack_unpacker_buffer_consumed(up, (size_t)n);
	}
}

/* qsort's order for doubles (latencies) */
static inline int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static inline void
pstr(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* {id, op, messages: [user text]} (+ deadline_ms when > 0) */
static inline void
pack_classify(msgpack_sbuffer *sb, long id, const char *text, int deadline)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, deadline > 0 ? 4 : 3);
	pstr(&pk, "id");
	msgpack_pack_int64(&pk, id);
	pstr(&pk, "op");
	pstr(&pk, "classify");
	if (deadline > 0) {
		pstr(&pk, "deadline_ms");
		msgpack_pack_int(&pk, deadline);
	}
	pstr(&pk, "messages");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	pstr(&pk, "role");
	pstr(&pk, "user");
	pstr(&pk, "content");
	pstr(&pk, text);
}

#endif
