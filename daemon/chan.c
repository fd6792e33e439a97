/* chan.c - framed messages with descriptor passing between guardd's two processes. A frame
 * is an 8-byte header (type, length; host order: both ends are this binary) and the
 * payload; a descriptor rides on the header's first byte and is queued on arrival. */
#include "daemon/chan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 8

struct chan {
	int fd;
	unsigned char *in;
	size_t n, cap;
	int fds[MAX_FDS];	/* received, not yet claimed by a message, in order */
	int n_fds;
};

struct chan *
chan_new(int fd)
{
	struct chan *c = calloc(1, sizeof(*c));

	if (c != NULL)
		c->fd = fd;
	return c;
}

void
chan_free(struct chan *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < c->n_fds; i++)
		close(c->fds[i]);
	if (c->fd != -1)
		close(c->fd);
	free(c->in);
	free(c);
}

int chan_fd(const struct chan *c) { return c->fd; }

/* the peer is our own process and reads promptly: wait for room (bounded, so a hung peer
 * cannot hang the sender) rather than drop a message */
static int
wait_room(int *waited_ms)
{
	struct timespec ts = { 0, 1000000 };

	if (++*waited_ms > 5000)
		return -1;
	nanosleep(&ts, NULL);
	return 0;
}

static int
write_all(int fd, const unsigned char *p, size_t n)
{
	int waited = 0;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			if (wait_room(&waited) == -1)
				return -1;
			continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
chan_send(struct chan *c, uint32_t type, const void *data, size_t len, int fd)
{
	uint32_t hdr[2] = { type, (uint32_t)len };
	struct iovec iov = { hdr, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t w;

	if (len > CHAN_MAX_PAYLOAD)
		return -1;
	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	/* the first byte carries the descriptor, the rest follows as plain bytes */
	int waited = 0;
	do
		w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	while (w < 0 && (errno == EINTR || (errno == EAGAIN && wait_room(&waited) == 0)));
	if (w != 1)
		return -1;
	if (write_all(c->fd, (const unsigned char *)hdr + 1, sizeof(hdr) - 1) == -1)
		return -1;
	return len ? write_all(c->fd, data, len) : 0;
}

int
chan_read(struct chan *c)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	} u;

	for (;;) {
		if (c->cap - c->n < 65536) {
			size_t cap = c->cap ? c->cap * 2 : 131072;
			unsigned char *p = realloc(c->in, cap);
			if (p == NULL)
				return -1;
			c->in = p;
			c->cap = cap;
		}
		struct iovec iov = { c->in + c->n, c->cap - c->n };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			.msg_controllen = sizeof(u.buf) };
		ssize_t r = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				if (c->n_fds < MAX_FDS)
					c->fds[c->n_fds++] = fd;
				else
					close(fd);
			}
		}
		if (r == 0)
			return 0;
		c->n += (size_t)r;
		if ((size_t)r < iov.iov_len)
			return 1;
	}
}

int
chan_next(struct chan *c, struct chan_msg *m)
{
	uint32_t hdr[2];

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (c->n < sizeof(hdr))
		return 0;
	memcpy(hdr, c->in, sizeof(hdr));
	if (hdr[1] > CHAN_MAX_PAYLOAD)
		return -1;
	if (c->n - sizeof(hdr) < hdr[1])
		return 0;
	if ((m->data = malloc((size_t)hdr[1] + 1)) == NULL)
		return -1;
	m->type = hdr[0];
	m->len = hdr[1];
	memcpy(m->data, c->in + sizeof(hdr), hdr[1]);
	m->data[hdr[1]] = '\0';
	if (m->type == CHAN_LOG_FD) {
		if (c->n_fds == 0) {
			free(m->data);
			m->data = NULL;
			return -1;
		}
		m->fd = c->fds[0];
		memmove(c->fds, c->fds + 1, (size_t)(--c->n_fds) * sizeof(int));
	}
	size_t used = sizeof(hdr) + hdr[1];
	memmove(c->in, c->in + used, c->n - used);
	c->n -= used;
	return 1;
}

void
chan_msg_free(struct chan_msg *m)
{
	free(m->data);
	m->data = NULL;
	if (m->fd != -1)
		close(m->fd);
	m->fd = -1;
}

static void
put32(unsigned char **p, uint32_t v)
{
	memcpy(*p, &v, 4);
	*p += 4;
}

unsigned char *
chan_policies_encode(const struct chan_policy *p, int n, size_t *len)
{
	size_t total = 4;

	for (int i = 0; i < n; i++)
		total += 8 + p[i].len;
	unsigned char *buf = malloc(total), *w = buf;
	if (buf == NULL)
		return NULL;
	put32(&w, (uint32_t)n);
	for (int i = 0; i < n; i++) {
		put32(&w, (uint32_t)p[i].ok);
		put32(&w, (uint32_t)p[i].len);
		memcpy(w, p[i].text, p[i].len);
		w += p[i].len;
	}
	*len = total;
	return buf;
}

static int
get32(const unsigned char *d, size_t len, size_t *off, uint32_t *v)
{
	if (len - *off < 4)
		return -1;
	memcpy(v, d + *off, 4);
	*off += 4;
	return 0;
}

int
chan_policies_decode(const unsigned char *d, size_t len, struct chan_policy *p, int max)
{
	size_t off = 0;
	uint32_t n, v;

	if (get32(d, len, &off, &n) == -1 || n > (uint32_t)max)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		if (get32(d, len, &off, &v) == -1)
			return -1;
		p[i].ok = v != 0;
		if (get32(d, len, &off, &v) == -1 || len - off < v)
			return -1;
		p[i].text = (const char *)d + off;
		p[i].len = v;
		off += v;
	}
	return off == len ? (int)n : -1;
}
