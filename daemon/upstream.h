/* upstream.h - one request to an OpenAI-compatible upstream (proxy mode, guardd-http(7)):
 * libevent's HTTP client on the loop's event_base, over TLS with bufferevent_openssl for
 * https (the certificate and the host name verified unless upstream.verify is false, against
 * the system's CAs or upstream.ca_file), a connection of its own per request (so a block can
 * close it), timeouts, a response size limit. The answer's body is handed on as it arrives.
 * Loop thread only. */
#ifndef GUARDD_UPSTREAM_H
#define GUARDD_UPSTREAM_H

#include <stddef.h>

#include "proto/proto.h"
#include "util/err.h"

struct event_base;
struct upstream;

struct upstream_opts {
	const char *url;		/* http(s)://host[:port][/base path], checked */
	const char *api_key;		/* NULL: no Authorization header */
	const char *ca_file;		/* NULL: the system's trust store */
	int verify;			/* check the certificate and host name */
	int timeout_ms;			/* the longest silence of the upstream */
	int connect_timeout_ms;		/* connecting and the TLS handshake */
	size_t max_response_bytes;
};

/* How a request failed: status is PROTO_TIMEOUT (the client gets 504) or PROTO_INTERNAL
 * (502); code a stable string ("upstream_timeout", "upstream_unreachable",
 * "upstream_tls", "upstream_closed", "upstream_too_large", "upstream_bad_response"). */
struct upstream_error {
	enum proto_status status;
	int http_status;		/* 504 or 502 */
	const char *code;
	char msg[512];
};

struct upstream_cbs {
	/* the response's status line and headers arrived */
	void (*head)(void *arg, int status, const char *content_type);
	/* body bytes, as they arrive */
	void (*data)(void *arg, const char *p, size_t n);
	/* the body is complete */
	void (*done)(void *arg);
	/* it failed; nothing is called after this */
	void (*fail)(void *arg, const struct upstream_error *err);
};

/* Checks an upstream.url: http or https, a host, an optional port, an optional path; no
 * user, query or fragment. */
int upstream_url_check(const char *url, struct err *e);

/* POSTs body (JSON) to the url's path + suffix ("/chat/completions"). Callbacks come from
 * the event loop, never from within this call. NULL with e set when it cannot start (bad
 * url, TLS setup: the CA file unreadable, ...). */
struct upstream *upstream_post(struct event_base *base, const struct upstream_opts *o,
    const char *suffix, const char *body, size_t n, const struct upstream_cbs *cb, void *arg,
    struct err *e);
/* Closes the connection (no more bytes are read; the socket goes at the loop's next turn)
 * and frees the request; no callback is called after it. The caller calls it once for
 * every request it started, whatever happened (after done or fail too); safe from within
 * a callback. NULL: nothing. */
void upstream_close(struct upstream *u);

/* The key file's first line (trimmed), malloc'd; NULL with e set when missing or empty. */
char *upstream_read_key(const char *path, struct err *e);

#endif
