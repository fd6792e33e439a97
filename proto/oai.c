/* oai.c - OpenAI's moderation and chat-completions bodies in, OpenAI's objects out. A body
 * is translated field by field into a JSON object of the protocol's own schema and handed to
 * proto_request_from_json, so HTTP and msgpack requests pass the same checks; what OpenAI
 * has and guardd cannot honour is refused here, naming the field. */
#include "proto/oai.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE: case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static enum proto_status
bad(struct oai_opts *o, const char *code, enum proto_status st)
{
	o->code = code;
	return st;
}

/* The body's "model": absent, or a string. */
static int
model_of(const json_t *body, struct oai_opts *o, struct err *e)
{
	const json_t *v = json_object_get(body, "model");

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return err_set(e, "model: expected a model name, got %s", kind(v));
	o->model = json_string_value(v);
	return 0;
}

/* The schema's common fields: id, op, policy, and guardd.deadline_ms. The guardd extension
 * holds only what guardd reads from it (the policy is taken by the HTTP layer). */
static json_t *
schema_new(const json_t *body, const char *op, const char *policy, struct err *e)
{
	const json_t *g = json_object_get(body, "guardd"), *v;
	const char *k;
	json_t *s;

	if (g != NULL && !json_is_object(g)) {
		err_set(e, "guardd: expected an object, got %s", kind(g));
		return NULL;
	}
	s = json_pack("{s:i, s:s}", "id", 0, "op", op);
	if (s == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	if (policy != NULL && policy[0])
		json_object_set_new(s, "policy", json_string(policy));
	if (g != NULL)
		json_object_foreach((json_t *)g, k, v) {
			if (strcmp(k, "deadline_ms") == 0)
				json_object_set(s, "deadline_ms", (json_t *)v);
			else if (strcmp(k, "policy") != 0) {
				err_set(e, "guardd.%.64s: unknown field (policy, deadline_ms)", k);
				json_decref(s);
				return NULL;
			}
		}
	return s;
}

/* A proto error about messages[0].content, as the input field the client wrote. */
static void
rename_field(struct err *e, const char *where)
{
	static const char pre[] = "messages[0].content";
	struct err t;

	if (strncmp(e->msg, pre, sizeof(pre) - 1) != 0)
		return;
	snprintf(t.msg, sizeof(t.msg), "%s%s", where, e->msg + sizeof(pre) - 1);
	*e = t;
}

/* One input: a string, or the array of text and image_url parts that is the input. */
static int
input_check(const json_t *in, const char *where, struct err *e)
{
	const json_t *p, *t;
	size_t k;

	if (json_is_string(in))
		return 0;
	if (!json_is_array(in))
		return err_set(e, "%s: expected a string or an array, got %s", where, kind(in));
	json_array_foreach(in, k, p) {
		if (!json_is_object(p))
			return err_set(e, "%s[%zu]: expected a string or a {\"type\": \"text\", \"text\"} "
			    "object, got %s", where, k, kind(p));
		t = json_object_get(p, "type");
		if (json_is_string(t) && strcmp(json_string_value(t), "image_url") == 0 &&
		    json_string_length(t) == 9)
			continue;	/* checked and taken by proto/imgpart.c */
		if (!json_is_string(t) || strcmp(json_string_value(t), "text") != 0 ||
		    json_string_length(t) != 4)
			return err_set(e, "%s[%zu].type: only \"text\" and \"image_url\" inputs are "
			    "supported", where, k);
		if (!json_is_string(json_object_get(p, "text")))
			return err_set(e, "%s[%zu].text: expected a string", where, k);
	}
	return 0;
}

enum proto_status
oai_mod_parse(const json_t *body, const char *policy, const struct proto_limits *l,
    struct request **out, size_t *n, struct oai_opts *o, struct err *e)
{
	const json_t *in;
	json_t *items, *s = NULL;
	struct request *r = NULL;
	enum proto_status st = PROTO_BAD_REQUEST;
	size_t i, m = 0;
	char where[32];

	memset(o, 0, sizeof(*o));
	*out = NULL;
	*n = 0;
	if (!json_is_object(body)) {
		err_set(e, "the body must be a JSON object, got %s", kind(body));
		return bad(o, "bad_request", st);
	}
	if (model_of(body, o, e) == -1)
		return bad(o, "bad_request", st);
	if ((in = json_object_get(body, "input")) == NULL) {
		err_set(e, "input: missing");
		return bad(o, "bad_request", st);
	}
	/* a string or an array of text parts is one input; an array of strings is a batch */
	items = json_array();
	if (json_is_string(in) || (json_is_array(in) && json_array_size(in) > 0 &&
	    json_is_object(json_array_get(in, 0))))
		json_array_append(items, (json_t *)in);
	else if (json_is_array(in)) {
		const json_t *v;
		json_array_foreach(in, i, v) {
			if (!json_is_string(v)) {
				err_set(e, "input[%zu]: expected a string (an array of strings), got %s", i,
				    kind(v));
				goto fail;
			}
			json_array_append(items, (json_t *)v);
		}
	} else {
		err_set(e, "input: expected a string, an array of strings or an array of text "
		    "parts, got %s", kind(in));
		goto fail;
	}
	m = json_array_size(items);
	if (m == 0) {
		err_set(e, "input: an empty array (nothing to classify)");
		goto fail;
	}
	if (m > OAI_MAX_INPUTS) {
		err_set(e, "input: %zu inputs, more than %d in one request", m, OAI_MAX_INPUTS);
		goto fail;
	}
	if ((r = calloc(m, sizeof(*r))) == NULL) {
		err_set(e, "out of memory");
		st = PROTO_INTERNAL;
		goto fail;
	}
	for (i = 0; i < m; i++) {
		const json_t *one = json_array_get(items, i);
		if (json_is_array(in) && !json_is_array(one))
			snprintf(where, sizeof(where), "input[%zu]", i);
		else
			snprintf(where, sizeof(where), "input");
		if (input_check(one, where, e) == -1)
			goto fail;
		if ((s = schema_new(body, "classify", policy, e)) == NULL)
			goto fail;
		json_object_set_new(s, "id", json_integer((json_int_t)i));
		json_object_set_new(s, "messages", json_pack("[{s:s, s:O}]", "role", "user",
		    "content", one));
		st = proto_request_from_json(s, l, &r[i], e);
		json_decref(s);
		if (st != PROTO_OK) {
			rename_field(e, where);
			proto_request_free(&r[i]);
			memset(&r[i], 0, sizeof(r[i]));
			goto fail;
		}
	}
	json_decref(items);
	*out = r;
	*n = m;
	return PROTO_OK;
fail:
	if (st == PROTO_OK)
		st = PROTO_BAD_REQUEST;
	oai_requests_free(r, m);
	json_decref(items);
	return bad(o, proto_status_code(st), st);
}

void
oai_requests_free(struct request *r, size_t n)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		proto_request_free(&r[i]);
	free(r);
}

static int
has_code(const json_t *arr, const char *code)
{
	size_t i;
	const json_t *v;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), code) == 0)
			return 1;
	return 0;
}

json_t *
oai_mod_result(const json_t *verdict, const char *const *codes, size_t n_codes)
{
	const json_t *trig = json_object_get(verdict, "categories");
	const json_t *sc = json_object_get(verdict, "category_scores");
	json_t *cats = json_object(), *scores = json_object(), *types = json_object();
	const json_t *v;
	const char *k;
	size_t i;

	for (i = 0; i < n_codes; i++) {
		json_object_set_new(cats, codes[i], json_boolean(has_code(trig, codes[i])));
		v = json_object_get(sc, codes[i]);
		json_object_set_new(scores, codes[i], json_is_number(v) ? json_deep_copy(v) :
		    json_null());
	}
	/* codes the verdict names beyond the list (the policy changed meanwhile): kept */
	json_array_foreach(trig, i, v)
		if (json_is_string(v) && json_object_get(cats, json_string_value(v)) == NULL) {
			json_object_set_new(cats, json_string_value(v), json_true());
			json_object_set_new(scores, json_string_value(v), json_null());
		}
	json_object_foreach((json_t *)sc, k, v)
		if (json_is_number(v)) {
			if (json_object_get(cats, k) == NULL)
				json_object_set_new(cats, k, json_false());
			json_object_set_new(scores, k, json_deep_copy(v));
		}
	json_object_foreach(cats, k, v)
		json_object_set_new(types, k, json_pack("[s]", "text"));
	return json_pack("{s:b, s:o, s:o, s:o, s:O}", "flagged",
	    json_is_true(json_object_get(verdict, "flagged")),
	    "categories", cats, "category_scores", scores, "category_applied_input_types", types,
	    "guardd", verdict);
}

json_t *
oai_mod_response(const char *id, const char *model, json_t *results)
{
	return json_pack("{s:s, s:s, s:o}", "id", id, "model", model, "results", results);
}

/* --- chat ---------------------------------------------------------------------------------- */

/* Whether a field guardd cannot honour was given with a value other than the harmless ones. */
static int
refused(const json_t *body, const char *key, struct err *e, const char *why)
{
	const json_t *v = json_object_get(body, key);

	if (v == NULL || json_is_null(v))
		return 0;
	return err_set(e, "%s: %s", key, why);
}

static int
unsupported(const json_t *b, struct err *e)
{
	const json_t *v;

	if ((v = json_object_get(b, "n")) != NULL && !json_is_null(v) &&
	    !(json_is_integer(v) && json_integer_value(v) == 1))
		return err_set(e, "n: only one choice per request is supported (n: 1)");
	if ((v = json_object_get(b, "tools")) != NULL && !json_is_null(v) &&
	    !(json_is_array(v) && json_array_size(v) == 0))
		return err_set(e, "tools: tool calling is not supported");
	if ((v = json_object_get(b, "functions")) != NULL && !json_is_null(v) &&
	    !(json_is_array(v) && json_array_size(v) == 0))
		return err_set(e, "functions: function calling is not supported");
	const char *const calls[] = { "tool_choice", "function_call" };
	for (int i = 0; i < 2; i++)
		if ((v = json_object_get(b, calls[i])) != NULL && !json_is_null(v) &&
		    !(json_is_string(v) && (strcmp(json_string_value(v), "none") == 0 ||
		    strcmp(json_string_value(v), "auto") == 0)))
			return err_set(e, "%s: tool calling is not supported (\"none\" or \"auto\" only)",
			    calls[i]);
	if ((v = json_object_get(b, "logprobs")) != NULL && !json_is_null(v) && !json_is_false(v))
		return err_set(e, "logprobs: log probabilities are not returned (false only)");
	if (refused(b, "top_logprobs", e, "log probabilities are not returned") == -1)
		return -1;
	if ((v = json_object_get(b, "response_format")) != NULL && !json_is_null(v)) {
		const json_t *t = json_is_object(v) ? json_object_get(v, "type") : NULL;
		if (!json_is_string(t) || strcmp(json_string_value(t), "text") != 0)
			return err_set(e, "response_format: only {\"type\": \"text\"} is supported");
	}
	if ((v = json_object_get(b, "logit_bias")) != NULL && !json_is_null(v) &&
	    !(json_is_object(v) && json_object_size(v) == 0))
		return err_set(e, "logit_bias: not supported");
	const char *const pen[] = { "frequency_penalty", "presence_penalty" };
	for (int i = 0; i < 2; i++)
		if ((v = json_object_get(b, pen[i])) != NULL && !json_is_null(v) &&
		    !(json_is_number(v) && json_number_value(v) == 0))
			return err_set(e, "%s: not supported (0 only; guardd has repeat_penalty)", pen[i]);
	if ((v = json_object_get(b, "modalities")) != NULL && !json_is_null(v)) {
		size_t i;
		const json_t *m;
		if (!json_is_array(v))
			return err_set(e, "modalities: expected [\"text\"]");
		json_array_foreach(v, i, m)
			if (!json_is_string(m) || strcmp(json_string_value(m), "text") != 0)
				return err_set(e, "modalities[%zu]: only \"text\" is supported", i);
	}
	if (refused(b, "audio", e, "audio output is not supported") == -1 ||
	    refused(b, "prediction", e, "predicted outputs are not supported") == -1 ||
	    refused(b, "reasoning_effort", e, "the model does not reason") == -1 ||
	    refused(b, "web_search_options", e, "web search is not supported") == -1)
		return -1;
	return 0;
}

/* the messages, with OpenAI's "developer" role read as "system" */
static json_t *
messages_of(const json_t *msgs)
{
	json_t *out, *m;
	const json_t *v;
	size_t i;

	if (!json_is_array(msgs))
		return json_incref((json_t *)msgs);	/* the schema names the error */
	out = json_array();
	json_array_foreach(msgs, i, v) {
		const json_t *role = json_is_object(v) ? json_object_get(v, "role") : NULL;
		if (json_is_string(role) && strcmp(json_string_value(role), "developer") == 0 &&
		    json_string_length(role) == 9) {
			m = json_copy((json_t *)v);
			json_object_set_new(m, "role", json_string("system"));
			json_array_append_new(out, m);
		} else
			json_array_append(out, (json_t *)v);
	}
	return out;
}

enum proto_status
oai_chat_parse(const json_t *body, const char *policy, const struct proto_limits *l,
    struct request *r, struct oai_opts *o, struct err *e)
{
	static const char *const same[] = { "stream", "max_tokens", "temperature", "top_p",
		"seed", "stop", "top_k", "min_p", "repeat_penalty", "add_generation_prompt" };
	const json_t *v, *mct;
	json_t *s;
	enum proto_status st;

	memset(o, 0, sizeof(*o));
	memset(r, 0, sizeof(*r));
	if (!json_is_object(body)) {
		err_set(e, "the body must be a JSON object, got %s", kind(body));
		return bad(o, "bad_request", PROTO_BAD_REQUEST);
	}
	if (model_of(body, o, e) == -1)
		return bad(o, "bad_request", PROTO_BAD_REQUEST);
	if (unsupported(body, e) == -1)
		return bad(o, "unsupported_parameter", PROTO_BAD_REQUEST);
	if ((v = json_object_get(body, "messages")) == NULL) {
		err_set(e, "messages: missing");
		return bad(o, "bad_request", PROTO_BAD_REQUEST);
	}
	if ((s = schema_new(body, "chat", policy, e)) == NULL)
		return bad(o, "bad_request", PROTO_BAD_REQUEST);
	json_object_set_new(s, "messages", messages_of(v));
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		if ((v = json_object_get(body, same[i])) != NULL && !json_is_null(v))
			json_object_set(s, same[i], (json_t *)v);
	/* max_completion_tokens is OpenAI's newer name for max_tokens */
	if ((mct = json_object_get(body, "max_completion_tokens")) != NULL && !json_is_null(mct)) {
		v = json_object_get(s, "max_tokens");
		if (v != NULL && !json_equal((json_t *)v, (json_t *)mct)) {
			err_set(e, "max_completion_tokens: differs from max_tokens (give one)");
			json_decref(s);
			return bad(o, "bad_request", PROTO_BAD_REQUEST);
		}
		json_object_set(s, "max_tokens", (json_t *)mct);
	}
	st = proto_request_from_json(s, l, r, e);
	json_decref(s);
	if (st != PROTO_OK)
		return bad(o, proto_status_code(st), st);
	o->stream = r->copt.stream;
	if (o->stream && (v = json_object_get(body, "stream_options")) != NULL &&
	    !json_is_null(v)) {
		const json_t *iu = json_is_object(v) ? json_object_get(v, "include_usage") : NULL;
		if (!json_is_object(v) || (iu != NULL && !json_is_boolean(iu))) {
			err_set(e, "stream_options: expected {\"include_usage\": true|false}");
			return bad(o, "bad_request", PROTO_BAD_REQUEST);
		}
		o->include_usage = json_is_true(iu);
	}
	return PROTO_OK;
}

/* --- chat answers -------------------------------------------------------------------------- */

static json_t *
object_new(const struct oai_ids *ids, const char *type)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:n}", "id", ids->id, "object", type, "created",
	    (json_int_t)ids->created, "model", ids->model, "system_fingerprint");
}

static int
blocked(const json_t *a)
{
	const json_t *f = json_object_get(a, "finish_reason");

	return json_is_string(f) && strcmp(json_string_value(f), "content_filter") == 0;
}

static json_t *
usage_of(const json_t *a)
{
	const json_t *u = json_object_get(a, "usage");
	json_int_t p = json_integer_value(json_object_get(u, "prompt_tokens"));
	json_int_t c = json_integer_value(json_object_get(u, "completion_tokens"));

	return json_pack("{s:I, s:I, s:I}", "prompt_tokens", p, "completion_tokens", c,
	    "total_tokens", p + c);
}

/* the guardd extension: both verdicts, the guard's checks, the full usage, the refusal */
static json_t *
ext_of(const json_t *a)
{
	json_t *g = json_object();
	const char *const keep[] = { "request_verdict", "response_verdict", "checks", "usage",
		"refusal" };

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		json_t *v = json_object_get(a, keep[i]);
		if (v != NULL)
			json_object_set(g, keep[i], v);
	}
	return g;
}

static const char *
finish_of(const json_t *a)
{
	const json_t *f = json_object_get(a, "finish_reason");
	const char *s = json_is_string(f) ? json_string_value(f) : "stop";

	return strcmp(s, "length") == 0 || strcmp(s, "content_filter") == 0 ? s : "stop";
}

json_t *
oai_chunk(const struct oai_ids *ids, const char *text, size_t len, int role)
{
	json_t *o = object_new(ids, "chat.completion.chunk");
	json_t *d = json_pack("{s:s%}", "content", text, len);

	if (role)
		json_object_set_new(d, "role", json_string("assistant"));
	json_object_set_new(o, "choices", json_pack("[{s:i, s:o, s:n, s:n}]", "index", 0, "delta",
	    d, "logprobs", "finish_reason"));
	return o;
}

json_t *
oai_chunk_final(const struct oai_ids *ids, const json_t *a)
{
	json_t *o = object_new(ids, "chat.completion.chunk");
	json_t *d = json_object();

	if (blocked(a)) {
		const json_t *ref = json_object_get(a, "refusal");
		json_object_set_new(d, "content", json_string(json_is_string(ref) ?
		    json_string_value(ref) : ""));
	}
	json_object_set_new(o, "choices", json_pack("[{s:i, s:o, s:n, s:s}]", "index", 0, "delta",
	    d, "logprobs", "finish_reason", finish_of(a)));
	json_object_set_new(o, "usage", usage_of(a));
	json_object_set_new(o, "guardd", ext_of(a));
	return o;
}

json_t *
oai_chunk_usage(const struct oai_ids *ids, const json_t *a)
{
	json_t *o = object_new(ids, "chat.completion.chunk");

	json_object_set_new(o, "choices", json_array());
	json_object_set_new(o, "usage", usage_of(a));
	return o;
}

json_t *
oai_completion(const struct oai_ids *ids, const json_t *a)
{
	json_t *o = object_new(ids, "chat.completion");
	json_t *msg;

	if (blocked(a)) {
		const json_t *ref = json_object_get(a, "refusal");
		const char *t = json_is_string(ref) ? json_string_value(ref) : "";
		msg = json_pack("{s:s, s:s, s:s}", "role", "assistant", "content", t, "refusal", t);
	} else {
		const json_t *t = json_object_get(a, "text");
		msg = json_pack("{s:s, s:s%, s:n}", "role", "assistant", "content",
		    json_is_string(t) ? json_string_value(t) : "",
		    json_is_string(t) ? json_string_length(t) : (size_t)0, "refusal");
	}
	json_object_set_new(o, "choices", json_pack("[{s:i, s:o, s:n, s:s}]", "index", 0,
	    "message", msg, "logprobs", "finish_reason", finish_of(a)));
	json_object_set_new(o, "usage", usage_of(a));
	json_object_set_new(o, "guardd", ext_of(a));
	return o;
}

void
oai_model_id(const char *path, char *out, size_t n)
{
	size_t end = strlen(path), start;

	if (n == 0)
		return;
	while (end > 1 && path[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	size_t len = end - start < n - 1 ? end - start : n - 1;
	memcpy(out, path + start, len);
	out[len] = '\0';
}
