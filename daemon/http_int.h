/* http_int.h - what the HTTP front's own files (http.c, http_answer.c, http_metrics.c,
 * http_native.c) share beyond the routes' contract in http.h: the server, connection and
 * request records, and the helpers both halves use. */
#ifndef GUARDD_HTTP_INT_H
#define GUARDD_HTTP_INT_H

#include <sys/queue.h>
#include <sys/types.h>

#include "daemon/config.h"

struct server;
struct hreq;
struct evbuffer;
struct event;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_connection;
struct evhttp_request;
struct bufferevent;
struct http_keys;
struct json_t;
struct hreq_ops;

struct hlis {
	struct http *http;
	struct evhttp *eh;
	struct evhttp_bound_socket *bound;
	int is_unix;
	const char *name;
};

struct hconn {
	TAILQ_ENTRY(hconn) link;
	struct http *http;
	struct hlis *l;
	struct evhttp_connection *evcon;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int refused;			/* a peer the allow lists refuse: 403 and close */
	int over;			/* beyond http.max_connections: 503 and close */
	int busy;			/* a request of it counts in http->inflight */
	struct hreq *h;			/* the request in a route's hands (not answered yet) */
	struct event *ev_close;		/* the peer leaving while a route works */
};

#define HTTP_PENDING_MAX 256	/* connections accepted in one loop iteration, recorded */

struct http {
	struct server *s;
	struct {
		struct bufferevent *bev;
		struct hlis *l;
	} pending[HTTP_PENDING_MAX];	/* accepted, not yet recorded (bev_cb) */
	int n_pending;
	struct event *ev_accepted;
	struct hlis lis[CONFIG_MAX_HTTP];
	int n_lis;
	struct http_keys *keys;
	TAILQ_HEAD(, hconn) conns;
	int n_conns;
	int inflight;
	struct event *ev_resume;
};

struct hreq {
	struct http *http;
	struct hconn *hc;		/* NULL once its connection closed */
	struct evhttp_request *req;	/* NULL once evhttp owns it again */
	struct conn *c;			/* the stand-in */
	const struct hreq_ops *ops;
	void *arg;
	struct json_t *body;			/* parsed once, owned here */
	int answered, gone, streaming;
	int depth;			/* our calls into the route on the stack */
	int free_pending;		/* the last reference went while depth > 0 */
};

/* Drops one guard of ours on h (depth); frees h if its last reference went meanwhile. */
void hreq_leave(struct hreq *h);
/* Frees h and its stand-in conn, after ops->free. */
void hreq_destroy(struct hreq *h);
/* An OpenAI-shaped error (type NULL: from the status) with one extra header (or none). */
void hreq_error_with(struct hreq *h, int status, const char *type, const char *code,
    const char *msg, const char *hname, const char *hval);

/* HTTP connections open now. */
int http_connections(const struct server *s);
/* The allow_uids / allow_gids rule of the msgpack socket (conn.c), for Unix listeners. */
int peer_allowed(const struct config *cfg, uid_t uid, gid_t gid);
/* POST /guardd/request: guardd's own protocol as JSON (http_native.c). */
void http_route_native(struct hreq *h);
/* An answer with its content type: raw's bytes (drained), or else body as JSON. */
void http_reply_raw(struct hreq *h, int status, const char *ctype, struct evbuffer *raw,
    const struct json_t *body);

#endif
