/* request.c - the one request schema (proto_request_from_json), shared by the msgpack front
 * (proto_decode_msgpack: msgpack -> JSON with mpjson.c, then the schema) and JSON fronts.
 * Conversations are read by the classifier's own decoder, so every front accepts exactly
 * the same messages. */
#include "proto/proto.h"

#include <jansson.h>
#include <msgpack.h>
#include <string.h>

#include "proto/chatreq.h"
#include "proto/imgpart.h"
#include "proto/mp.h"
#include "proto/mpjson.h"

static int
key_is(const char *k, uint32_t n, const char *want)
{
	return strlen(want) == n && memcmp(k, want, n) == 0;
}

/* The raw msgpack bytes of the top-level `id` (the first one), read before anything else is
 * checked so that any error can still carry it. Stops quietly at whatever it cannot read:
 * the full decoder reports that. */
static void
id_scan(const unsigned char *p, size_t n, struct request *r)
{
	struct mp_cur c = { p, n, 0 };
	uint32_t m;

	if (mp_read_map(&c, &m) == -1)
		return;
	for (uint32_t i = 0; i < m; i++) {
		const char *k;
		uint32_t kl;
		if (mp_read_str(&c, &k, &kl) == -1)
			return;
		size_t start = c.off;
		enum mp_type t = mp_peek(&c);
		if (mp_skip(&c) == -1)
			return;
		if (!key_is(k, kl, "id"))
			continue;
		if ((t == MP_UINT || t == MP_INT || t == MP_NIL || t == MP_STR) &&
		    c.off - start <= PROTO_MAX_ID) {
			if (t == MP_STR) {	/* only valid text is echoed */
				struct mp_cur s = { p, c.off, start };
				const char *str;
				uint32_t len;
				if (mp_read_str(&s, &str, &len) == -1 || utf8_valid_prefix(str, len) != len)
					return;
			}
			memcpy(r->id, p + start, c.off - start);
			r->id_len = c.off - start;
		}
		return;
	}
}

/* A JSON id (integer, string or null) as msgpack bytes in r->id. */
static enum proto_status
id_pack(const json_t *id, struct request *r, struct err *e)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	enum proto_status st = PROTO_OK;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (json_is_integer(id))
		msgpack_pack_int64(&pk, json_integer_value(id));
	else if (json_is_string(id)) {
		msgpack_pack_str(&pk, json_string_length(id));
		msgpack_pack_str_body(&pk, json_string_value(id), json_string_length(id));
	} else
		msgpack_pack_nil(&pk);
	if (sb.size > PROTO_MAX_ID) {
		err_set(e, "id: longer than %d bytes", PROTO_MAX_ID - 3);
		st = PROTO_BAD_REQUEST;
	} else {
		memcpy(r->id, sb.data, sb.size);
		r->id_len = sb.size;
	}
	msgpack_sbuffer_destroy(&sb);
	return st;
}

static const char *
type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "a map";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a float";
	case JSON_TRUE: case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static enum proto_status
bad(struct err *e, const char *fmt, const char *what, const json_t *got)
{
	err_set(e, fmt, what, type_name(got));
	return PROTO_BAD_REQUEST;
}

/* classify's conversation or chat's messages, image parts as {"type": "image"} */
static enum proto_status
messages(const json_t *o, const struct proto_limits *l, struct request *r, struct err *e)
{
	if (r->op == OP_CHAT)
		return chatreq_parse(o, l, r, e);
	if (json_object_get(o, "messages") == NULL) {
		err_set(e, "messages: required by classify");
		return PROTO_BAD_REQUEST;
	}
	if (conv_from_json_vision(&r->conv, o, l->max_messages > 0 ? (size_t)l->max_messages :
	    SIZE_MAX, r->n_img, e) == -1)
		return PROTO_BAD_REQUEST;
	r->conv.img = r->img;
	r->conv.n_img = r->n_img;
	return PROTO_OK;
}

/* The schema; keep_id: the id bytes were taken from the frame already (only checked here). */
static enum proto_status
schema(const json_t *o, const struct proto_limits *l, struct request *r, int keep_id,
    struct err *e)
{
	json_t *v;
	enum proto_status st;

	if (!json_is_object(o))
		return bad(e, "%s must be a map, got %s", "a request", o);
	if ((v = json_object_get(o, "id")) != NULL) {
		if (!json_is_integer(v) && !json_is_string(v) && !json_is_null(v))
			return bad(e, "%s: expected an integer, a string or nil, got %s", "id", v);
		if (json_is_string(v) && json_string_length(v) > PROTO_MAX_ID - 3) {
			err_set(e, "id: longer than %d bytes", PROTO_MAX_ID - 3);
			return PROTO_BAD_REQUEST;
		}
		if (!keep_id && (st = id_pack(v, r, e)) != PROTO_OK)
			return st;
	}
	if ((v = json_object_get(o, "op")) == NULL) {
		err_set(e, "op: missing");
		return PROTO_BAD_REQUEST;
	}
	if (!json_is_string(v))
		return bad(e, "%s: expected a string, got %s", "op", v);
	const char *op = json_string_value(v);
	size_t oplen = json_string_length(v);
	if (key_is(op, (uint32_t)oplen, "classify")) r->op = OP_CLASSIFY;
	else if (key_is(op, (uint32_t)oplen, "ping")) r->op = OP_PING;
	else if (key_is(op, (uint32_t)oplen, "stats")) r->op = OP_STATS;
	else if (key_is(op, (uint32_t)oplen, "reload")) r->op = OP_RELOAD;
	else if (key_is(op, (uint32_t)oplen, "chat")) r->op = OP_CHAT;
	else {
		err_set(e, "op: unknown operation '%.32s' (classify, ping, stats, reload or chat)",
		    op);
		return PROTO_UNKNOWN_OP;
	}
	if ((v = json_object_get(o, "policy")) != NULL) {
		if (!json_is_string(v))
			return bad(e, "%s: expected a string, got %s", "policy", v);
		size_t n = json_string_length(v);
		if (n == 0 || n >= sizeof(r->policy) || memchr(json_string_value(v), 0, n)) {
			err_set(e, "policy: a name of 1 to %zu bytes", sizeof(r->policy) - 1);
			return PROTO_BAD_REQUEST;
		}
		memcpy(r->policy, json_string_value(v), n);
		r->policy[n] = '\0';
	}
	if ((v = json_object_get(o, "deadline_ms")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 3600000) {
			err_set(e, "deadline_ms: expected an integer in [1, 3600000]");
			return PROTO_BAD_REQUEST;
		}
		r->deadline_ms = (int)json_integer_value(v);
	}
	if (r->op != OP_CHAT && r->op != OP_CLASSIFY)
		return PROTO_OK;	/* messages of other ops are ignored, like unknown fields */
	json_t *n = proto_images_take(o, l, r, &st, e);	/* image parts -> r->img */
	if (n == NULL)
		return st;
	st = messages(n, l, r, e);
	json_decref(n);
	return st;
}

enum proto_status
proto_request_from_json(const json_t *o, const struct proto_limits *l, struct request *r,
    struct err *e)
{
	memset(r, 0, sizeof(*r));
	return schema(o, l, r, 0, e);
}

enum proto_status
proto_decode_msgpack(const unsigned char *p, size_t n, const struct proto_limits *l,
    struct request *r, struct err *e)
{
	memset(r, 0, sizeof(*r));
	id_scan(p, n, r);
	if (l->max_request_bytes > 0 && n > l->max_request_bytes) {
		err_set(e, "a request is larger than %zu bytes", l->max_request_bytes);
		return PROTO_TOO_LARGE;
	}
	json_t *o = mpjson_decode(p, n, e);
	if (o == NULL)
		return PROTO_BAD_REQUEST;
	enum proto_status st = schema(o, l, r, 1, e);
	json_decref(o);
	return st;
}

void
proto_request_free(struct request *r)
{
	conv_free(&r->conv);
	chat_free(&r->chat);
	proto_images_free(r);
}

const char *
proto_op_name(enum op op)
{
	static const char *const name[OP_N] = { "classify", "ping", "stats", "reload", "chat" };

	return (unsigned)op < OP_N ? name[op] : "?";
}
