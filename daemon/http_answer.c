/* http_answer.c - what a route reads and how it answers: the hreq's accessors, the body as
 * JSON, the policy it names, complete JSON answers, OpenAI-shaped errors, and server-sent
 * events. Every answer detaches the hreq from its connection before evhttp sends (which
 * may close the connection on the spot), then gives up the hreq's own reference on its
 * stand-in conn. Loop thread only. */
#include "daemon/http.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http_int.h"
#include "daemon/server.h"

/* --- the route's end of the hreq --------------------------------------------------- */

void
hreq_set_ops(struct hreq *h, const struct hreq_ops *ops, void *arg)
{
	h->ops = ops;
	h->arg = arg;
}

void *
hreq_arg(const struct hreq *h)
{
	return h->arg;
}

struct server *
hreq_server(const struct hreq *h)
{
	return h->http->s;
}

struct conn *
hreq_conn(const struct hreq *h)
{
	return h->c;
}

struct evhttp_request *
hreq_req(const struct hreq *h)
{
	return h->req;
}

int
hreq_gone(const struct hreq *h)
{
	return h->gone;
}

const char *
hreq_header(const struct hreq *h, const char *name)
{
	if (h->req == NULL)
		return NULL;
	return evhttp_find_header(evhttp_request_get_input_headers(h->req), name);
}

/* drop one of our own guards; free if the last reference went meanwhile */
void
hreq_leave(struct hreq *h)
{
	if (--h->depth == 0 && h->free_pending)
		hreq_destroy(h);
}

/* the connection's timeouts as configured (http.timeout_ms, both ways) */
static void
conn_timeouts(struct hconn *hc, int reading)
{
	const struct config *cfg = hc->http->s->cfg;
	struct timeval tv = { cfg->http_timeout_ms / 1000, cfg->http_timeout_ms % 1000 * 1000 };
	struct bufferevent *bev = evhttp_connection_get_bufferevent(hc->evcon);

	if (bev != NULL)
		bufferevent_set_timeouts(bev, reading ? &tv : NULL, &tv);
}

/* The answer is about to go: the connection no longer waits on the route. Done before
 * evhttp sends, which may close the connection (and free hc) on the spot. */
static void
detach(struct hreq *h)
{
	struct hconn *hc = h->hc;

	h->answered = 1;
	h->hc = NULL;
	if (hc != NULL) {
		hc->h = NULL;
		if (hc->ev_close)
			event_del(hc->ev_close);
		if (h->streaming)	/* the next request is read with its timeout again */
			conn_timeouts(hc, 1);
	}
}

/* after sending: evhttp owns the request; the hreq's own reference goes */
static void
release(struct hreq *h)
{
	h->req = NULL;
	h->depth++;
	conn_release(h->c);
	hreq_leave(h);
}

static int
json_to_evbuffer(const char *buf, size_t n, void *arg)
{
	return evbuffer_add(arg, buf, n);
}

/* the one way an answer goes out: a JSON body, or raw bytes with their content type */
static void
send_answer(struct hreq *h, int status, const char *ctype, struct evbuffer *raw,
    const json_t *body, const char *hname, const char *hval)
{
	struct server *s = h->http->s;
	struct evkeyvalq *out;
	struct evbuffer *b;

	if (h->gone || h->answered || h->req == NULL)
		return;
	if (status >= 400)
		s->st.http_errors++;
	out = evhttp_request_get_output_headers(h->req);
	evhttp_add_header(out, "Content-Type", ctype);
	if (hname != NULL)
		evhttp_add_header(out, hname, hval);
	/* a refused peer, one connection too many, or shutting down: no next request */
	if (s->draining || (h->hc && (h->hc->refused || h->hc->over)))
		evhttp_add_header(out, "Connection", "close");
	struct evhttp_request *req = h->req;
	detach(h);
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, 500, NULL);
	} else {
		if (raw != NULL)
			evbuffer_add_buffer(b, raw);
		else {
			if (body != NULL)
				json_dump_callback(body, json_to_evbuffer, b, JSON_COMPACT);
			evbuffer_add(b, "\n", 1);
		}
		evhttp_send_reply(req, status, NULL, b);
		evbuffer_free(b);
	}
	release(h);
}

static void
reply(struct hreq *h, int status, const json_t *body, const char *hname, const char *hval)
{
	send_answer(h, status, "application/json", NULL, body, hname, hval);
}

void
http_reply_raw(struct hreq *h, int status, const char *ctype, struct evbuffer *raw,
    const json_t *body)
{
	send_answer(h, status, ctype, raw, body, NULL, NULL);
}

void
hreq_reply_json(struct hreq *h, int status, const json_t *body)
{
	reply(h, status, body, NULL, NULL);
}

static json_t *
error_json(const char *type, const char *code, const char *msg)
{
	return json_pack("{s:{s:s, s:s, s:s, s:n}}", "error", "message", msg, "type", type,
	    "code", code, "param");
}

static const char *
error_type(int status)
{
	if (status == 401)
		return "authentication_error";
	if (status == 403)
		return "permission_error";
	if (status == 429)
		return "rate_limit_error";
	return status >= 500 ? "server_error" : "invalid_request_error";
}

void
hreq_error_with(struct hreq *h, int status, const char *type, const char *code, const char *msg,
    const char *hname, const char *hval)
{
	json_t *e = error_json(type ? type : error_type(status), code, msg);

	if (h->streaming && !h->gone && !h->answered) {
		/* the 200 is out: the error is the stream's last event, as OpenAI sends it */
		h->http->s->st.http_errors++;
		hreq_stream_event(h, e);
		json_decref(e);
		hreq_stream_end(h, 0);
		return;
	}
	reply(h, status, e, hname, hval);
	json_decref(e);
}

void
hreq_error(struct hreq *h, int status, const char *type, const char *code, const char *msg)
{
	hreq_error_with(h, status, type, code, msg, NULL, NULL);
}

void
hreq_error_status(struct hreq *h, enum proto_status st, const char *msg)
{
	int status;

	switch (st) {
	case PROTO_BAD_REQUEST: case PROTO_UNKNOWN_OP: status = 400; break;
	case PROTO_TOO_LARGE: status = 413; break;
	case PROTO_UNKNOWN_POLICY: status = 404; break;
	case PROTO_BUSY: status = 429; break;
	case PROTO_TIMEOUT: status = 504; break;
	case PROTO_SHUTTING_DOWN: case PROTO_UNSUPPORTED: case PROTO_TOO_MANY: status = 503; break;
	case PROTO_FORBIDDEN: status = 403; break;
	default: status = 500; break;
	}
	hreq_error_with(h, status, NULL, proto_status_code(st), msg,
	    status == 429 || status == 503 ? "Retry-After" : NULL, "1");
}

/* The body, parsed once; the hreq owns it (a borrowed reference: the route does not
 * decref it, and takes a json_incref to keep it beyond ops->free). */
json_t *
hreq_body_json(struct hreq *h)
{
	struct evbuffer *in;
	json_error_t je;
	size_t n;
	char msg[400];

	if (h->body != NULL)
		return h->body;
	if (h->req == NULL)
		return NULL;
	in = evhttp_request_get_input_buffer(h->req);
	n = evbuffer_get_length(in);
	if (n == 0) {
		hreq_error(h, 400, NULL, "bad_request", "the request has no body; expected a JSON "
		    "object");
		return NULL;
	}
	/* evhttp has applied http.max_body_bytes while reading; this is one contiguous copy */
	const char *p = (const char *)evbuffer_pullup(in, -1);
	json_t *j = p ? json_loadb(p, n, JSON_REJECT_DUPLICATES, &je) : NULL;
	if (j == NULL) {
		snprintf(msg, sizeof(msg), "malformed JSON body at line %d, column %d (byte %d): %s",
		    je.line, je.column, je.position, je.text);
		hreq_error(h, 400, NULL, "bad_request", msg);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		hreq_error(h, 400, NULL, "bad_request", "the body must be a JSON object");
		return NULL;
	}
	return h->body = j;
}

int
hreq_policy(struct hreq *h, const json_t *body, char *out, size_t n)
{
	const json_t *g = body ? json_object_get(body, "guardd") : NULL, *p = NULL;
	const char *name = NULL, *where = "guardd.policy";
	char msg[160];

	out[0] = '\0';
	if (g != NULL && !json_is_object(g)) {
		hreq_error(h, 400, NULL, "bad_request", "'guardd' must be an object, as "
		    "{\"policy\": \"name\"}");
		return -1;
	}
	if (g != NULL && (p = json_object_get(g, "policy")) != NULL) {
		if (!json_is_string(p)) {
			hreq_error(h, 400, NULL, "bad_request", "'guardd.policy' must be a string");
			return -1;
		}
		name = json_string_value(p);
		if (strlen(name) != json_string_length(p))
			name = NULL, where = "guardd.policy (a NUL byte)";
	} else {
		name = hreq_header(h, "Guardd-Policy");
		where = "the Guardd-Policy header";
		if (name == NULL)
			return 0;
	}
	if (name == NULL || strlen(name) >= n || strlen(name) > 63) {
		snprintf(msg, sizeof(msg), "%s: a policy name is at most 63 bytes", where);
		hreq_error(h, 400, NULL, "bad_request", msg);
		return -1;
	}
	snprintf(out, n, "%s", name);
	return 0;
}

/* --- server-sent events -------------------------------------------------------------- */

void
hreq_stream_start(struct hreq *h)
{
	struct evkeyvalq *out;

	if (h->gone || h->answered || h->streaming || h->req == NULL)
		return;
	out = evhttp_request_get_output_headers(h->req);
	evhttp_add_header(out, "Content-Type", "text/event-stream");
	evhttp_add_header(out, "Cache-Control", "no-cache");
	evhttp_add_header(out, "X-Accel-Buffering", "no");
	if (h->http->s->draining)
		evhttp_add_header(out, "Connection", "close");
	h->streaming = 1;
	evhttp_send_reply_start(h->req, 200, NULL);
	/* evhttp reads while it writes, to see a close, with the read timeout: the gaps of a
	 * stream (a guard check, an upstream's pause) are no idle client; the write timeout
	 * still closes one that does not read */
	if (h->hc != NULL)
		conn_timeouts(h->hc, 0);
}

void
hreq_stream_event(struct hreq *h, const json_t *data)
{
	struct evbuffer *b;

	if (h->gone || h->answered || !h->streaming || h->req == NULL ||
	    (b = evbuffer_new()) == NULL)
		return;
	evbuffer_add(b, "data: ", 6);
	json_dump_callback(data, json_to_evbuffer, b, JSON_COMPACT);
	evbuffer_add(b, "\n\n", 2);
	evhttp_send_reply_chunk(h->req, b);
	evbuffer_free(b);
}

void
hreq_stream_end(struct hreq *h, int done)
{
	struct evhttp_request *req = h->req;

	if (h->gone || h->answered || !h->streaming || req == NULL)
		return;
	detach(h);
	if (done) {
		struct evbuffer *b = evbuffer_new();
		if (b != NULL) {
			evbuffer_add(b, "data: [DONE]\n\n", 14);
			evhttp_send_reply_chunk(req, b);
			evbuffer_free(b);
		}
	}
	evhttp_send_reply_end(req);
	release(h);
}
