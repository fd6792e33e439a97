/* http.h - guardd's HTTP front (guardd-http(7)) on the inference child's event loop: evhttp
 * servers on the `http.listen` sockets (bound by the privileged parent and inherited), auth,
 * limits, OpenAI-shaped errors, and the routes. Loop thread only.
 *
 * How a route meets the worker: every HTTP request gets a stand-in `struct conn` (c->hr
 * set, no bufferevent; peer credentials from SO_PEERCRED on Unix sockets, uid/gid/pid -1
 * on TCP). A route turns its JSON body into `struct request`s with the protocol layer's one
 * schema (proto_request_from_json) and hands each to request_handle(hreq_conn(h), r),
 * exactly as the msgpack front does. Whatever the daemon would send back on a socket -
 * conn_send_ok(c, r, "verdict"|"delta"|"chat"|..., body) or conn_send_error(c, r, status,
 * msg) - arrives instead at the route's hreq_ops, with the request (r->id tells batch items
 * apart: give each request an integer id). The route answers with the hreq_reply_* /
 * hreq_stream_* functions, once.
 *
 * Lifetime: the hreq lives until it has answered (hreq_reply_*, hreq_error, hreq_stream_end)
 * *and* no job of it is queued or running; ops->free (if set) is called then, once. When
 * the client goes away first, ops->gone is called (once), the stand-in conn is marked dead
 * (queued work of it is dropped by the worker, as for a closed socket), and the answer
 * functions become no-ops. */
#ifndef GUARDD_HTTP_H
#define GUARDD_HTTP_H

#include <stddef.h>

#include "proto/proto.h"

struct server;
struct conn;
struct hreq;
struct evhttp_request;
struct json_t;

/* --- the server (http.c) ------------------------------------------------------------- */

/* Starts the evhttp servers on the inherited http.listen descriptors (none configured:
 * nothing to do). Returns -1 with the reason logged. */
int http_start(struct server *s);
/* Stops accepting; requests in flight are finished by the drain (control.c). */
void http_stop_accepting(struct server *s);
void http_free(struct server *s);
/* HTTP requests in flight (the drain waits for them). */
int http_inflight(const struct server *s);

/* --- what a route sees (http.c) ------------------------------------------------------ */

struct hreq_ops {
	/* an answer for one request the route handed to request_handle */
	void (*ok)(struct hreq *h, const struct request *r, const char *key,
	    const struct json_t *body);
	void (*error)(struct hreq *h, const struct request *r, enum proto_status st,
	    const char *msg);
	void (*gone)(struct hreq *h);	/* the client left before the answer ended */
	void (*free)(struct hreq *h);	/* last call: free the route's state (hreq_arg) */
};

void hreq_set_ops(struct hreq *h, const struct hreq_ops *ops, void *arg);
void *hreq_arg(const struct hreq *h);
struct server *hreq_server(const struct hreq *h);
struct conn *hreq_conn(const struct hreq *h);
struct evhttp_request *hreq_req(const struct hreq *h);
/* A request header (case-insensitive name), or NULL. */
const char *hreq_header(const struct hreq *h, const char *name);
/* The body as a JSON object (duplicate keys refused, the http.max_body_bytes limit already
 * applied), or NULL after answering 400 with the parser's line:column itself. */
struct json_t *hreq_body_json(struct hreq *h);
/* The policy the request names: the body's "guardd": {"policy": ...} extension or else the
 * `Guardd-Policy` header, copied into out (empty: the default). Answers 400 itself and
 * returns -1 when it is not a string or too long. */
int hreq_policy(struct hreq *h, const struct json_t *body, char *out, size_t n);
/* 1 once the client has gone (answering is then a no-op). */
int hreq_gone(const struct hreq *h);

/* One complete JSON answer (Content-Type: application/json). Takes no reference. */
void hreq_reply_json(struct hreq *h, int status, const struct json_t *body);
/* An OpenAI-shaped error: {"error": {"message", "type", "code", "param": null}}; type is
 * e.g. "invalid_request_error", code a stable string (guardd's proto_status_code names
 * where one applies). */
void hreq_error(struct hreq *h, int status, const char *type, const char *code,
    const char *msg);
/* A protocol status as the matching HTTP error (bad_request 400, too_large 413,
 * unknown_policy 404, busy 429, timeout 504, shutting_down/unsupported 503, forbidden 403,
 * internal 500). */
void hreq_error_status(struct hreq *h, enum proto_status st, const char *msg);

/* Server-sent events (text/event-stream), as OpenAI streams: hreq_stream_start sends the
 * 200 and headers; each hreq_stream_event writes "data: <compact JSON>\n\n"; hreq_stream_end
 * writes "data: [DONE]\n\n" (when done is 1) and ends the reply. */
void hreq_stream_start(struct hreq *h);
void hreq_stream_event(struct hreq *h, const struct json_t *data);
void hreq_stream_end(struct hreq *h, int done);

/* --- the routes, one file each -------------------------------------------------------- */

void http_route_moderations(struct hreq *h);	/* POST /v1/moderations (http_mod.c) */
void http_route_chat(struct hreq *h);		/* POST /v1/chat/completions (http_chat.c) */
void http_route_proxy(struct hreq *h);		/* the same with upstream.url set (http_proxy.c) */
void http_route_models(struct hreq *h);		/* GET /v1/models (http_chat.c) */
void http_route_health(struct hreq *h);		/* GET /health (http_metrics.c) */
void http_route_metrics(struct hreq *h);	/* GET /metrics (http_metrics.c) */

/* --- the stand-in connection (conn.c dispatches to these when c->hr is set) ------------ */

void http_conn_ok(struct conn *c, const struct request *r, const char *key,
    const struct json_t *body);
void http_conn_error(struct conn *c, const struct request *r, enum proto_status st,
    const char *msg);
/* the stand-in's last reference went (conn_release) */
void http_conn_free(struct conn *c);

#endif
