/* chan.h - the channel between guardd's privileged parent and its inference child (the
 * imsg idea, small): typed messages of up to CHAN_MAX_PAYLOAD bytes over a stream
 * socketpair, each optionally carrying one file descriptor (SCM_RIGHTS). */
#ifndef GUARDD_CHAN_H
#define GUARDD_CHAN_H

#include <stddef.h>
#include <stdint.h>

#define CHAN_MAX_PAYLOAD (32u << 20)

/* Message types: never renumbered. */
enum chan_type {
	CHAN_READY = 1,		/* child -> parent: the model is loaded, serving */
	CHAN_RELOAD = 2,	/* child -> parent: a client asked for a reload */
	CHAN_LOG_FD = 3,	/* parent -> child: the verdict log, (re)opened; carries the fd */
	CHAN_LOG_ERROR = 4,	/* parent -> child: reopening the log failed; payload: why */
	CHAN_POLICIES = 5,	/* parent -> child: policy texts (chan_policies_*), or why not */
	CHAN_RELOADED = 6,	/* child -> parent: the texts of this sequence number are in force */
	CHAN_KEYS = 7,		/* parent -> child: http.keys_file's text, read again and valid */
};

struct chan_msg {
	uint32_t type;
	uint32_t len;
	unsigned char *data;	/* len bytes, NUL-terminated for convenience */
	int fd;			/* -1 when none came with it */
};

struct chan;

struct chan *chan_new(int fd);
void chan_free(struct chan *c);	/* closes the socket and any fds not taken */
int chan_fd(const struct chan *c);
/* Sends one message (blocking until written; the peer is our own process). -1 on error. */
int chan_send(struct chan *c, uint32_t type, const void *data, size_t len, int fd);
/* Reads what the socket has (non-blocking socket): 1 read something, 0 EOF, -1 error
 * (EAGAIN is not an error: returns 1). */
int chan_read(struct chan *c);
/* The next complete message, if any (1), else 0; -1 if the stream is corrupt. The message
 * is the caller's: chan_msg_free. */
int chan_next(struct chan *c, struct chan_msg *m);
void chan_msg_free(struct chan_msg *m);

/* CHAN_POLICIES payload: a count, then per policy of the configuration (in its order) an ok
 * flag and either the YAML text or the error that kept the parent from reading it. */
struct chan_policy {
	int ok;
	const char *text;	/* YAML (ok) or error message */
	size_t len;
};
/* Encodes n policies into a malloc'd buffer. */
unsigned char *chan_policies_encode(const struct chan_policy *p, int n, size_t *len);
/* Decodes in place (pointers into data); returns the count, or -1 if malformed. */
int chan_policies_decode(const unsigned char *data, size_t len, struct chan_policy *p, int max);

#endif
