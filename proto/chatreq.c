/* chatreq.c - the fields of a chat request: the chat itself (generator/chat.c decodes it,
 * refusing tools), sampling options checked against their ranges, stop strings, and the
 * conversation the guard sees. Every error names the field. */
#include "proto/chatreq.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

static int
num(const json_t *o, const char *key, double lo, double hi, int *has, double *out,
    struct err *e)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL)
		return 0;
	if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < lo ||
	    json_number_value(v) > hi)
		return err_set(e, "%s: expected a number in [%g, %g]", key, lo, hi);
	*has = 1;
	*out = json_number_value(v);
	return 0;
}

static int
integer(const json_t *o, const char *key, json_int_t lo, json_int_t hi, int *has,
    json_int_t *out, struct err *e)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return err_set(e, "%s: expected an integer in [%lld, %lld]", key, (long long)lo,
		    (long long)hi);
	*has = 1;
	*out = json_integer_value(v);
	return 0;
}

static int
stop_one(struct chat_opts *c, const json_t *v, const char *where, struct err *e)
{
	size_t n;

	if (!json_is_string(v))
		return err_set(e, "%s: expected a string", where);
	n = json_string_length(v);
	if (n == 0 || n > PROTO_MAX_STOP_LEN || memchr(json_string_value(v), 0, n))
		return err_set(e, "%s: a stop string of 1 to %d bytes without NUL", where,
		    PROTO_MAX_STOP_LEN);
	memcpy(c->stop[c->n_stop], json_string_value(v), n);
	c->stop[c->n_stop][n] = '\0';
	c->n_stop++;
	return 0;
}

static int
stops(struct chat_opts *c, const json_t *o, struct err *e)
{
	json_t *v = json_object_get(o, "stop"), *s;
	size_t i;
	char where[32];

	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_string(v))
		return stop_one(c, v, "stop", e);
	if (!json_is_array(v))
		return err_set(e, "stop: expected a string or an array of strings");
	if (json_array_size(v) > PROTO_MAX_STOP)
		return err_set(e, "stop: at most %d strings", PROTO_MAX_STOP);
	json_array_foreach(v, i, s) {
		snprintf(where, sizeof(where), "stop[%zu]", i);
		if (stop_one(c, s, where, e) == -1)
			return -1;
	}
	return 0;
}

int
proto_chat_conv(const struct chat *ch, struct conv *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < ch->n; i++) {
		const struct chat_msg *m = &ch->msg[i];
		if (m->role == CHAT_SYSTEM) {
			if (m->n_images > 0) {	/* the guard would never see it */
				err_set(e, "messages[%zu]: an image part in a system message", i);
				goto fail;
			}
			continue;
		}
		if (conv_add_msg(out, e) == -1)
			goto fail;
		out->msg[out->n - 1].assistant = m->role == CHAT_ASSISTANT;
		out->msg[out->n - 1].n_images = m->n_images;	/* judged with their bytes */
		if (conv_add_part(out, m->text, m->len, e) == -1)
			goto fail;
	}
	if (out->n == 0) {
		err_set(e, "messages: no user message to assess");
		goto fail;
	}
	if (out->msg[out->n - 1].assistant) {
		err_set(e, "messages: the last message must be the user's (the generator answers it)");
		goto fail;
	}
	if (conv_check(out, e) == -1)
		goto fail;
	return 0;
fail:
	conv_free(out);
	return -1;
}

enum proto_status
chatreq_parse(const json_t *o, const struct proto_limits *l, struct request *r,
    struct err *e)
{
	struct chat_opts *c = &r->copt;
	json_t *v;
	json_int_t iv;

	if (json_object_get(o, "messages") == NULL) {
		err_set(e, "messages: required by chat");
		return PROTO_BAD_REQUEST;
	}
	if (chat_from_json(&r->chat, o, l->max_messages > 0 ? (size_t)l->max_messages : 0, e) == -1)
		return PROTO_BAD_REQUEST;
	if ((v = json_object_get(o, "stream")) != NULL) {
		if (!json_is_boolean(v)) {
			err_set(e, "stream: expected a boolean");
			return PROTO_BAD_REQUEST;
		}
		c->stream = json_is_true(v);
	}
	if (integer(o, "max_tokens", 1, 1 << 20, &c->has_max_tokens, &iv, e) == -1)
		return PROTO_BAD_REQUEST;
	if (c->has_max_tokens)
		c->max_tokens = (int)iv;
	if (integer(o, "top_k", 0, 1 << 20, &c->has_top_k, &iv, e) == -1)
		return PROTO_BAD_REQUEST;
	if (c->has_top_k)
		c->top_k = (int)iv;
	if (integer(o, "seed", 0, INT64_MAX, &c->has_seed, &iv, e) == -1)
		return PROTO_BAD_REQUEST;
	if (c->has_seed)
		c->seed = (uint64_t)iv;
	if (num(o, "temperature", 0, 10, &c->has_temperature, &c->temperature, e) == -1 ||
	    num(o, "top_p", 0, 1, &c->has_top_p, &c->top_p, e) == -1 ||
	    num(o, "min_p", 0, 1, &c->has_min_p, &c->min_p, e) == -1 ||
	    num(o, "repeat_penalty", 0, 10, &c->has_repeat_penalty, &c->repeat_penalty, e) == -1 ||
	    stops(c, o, e) == -1)
		return PROTO_BAD_REQUEST;
	if (proto_chat_conv(&r->chat, &r->conv, e) == -1)
		return PROTO_BAD_REQUEST;
	r->conv.img = r->img;
	r->conv.n_img = r->n_img;
	return PROTO_OK;
}
