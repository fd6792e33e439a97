/* http_native.c - POST /guardd/request: one request of guardd's own protocol
 * (guardd-protocol(7)) as a JSON object, validated by the same schema as the msgpack
 * socket's (proto_request_from_json), answered as the protocol's answer in JSON; a chat
 * with "stream": true answers as server-sent events, one per "delta" answer, then the
 * "chat" answer and [DONE]. For clients that speak HTTP but not msgpack, and for checking
 * the front itself without the OpenAI routes. */
#include "daemon/http.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "daemon/http_int.h"
#include "daemon/server.h"

static json_t *
answer_json(const struct request *r, const char *key, const json_t *body)
{
	json_t *o = json_pack("{s:o, s:b}", "id", proto_id_json(r), "ok", 1);

	if (key != NULL && body != NULL)
		json_object_set(o, key, (json_t *)body);
	return o;
}

static void
native_ok(struct hreq *h, const struct request *r, const char *key, const json_t *body)
{
	json_t *o = answer_json(r, key, body);

	if (strcmp(key, "delta") == 0) {
		hreq_stream_start(h);	/* the first delta opens the stream */
		hreq_stream_event(h, o);
	} else if (r->op == OP_CHAT && r->copt.stream) {
		hreq_stream_start(h);
		hreq_stream_event(h, o);
		hreq_stream_end(h, 1);
	} else
		hreq_reply_json(h, 200, o);
	json_decref(o);
}

static void
native_error(struct hreq *h, const struct request *r, enum proto_status st, const char *msg)
{
	(void)r;
	hreq_error_status(h, st, msg);
}

static const struct hreq_ops native_ops = { native_ok, native_error, NULL, NULL };

void
http_route_native(struct hreq *h)
{
	struct server *s = hreq_server(h);
	json_t *body = hreq_body_json(h);
	struct proto_limits lim = { s->cfg->max_request_bytes, s->cfg->max_messages,
	    s->cfg->max_image_bytes, s->cfg->max_images };
	struct request r;
	struct err e;

	if (body == NULL)
		return;	/* answered */
	enum proto_status st = proto_request_from_json(body, &lim, &r, &e);
	if (st != PROTO_OK) {
		s->st.bad_requests++;
		hreq_error_status(h, st, e.msg);
		proto_request_free(&r);
		return;
	}
	if (r.op == OP_RELOAD) {
		hreq_error(h, 400, NULL, "unsupported", "reload is for the msgpack socket or SIGHUP, "
		    "not HTTP");
		proto_request_free(&r);
		return;
	}
	hreq_set_ops(h, &native_ops, NULL);
	s->st.requests++;
	request_handle(hreq_conn(h), &r);	/* takes r */
}
