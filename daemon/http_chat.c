/* http_chat.c - POST /v1/chat/completions served by the co-hosted generator, and GET
 * /v1/models (guardd-http(7)). A chat is one OP_CHAT request through request_handle, so both
 * guards run exactly as for the msgpack front: its "delta" answers (text a response check
 * already passed) become chat.completion.chunk events, its "chat" answer the final chunk
 * (finish_reason, usage, the verdicts in `guardd`) and [DONE], or one chat.completion
 * object when the client does not stream. Nothing is sent before the guard passed it. */
#include "daemon/server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/model.h"
#include "daemon/http.h"
#include "daemon/http_id.h"
#include "proto/oai.h"

struct hchat {
	struct oai_ids ids;
	char id[48];
	char model[128];
	int stream, include_usage;
	int started;		/* the SSE stream's headers (and the role chunk) are out */
	int ended;
};

/* the stream's first event: the assistant's role, as OpenAI opens a stream */
static void
stream_open(struct hreq *h, struct hchat *c)
{
	if (c->started)
		return;
	c->started = 1;
	hreq_stream_start(h);
	json_t *o = oai_chunk(&c->ids, "", 0, 1);
	hreq_stream_event(h, o);
	json_decref(o);
}

static void
hchat_ok(struct hreq *h, const struct request *r, const char *key, const json_t *body)
{
	struct hchat *c = hreq_arg(h);
	struct server *s = hreq_server(h);
	json_t *o;

	(void)r;
	if (c->ended)
		return;
	if (strcmp(key, "delta") == 0) {
		const json_t *t = json_object_get(body, "text");
		if (!c->stream || !json_is_string(t))
			return;
		stream_open(h, c);
		o = oai_chunk(&c->ids, json_string_value(t), json_string_length(t), 0);
		hreq_stream_event(h, o);
		json_decref(o);
		return;
	}
	if (strcmp(key, "chat") != 0)
		return;
	c->ended = 1;
	const json_t *rv = json_object_get(body, "response_verdict");
	const json_t *fr = json_object_get(body, "finish_reason");
	if (c->stream && json_is_object(rv) && json_is_string(fr) &&
	    strcmp(json_string_value(fr), "content_filter") == 0)
		s->st.stream_blocks++;	/* the response guard stopped a stream */
	if (!c->stream) {
		o = oai_completion(&c->ids, body);
		hreq_reply_json(h, 200, o);
		json_decref(o);
		return;
	}
	stream_open(h, c);
	o = oai_chunk_final(&c->ids, body);
	hreq_stream_event(h, o);
	json_decref(o);
	if (c->include_usage) {
		o = oai_chunk_usage(&c->ids, body);
		hreq_stream_event(h, o);
		json_decref(o);
	}
	hreq_stream_end(h, 1);
}

static void
hchat_error(struct hreq *h, const struct request *r, enum proto_status st, const char *msg)
{
	struct hchat *c = hreq_arg(h);

	(void)r;
	if (c->ended)
		return;
	c->ended = 1;
	if (!c->started) {
		hreq_error_status(h, st, msg);
		return;
	}
	/* mid-stream: an error event, as OpenAI's SDK reads one, and no [DONE] */
	json_t *o = json_pack("{s:{s:s, s:s, s:s, s:n}}", "error", "message", msg, "type",
	    st == PROTO_TIMEOUT || st == PROTO_INTERNAL ? "server_error" : "invalid_request_error",
	    "code", proto_status_code(st), "param");
	hreq_stream_event(h, o);
	json_decref(o);
	hreq_stream_end(h, 0);
}

static void
hchat_free(struct hreq *h)
{
	free(hreq_arg(h));
}

static const struct hreq_ops chat_ops = { hchat_ok, hchat_error, NULL, hchat_free };

void
http_route_chat(struct hreq *h)
{
	struct server *s = hreq_server(h);
	struct proto_limits lim = { s->cfg->max_request_bytes, s->cfg->max_messages,
	    s->cfg->max_image_bytes, s->cfg->max_images };
	struct request r;
	struct oai_opts o;
	struct err e;
	char pol[64], msg[400];
	json_t *body;
	struct hchat *c;

	if ((body = hreq_body_json(h)) == NULL)	/* answered; the hreq owns the body */
		return;
	if (hreq_policy(h, body, pol, sizeof(pol)) == -1)
		return;	/* answered */
	enum proto_status st = oai_chat_parse(body, pol, &lim, &r, &o, &e);
	if (st != PROTO_OK) {
		if (st == PROTO_BAD_REQUEST)
			hreq_error(h, 400, "invalid_request_error", o.code, e.msg);
		else
			hreq_error_status(h, st, e.msg);
		goto out;
	}
	if (s->gen_model == NULL) {
		hreq_error(h, 503, "invalid_request_error", "unsupported", "this guardd hosts no "
		    "chat model (generator.model in guardd.yaml(5)) and has no upstream");
		goto out;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		hreq_error_status(h, PROTO_INTERNAL, "out of memory");
		goto out;
	}
	oai_model_id(s->cfg->gen_model, c->model, sizeof(c->model));
	if (o.model != NULL && strcmp(o.model, c->model) != 0 &&
	    strcmp(o.model, model_hash(s->gen_model)) != 0) {
		snprintf(msg, sizeof(msg), "model: no chat model '%.128s' here (this guardd serves "
		    "'%s')", o.model, c->model);
		hreq_error(h, 404, "invalid_request_error", "model_not_found", msg);
		free(c);
		goto out;
	}
	http_random_id(c->id, sizeof(c->id), "chatcmpl-");
	c->ids.id = c->id;
	c->ids.model = c->model;
	c->ids.created = (long long)time(NULL);
	c->stream = o.stream;
	c->include_usage = o.include_usage;
	hreq_set_ops(h, &chat_ops, c);
	request_handle(hreq_conn(h), &r);	/* takes r */
	return;
out:
	proto_request_free(&r);
}

void
http_route_models(struct hreq *h)
{
	struct server *s = hreq_server(h);
	json_t *data = json_array();
	char id[128];
	/* created: when this process started serving (the files' times say nothing useful) */
	static long long t0;

	if (t0 == 0)
		t0 = (long long)time(NULL);
	oai_model_id(s->cfg->model, id, sizeof(id));
	json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s}}", "id", id,
	    "object", "model", "created", (json_int_t)t0, "owned_by", "guardd", "guardd", "role",
	    "guard", "sha256", model_hash(s->model)));
	if (s->gen_model != NULL) {
		oai_model_id(s->cfg->gen_model, id, sizeof(id));
		json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s}}", "id", id,
		    "object", "model", "created", (json_int_t)t0, "owned_by", "guardd", "guardd",
		    "role", "chat", "sha256", model_hash(s->gen_model)));
	}
	json_t *o = json_pack("{s:s, s:o}", "object", "list", "data", data);
	hreq_reply_json(h, 200, o);
	json_decref(o);
}
