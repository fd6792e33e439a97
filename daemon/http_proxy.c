/* http_proxy.c - POST /v1/chat/completions in proxy mode (upstream.url set, guardd-http(7)):
 * the guarded forward. The chat is checked as a request first (an OP_CLASSIFY of its
 * conversation through request_handle, as any client's); a blocked request ends with
 * content_filter and never reaches the upstream. An allowed one is forwarded (always
 * streamed from the upstream, so it can be checked as it grows); the upstream's text is
 * held back and checked with the conversation every stream.check_every guard tokens and at
 * the end (the conversation cache makes each re-check evaluate only the new tokens), and
 * only text a check passed is released: as SSE chunks when the client streams, as one
 * chat.completion at the end when it does not. A blocked response closes the upstream
 * connection at once and ends with content_filter and the policy's refusal. Image parts
 * are forwarded as received when the guard is a vision guard, which judges them with every
 * check (each check evaluated whole); a text-only guard cannot, so they are refused. Upstream
 * failures are OpenAI-shaped 502/504 errors (or an error event once streaming began). */
#include "daemon/http.h"
#include "daemon/http_id.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classifier/conv.h"
#include "core/mllama.h"
#include "core/model.h"
#include "core/tok.h"
#include "daemon/server.h"
#include "daemon/upstream.h"
#include "policy/policy.h"
#include "proto/sse.h"
#include "util/buf.h"

enum up_mode { UP_WAIT, UP_STREAM, UP_JSON, UP_ERROR };

struct proxy {
	struct hreq *h;
	struct server *s;
	json_t *body;			/* the client's request */
	struct chat chat;		/* its messages (for the checks' conversations) */
	struct conv_image *img;		/* their image parts' bytes (a vision guard judges them) */
	size_t n_img;
	char policy[64];
	int pol;			/* the policy's index, for its refusal */
	int stream;			/* the client asked for SSE */
	int include_usage;		/* stream_options.include_usage */
	char id[40];
	long created;
	char model[256];		/* as the answers name it */
	struct upstream *up;
	enum up_mode mode;
	int up_status;
	struct sse *sse;
	struct buf raw;			/* a non-streamed or error body of the upstream */
	struct buf text;		/* the assistant's text so far (released and held) */
	size_t released;		/* bytes of text sent to the client */
	size_t passed;			/* bytes of text the last check allowed */
	size_t check_len;		/* bytes the check in flight covers */
	int checking, n_checks;
	int tokens_pending;		/* guard tokens of text since the last check began */
	int up_done;			/* the upstream's answer is complete */
	int started;			/* the SSE stream (200 + headers) began */
	int ended;			/* answered: later events are ignored */
	int gone;
	char finish[32];		/* the upstream's finish_reason */
	json_t *usage;			/* the upstream's usage, if it sent one */
	json_t *req_verdict, *resp_verdict;
};

/* --- small helpers ----------------------------------------------------------------------- */

/* a request id as msgpack: a positive integer */
static void
set_id(struct request *r, unsigned n)
{
	if (n < 128) {
		r->id[0] = (unsigned char)n;
		r->id_len = 1;
	} else {
		n = n > 65535 ? 65535 : n;
		r->id[0] = 0xcd;
		r->id[1] = (unsigned char)(n >> 8);
		r->id[2] = (unsigned char)n;
		r->id_len = 3;
	}
}

/* the verdict stops the answer: blocked, or failed under on_error block (as chat.c) */
static int
verdict_blocks(const json_t *v)
{
	const char *d = json_string_value(json_object_get(v, "decision"));

	return d && (strcmp(d, "block") == 0 ||
	    (strcmp(d, "error") == 0 && json_is_true(json_object_get(v, "flagged"))));
}

static const char *
refusal(const struct proxy *p)
{
	const struct policy *pol = p->pol >= 0 && p->pol < p->s->n_pol ? p->s->pol[p->pol] : NULL;

	return pol ? policy_refusal(pol) : "I can't help with that.";
}

static json_t *
guardd_ext(const struct proxy *p)
{
	return json_pack("{s:O?, s:O?, s:i}", "request_verdict", p->req_verdict,
	    "response_verdict", p->resp_verdict, "checks", p->n_checks);
}

static json_t *
chunk(const struct proxy *p, json_t *delta, const char *finish)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:s?}]}", "id", p->id, "object",
	    "chat.completion.chunk", "created", (json_int_t)p->created, "model", p->model,
	    "choices", "index", 0, "delta", delta, "finish_reason", finish);
}

static void
send_delta(struct proxy *p, const char *t, size_t n)
{
	json_t *c = chunk(p, json_pack("{s:s%}", "content", t, n), NULL);

	hreq_stream_event(p->h, c);
	json_decref(c);
}

static void
stream_start(struct proxy *p)
{
	if (p->started)
		return;
	p->started = 1;
	hreq_stream_start(p->h);
	json_t *c = chunk(p, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL);
	hreq_stream_event(p->h, c);
	json_decref(c);
}

static void
close_upstream(struct proxy *p)
{
	upstream_close(p->up);
	p->up = NULL;
}

/* --- the end of an answer ---------------------------------------------------------------- */

/* the last words: finish_reason "stop"/"length" from the upstream, or "content_filter"
 * with the refusal; nothing may touch p after this (the hreq may be freed inside) */
static void
finish(struct proxy *p, const char *reason, int blocked)
{
	struct hreq *h = p->h;

	close_upstream(p);
	p->ended = 1;
	if (p->stream) {
		stream_start(p);
		/* the refusal is the last chunk's content, as the co-hosted chat's */
		json_t *c = chunk(p, blocked ? json_pack("{s:s}", "content", refusal(p)) : json_object(),
		    reason);
		json_object_set_new(c, "guardd", guardd_ext(p));
		if (p->usage && p->include_usage)
			json_object_set(c, "usage", p->usage);
		hreq_stream_event(h, c);
		json_decref(c);
		hreq_stream_end(h, 1);
		return;
	}
	const char *content = blocked ? refusal(p) : p->text.p ? p->text.p : "";
	size_t clen = blocked ? strlen(content) : p->passed;
	json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s%}, s:s}]}", "id", p->id,
	    "object", "chat.completion", "created", (json_int_t)p->created, "model", p->model,
	    "choices", "index", 0, "message", "role", "assistant", "content", content, clen,
	    "finish_reason", reason);
	if (blocked)
		json_object_set_new(json_object_get(json_array_get(json_object_get(o, "choices"), 0),
		    "message"), "refusal", json_string(content));
	if (p->usage)
		json_object_set(o, "usage", p->usage);
	json_object_set_new(o, "guardd", guardd_ext(p));
	hreq_reply_json(h, 200, o);
	json_decref(o);
}

/* an error: as the HTTP status before streaming began, as an error event after it */
static void
fail(struct proxy *p, int status, const char *type, const char *code, const char *msg)
{
	close_upstream(p);
	p->ended = 1;
	if (!p->started) {
		hreq_error(p->h, status, type, code, msg);
		return;
	}
	json_t *e = json_pack("{s:{s:s, s:s, s:s, s:n}}", "error", "message", msg, "type", type,
	    "code", code, "param");
	hreq_stream_event(p->h, e);
	json_decref(e);
	hreq_stream_end(p->h, 0);
}

/* --- the guard's checks ------------------------------------------------------------------ */

/* the request's own copy of the images (it frees them; the proxy keeps its own for the
 * next checks), and its conversation's view of them */
static int
copy_images(struct request *r, const struct conv_image *img, size_t n, struct err *e)
{
	if ((r->img = calloc(n, sizeof(*r->img))) == NULL)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if ((r->img[i].data = malloc(img[i].len ? img[i].len : 1)) == NULL)
			return err_set(e, "out of memory");
		memcpy(r->img[i].data, img[i].data, img[i].len);
		r->img[i].len = img[i].len;
		r->n_img = i + 1;
	}
	r->conv.img = r->img;
	r->conv.n_img = r->n_img;
	return 0;
}

/* OP_CLASSIFY of the chat's conversation, plus the assistant's text so far when with_text */
static void
check(struct proxy *p, int with_text)
{
	struct request r;
	struct err e;

	memset(&r, 0, sizeof(r));
	r.op = OP_CLASSIFY;
	memcpy(r.policy, p->policy, sizeof(r.policy));
	set_id(&r, (unsigned)p->n_checks);
	int rc = proto_chat_conv(&p->chat, &r.conv, &e);
	if (rc == 0 && p->n_img > 0)
		rc = copy_images(&r, p->img, p->n_img, &e);
	if (rc == 0 && with_text && (rc = conv_add_msg(&r.conv, &e)) == 0) {
		r.conv.msg[r.conv.n - 1].assistant = 1;	/* checked as the response */
		rc = conv_add_part(&r.conv, p->text.p ? p->text.p : "", p->text.n, &e);
	}
	if (rc == -1) {
		proto_request_free(&r);
		fail(p, 500, "server_error", "internal", e.msg);
		return;
	}
	p->checking = 1;
	p->check_len = p->text.n;
	p->tokens_pending = 0;
	p->n_checks++;
	request_handle(hreq_conn(p->h), &r);	/* takes r's contents; may answer at once */
}

static void start_upstream(struct proxy *p);

/* what is due now: a check of what is held, or the end */
static void
progress(struct proxy *p)
{
	if (p->ended || p->checking || p->mode == UP_WAIT)
		return;
	if (p->up_done) {
		if (p->text.n > p->passed || p->resp_verdict == NULL) {
			if (p->text.n > 0) {
				check(p, 1);
				return;
			}
		}
		finish(p, p->finish[0] ? p->finish : "stop", 0);
		return;
	}
	if (p->tokens_pending >= p->s->cfg->check_every)
		check(p, 1);
}

static void
release(struct proxy *p)
{
	if (p->stream && p->passed > p->released) {
		stream_start(p);
		send_delta(p, p->text.p + p->released, p->passed - p->released);
	}
	if (p->stream)
		p->released = p->passed;
}

static void
on_ok(struct hreq *h, const struct request *r, const char *key, const json_t *body)
{
	struct proxy *p = hreq_arg(h);

	(void)r;
	if (p->ended || p->gone || strcmp(key, "verdict") != 0)
		return;
	p->checking = 0;
	if (p->req_verdict == NULL) {	/* the request check */
		p->req_verdict = json_deep_copy(body);
		if (verdict_blocks(body)) {
			p->s->st.upstream_blocked_requests++;
			finish(p, "content_filter", 1);
			return;
		}
		start_upstream(p);
		return;
	}
	json_decref(p->resp_verdict);
	p->resp_verdict = json_deep_copy(body);
	if (verdict_blocks(body)) {
		p->s->st.stream_blocks++;
		finish(p, "content_filter", 1);	/* closes the upstream first */
		return;
	}
	p->passed = p->check_len;
	release(p);
	progress(p);
}

static void
on_error(struct hreq *h, const struct request *r, enum proto_status st, const char *msg)
{
	struct proxy *p = hreq_arg(h);

	(void)r;
	if (p->ended || p->gone)
		return;
	p->checking = 0;
	close_upstream(p);
	if (!p->started) {
		p->ended = 1;
		hreq_error_status(h, st, msg);	/* held text is never released */
		return;
	}
	fail(p, 500, "server_error", proto_status_code(st), msg);
}

static void
on_gone(struct hreq *h)
{
	struct proxy *p = hreq_arg(h);

	p->gone = 1;
	close_upstream(p);
}

static void
on_free(struct hreq *h)
{
	struct proxy *p = hreq_arg(h);

	close_upstream(p);
	json_decref(p->body);
	chat_free(&p->chat);
	for (size_t i = 0; i < p->n_img; i++)
		free(p->img[i].data);
	free(p->img);
	sse_free(p->sse);
	buf_free(&p->raw);
	buf_free(&p->text);
	json_decref(p->usage);
	json_decref(p->req_verdict);
	json_decref(p->resp_verdict);
	free(p);
}

static const struct hreq_ops proxy_ops = { on_ok, on_error, on_gone, on_free };

/* --- the upstream's answer --------------------------------------------------------------- */

static void
add_text(struct proxy *p, const char *t, size_t n)
{
	struct tokvec ids = { 0 };
	struct err e;

	if (n == 0)
		return;
	buf_add(&p->text, t, n);
	/* the guard's own tokens decide when to check (a piece's count; a token across two
	 * pieces counts twice, which only checks a little sooner) */
	if (tok_encode(model_tok(p->s->model), t, n, 0, &ids, &e) == 0)
		p->tokens_pending += (int)ids.n;
	else
		p->tokens_pending += (int)(n / 4 + 1);
	tokvec_free(&ids);
}

/* one chat.completion.chunk (or a chat.completion's choice): its text, finish, usage */
static void
take_choice(struct proxy *p, const json_t *o, const char *field)
{
	json_t *ch = json_array_get(json_object_get(o, "choices"), 0);
	json_t *d = json_object_get(ch, field);
	json_t *c = json_object_get(d, "content");
	const char *fr = json_string_value(json_object_get(ch, "finish_reason"));
	const char *m = json_string_value(json_object_get(o, "model"));
	json_t *u = json_object_get(o, "usage");

	if (json_is_string(c))
		add_text(p, json_string_value(c), json_string_length(c));
	if (fr)
		snprintf(p->finish, sizeof(p->finish), "%s", fr);
	if (m && m[0] && strlen(m) < sizeof(p->model))
		snprintf(p->model, sizeof(p->model), "%s", m);
	if (json_is_object(u)) {
		json_decref(p->usage);
		p->usage = json_deep_copy(u);
	}
}

static int
on_event(void *arg, const struct sse_event *ev, struct err *e)
{
	struct proxy *p = arg;
	json_error_t je;

	if (p->up_done)
		return 0;
	if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
		p->up_done = 1;
		return 0;
	}
	json_t *o = json_loadb(ev->data, ev->data_len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(o)) {
		json_decref(o);
		return err_set(e, "the upstream sent an event that is not a JSON object (offset %zu: "
		    "%s)", sse_offset(p->sse), je.text);
	}
	json_t *er = json_object_get(o, "error");
	if (er != NULL) {
		const char *m = json_string_value(json_object_get(er, "message"));
		err_set(e, "the upstream failed mid-stream: %.300s", m ? m : "(no message)");
		json_decref(o);
		return -1;
	}
	take_choice(p, o, "delta");
	json_decref(o);
	return 0;
}

static void
up_head(void *arg, int status, const char *ctype)
{
	struct proxy *p = arg;

	p->up_status = status;
	if (status < 200 || status > 299)
		p->mode = UP_ERROR;
	else if (ctype && strncmp(ctype, "text/event-stream", 17) == 0)
		p->mode = UP_STREAM;
	else
		p->mode = UP_JSON;	/* a server that ignored stream: true */
	/* the client's stream starts with the first text a check passed: until then a failure
	 * is still a plain HTTP error, and a long wait (a slow upstream's prompt) is not a
	 * silent stream the HTTP front's timeout would end */
}

static void
up_failed(struct proxy *p, int status, const char *code, const char *msg)
{
	p->s->st.upstream_errors++;
	fail(p, status, "upstream_error", code, msg);
}

static void
up_data(void *arg, const char *d, size_t n)
{
	struct proxy *p = arg;
	struct err e;

	if (p->ended)
		return;
	if (p->mode != UP_STREAM) {
		buf_add(&p->raw, d, n);	/* bounded by upstream.max_response_bytes */
		return;
	}
	if (sse_feed(p->sse, d, n, on_event, p, &e) == -1) {
		up_failed(p, 502, "upstream_bad_response", e.msg);
		return;
	}
	progress(p);
}

static void
up_done(void *arg)
{
	struct proxy *p = arg;
	char msg[600];

	if (p->ended)
		return;
	close_upstream(p);
	if (p->mode == UP_ERROR) {
		json_t *o = json_loadb(p->raw.p ? p->raw.p : "", p->raw.n, 0, NULL);
		const char *m = json_string_value(json_object_get(json_object_get(o, "error"),
		    "message"));
		snprintf(msg, sizeof(msg), "the upstream answered %d: %.400s", p->up_status,
		    m ? m : "(no message)");
		json_decref(o);
		/* its complaints about the request are the client's to see; its own failures 502 */
		if (p->up_status >= 400 && p->up_status <= 499 && p->up_status != 401 &&
		    p->up_status != 403 && p->up_status != 407)
			up_failed(p, p->up_status, "upstream_refused", msg);
		else
			up_failed(p, 502, "upstream_status", msg);
		return;
	}
	if (p->mode == UP_JSON) {
		json_t *o = json_loadb(p->raw.p ? p->raw.p : "", p->raw.n, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(o) || !json_is_object(json_array_get(json_object_get(o, "choices"), 0))) {
			json_decref(o);
			up_failed(p, 502, "upstream_bad_response", "the upstream's answer is neither an "
			    "event stream nor a chat.completion object");
			return;
		}
		take_choice(p, o, "message");
		json_decref(o);
	}
	p->up_done = 1;
	progress(p);
}

static void
up_fail(void *arg, const struct upstream_error *err)
{
	struct proxy *p = arg;

	if (p->ended)
		return;
	up_failed(p, err->http_status, err->code, err->msg);
}

static const struct upstream_cbs up_cbs = { up_head, up_data, up_done, up_fail };

/* the client's body as the upstream gets it: stream: true, the model replaced if
 * upstream.model says so, guardd's own extension left out */
static void
start_upstream(struct proxy *p)
{
	const struct config *c = p->s->cfg;
	struct upstream_opts o = {
		.url = c->upstream_url, .ca_file = c->upstream_ca_file, .verify = c->upstream_verify,
		.timeout_ms = c->upstream_timeout_ms, .connect_timeout_ms = c->upstream_connect_timeout_ms,
		.max_response_bytes = c->upstream_max_response_bytes,
	};
	char *key = NULL;
	struct err e;

	json_t *out = json_deep_copy(p->body);
	json_object_del(out, "guardd");
	json_object_set_new(out, "stream", json_true());
	/* the usage comes last in a stream only when asked; a completion always has one */
	json_t *so = json_object_get(out, "stream_options");
	if (!json_is_object(so))
		json_object_set_new(out, "stream_options", (so = json_object()));
	json_object_set_new(so, "include_usage", json_true());
	if (c->upstream_model)
		json_object_set_new(out, "model", json_string(c->upstream_model));
	char *text = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	if (c->upstream_api_key_file && (key = upstream_read_key(c->upstream_api_key_file, &e)) == NULL) {
		free(text);
		fail(p, 500, "server_error", "internal", e.msg);
		return;
	}
	o.api_key = key;
	p->sse = sse_new(c->upstream_max_response_bytes);
	p->s->st.upstream_requests++;
	if (text == NULL || p->sse == NULL)
		err_set(&e, "out of memory");
	else
		p->up = upstream_post(p->s->base, &o, "/chat/completions", text, strlen(text), &up_cbs,
		    p, &e);
	free(text);
	free(key);
	if (p->up == NULL)
		up_failed(p, 502, "upstream_unreachable", e.msg);
}

/* --- the route --------------------------------------------------------------------------- */

/* OpenAI fields the guarded forward cannot honour: their output would pass unchecked */
static const char *const refused[] = { "tools", "tool_choice", "functions", "function_call",
	"parallel_tool_calls", "logprobs", "top_logprobs", "audio", NULL };

void
http_route_proxy(struct hreq *h)
{
	struct server *s = hreq_server(h);
	json_t *body = hreq_body_json(h), *v;	/* borrowed: the hreq's */
	struct request r;
	struct err e;
	char msg[256];

	if (body == NULL)
		return;	/* answered */
	struct proxy *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		hreq_error(h, 500, "server_error", "internal", "out of memory");
		return;
	}
	p->h = h;
	p->s = s;
	p->pol = -1;
	p->body = json_incref(body);
	hreq_set_ops(h, &proxy_ops, p);
	if (hreq_policy(h, body, p->policy, sizeof(p->policy)) == -1)
		return;	/* answered */
	for (int i = 0; refused[i]; i++)
		if ((v = json_object_get(body, refused[i])) != NULL && !json_is_null(v) &&
		    !json_is_false(v)) {
			snprintf(msg, sizeof(msg), "%s: not supported by guardd's proxy (what it would "
			    "return could not be checked)", refused[i]);
			hreq_error(h, 400, "invalid_request_error", "unsupported_field", msg);
			return;
		}
	if ((v = json_object_get(body, "n")) != NULL && !json_is_null(v) &&
	    !(json_is_integer(v) && json_integer_value(v) == 1)) {
		hreq_error(h, 400, "invalid_request_error", "unsupported_field",
		    "n: only 1 is supported (one answer, checked)");
		return;
	}
	if ((v = json_object_get(body, "stream")) != NULL && !json_is_boolean(v) && !json_is_null(v)) {
		hreq_error(h, 400, "invalid_request_error", "bad_request", "stream: expected a boolean");
		return;
	}
	p->stream = json_is_true(v);
	p->include_usage = json_is_true(json_object_get(json_object_get(body, "stream_options"),
	    "include_usage"));
	v = json_object_get(body, "model");
	if (v != NULL && !json_is_string(v)) {
		hreq_error(h, 400, "invalid_request_error", "bad_request", "model: expected a string");
		return;
	}
	snprintf(p->model, sizeof(p->model), "%s", s->cfg->upstream_model ? s->cfg->upstream_model :
	    v && json_string_length(v) < sizeof(p->model) ? json_string_value(v) : "upstream");
	/* the messages through the protocol's one schema, as a chat: every front accepts the
	 * same conversations */
	json_t *q = json_pack("{s:s, s:O?}", "op", "chat", "messages", json_object_get(body, "messages"));
	json_t *msgs = json_object_get(q, "messages"), *m;
	size_t i;
	if (json_is_array(msgs)) {	/* OpenAI's "developer" is the system prompt of newer models */
		json_t *copy = json_deep_copy(msgs);
		json_array_foreach(copy, i, m) {
			const char *role = json_string_value(json_object_get(m, "role"));
			if (role && strcmp(role, "developer") == 0)
				json_object_set_new(m, "role", json_string("system"));
		}
		json_object_set_new(q, "messages", copy);
	}
	struct proto_limits lim = { s->cfg->max_request_bytes, s->cfg->max_messages,
	    s->cfg->max_image_bytes, s->cfg->max_images };
	enum proto_status st = proto_request_from_json(q, &lim, &r, &e);
	json_decref(q);
	if (st != PROTO_OK) {
		proto_request_free(&r);
		hreq_error_status(h, st, e.msg);
		return;
	}
	if (r.n_img > 0 && model_image_token(s->model) < 0) {
		/* the guard would judge the text without the image */
		proto_request_free(&r);
		hreq_error_status(h, PROTO_BAD_REQUEST, "messages: image parts are not forwarded: "
		    "the guard of this guardd reads text only (an image needs Llama Guard 3 "
		    "11B-Vision)");
		return;
	}
	p->chat = r.chat;	/* kept for the checks; the rest goes */
	memset(&r.chat, 0, sizeof(r.chat));
	p->img = r.img;		/* the bytes too, judged by every check */
	p->n_img = r.n_img;
	r.img = NULL;
	r.n_img = 0;
	r.conv.img = NULL;
	r.conv.n_img = 0;
	proto_request_free(&r);
	p->pol = p->policy[0] ? config_policy(s->cfg, p->policy) : 0;
	http_random_id(p->id, sizeof(p->id), "chatcmpl-");
	p->created = (long)time(NULL);
	check(p, 0);	/* the request first; its verdict starts the upstream */
}
