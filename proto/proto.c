/* proto.c - request decoding (schema checks, unknown fields skipped) and responses. */
#include "proto/proto.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mp.h"

static int
read_text(struct mp_cur *c, const char *what, const char **s, uint32_t *len, struct err *e)
{
	if (mp_read_str(c, s, len) == -1)
		return err_set(e, "%s: expected a string, got %s", what, mp_type_name(mp_peek(c)));
	if (utf8_valid_prefix(*s, *len) != *len)
		return err_set(e, "%s: invalid UTF-8 at byte %zu", what, utf8_valid_prefix(*s, *len));
	return 0;
}

static int
key_is(const char *k, uint32_t n, const char *want)
{
	return strlen(want) == n && memcmp(k, want, n) == 0;
}

static int
decode_content(struct mp_cur *c, struct conv *cv, size_t i, struct err *e)
{
	char what[64];
	const char *s;
	uint32_t len, n;

	snprintf(what, sizeof(what), "messages[%zu].content", i);
	if (mp_peek(c) == MP_STR) {
		if (read_text(c, what, &s, &len, e) == -1)
			return -1;
		return conv_add_part(cv, s, len, e);
	}
	if (mp_read_array(c, &n) == -1)
		return err_set(e, "%s: expected a string or a list of text parts", what);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t m;
		int have_text = 0, is_text = 0;
		snprintf(what, sizeof(what), "messages[%zu].content[%u]", i, k);
		if (mp_read_map(c, &m) == -1)
			return err_set(e, "%s: expected a map", what);
		for (uint32_t f = 0; f < m; f++) {
			const char *kk;
			uint32_t kl;
			if (mp_read_str(c, &kk, &kl) == -1)
				return err_set(e, "%s: keys must be strings", what);
			if (key_is(kk, kl, "type")) {
				if (read_text(c, what, &s, &len, e) == -1)
					return -1;
				is_text = key_is(s, len, "text");
			} else if (key_is(kk, kl, "text")) {
				if (read_text(c, what, &s, &len, e) == -1)
					return -1;
				if (have_text++ == 0 && conv_add_part(cv, s, len, e) == -1)
					return -1;
			} else if (mp_skip(c) == -1)
				return err_set(e, "%s: truncated", what);
		}
		if (!is_text || !have_text)
			return err_set(e, "%s: only {type: \"text\", text: ...} parts are supported", what);
	}
	return 0;
}

static int
decode_messages(struct mp_cur *c, struct conv *cv, int max, struct err *e)
{
	uint32_t n;

	if (mp_read_array(c, &n) == -1)
		return err_set(e, "messages: expected an array, got %s", mp_type_name(mp_peek(c)));
	if (n == 0)
		return err_set(e, "messages: empty");
	if ((int)n > max)
		return err_set(e, "messages: %u messages, the limit is %d", n, max);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t m;
		int role = -1, parts = 0;
		if (mp_read_map(c, &m) == -1)
			return err_set(e, "messages[%u]: expected a map", i);
		if (conv_add_msg(cv, e) == -1)
			return -1;
		for (uint32_t f = 0; f < m; f++) {
			const char *k, *s;
			uint32_t kl, len;
			if (mp_read_str(c, &k, &kl) == -1)
				return err_set(e, "messages[%u]: keys must be strings", i);
			if (key_is(k, kl, "role")) {
				if (read_text(c, "role", &s, &len, e) == -1)
					return err_prefix(e, "messages[%u]", i);
				if (key_is(s, len, "user"))
					role = 0;
				else if (key_is(s, len, "assistant"))
					role = 1;
				else
					return err_set(e, "messages[%u].role: '%.*s' (user or assistant)", i,
					    (int)(len > 32 ? 32 : len), s);
			} else if (key_is(k, kl, "content")) {
				if (decode_content(c, cv, i, e) == -1)
					return -1;
				parts = 1;
			} else if (mp_skip(c) == -1)
				return err_set(e, "messages[%u]: truncated", i);
		}
		if (role < 0 || !parts)
			return err_set(e, "messages[%u]: needs role and content", i);
		cv->msg[i].assistant = role;
	}
	return conv_check(cv, e);
}

int
proto_decode(const unsigned char *p, size_t n, int max_messages, struct request *r,
    struct err *e)
{
	struct mp_cur c = { p, n, 0 };
	uint32_t m;
	int have_op = 0, have_msgs = 0;

	memset(r, 0, sizeof(*r));
	if (mp_read_map(&c, &m) == -1)
		return err_set(e, "a request must be a map, got %s", mp_type_name(mp_peek(&c)));
	for (uint32_t i = 0; i < m; i++) {
		const char *k, *s;
		uint32_t kl, len;
		if (mp_read_str(&c, &k, &kl) == -1)
			return err_set(e, "request keys must be strings");
		if (key_is(k, kl, "id")) {
			size_t start = c.off;
			enum mp_type t = mp_peek(&c);
			if (t != MP_UINT && t != MP_INT && t != MP_STR && t != MP_NIL)
				return err_set(e, "id: expected an integer or a string, got %s", mp_type_name(t));
			if (mp_skip(&c) == -1 || c.off - start > PROTO_MAX_ID)
				return err_set(e, "id: longer than %d bytes", PROTO_MAX_ID);
			memcpy(r->id, p + start, c.off - start);
			r->id_len = c.off - start;
		} else if (key_is(k, kl, "op")) {
			if (read_text(&c, "op", &s, &len, e) == -1)
				return -1;
			if (key_is(s, len, "classify")) r->op = OP_CLASSIFY;
			else if (key_is(s, len, "ping")) r->op = OP_PING;
			else if (key_is(s, len, "stats")) r->op = OP_STATS;
			else if (key_is(s, len, "reload")) r->op = OP_RELOAD;
			else
				return err_set(e, "op: unknown operation '%.*s'", (int)(len > 32 ? 32 : len), s);
			have_op = 1;
		} else if (key_is(k, kl, "policy")) {
			if (read_text(&c, "policy", &s, &len, e) == -1)
				return -1;
			if (len == 0 || len >= sizeof(r->policy))
				return err_set(e, "policy: name of 1 to %zu bytes", sizeof(r->policy) - 1);
			memcpy(r->policy, s, len);
		} else if (key_is(k, kl, "deadline_ms")) {
			uint64_t v;
			if (mp_read_uint(&c, &v) == -1 || v == 0 || v > 3600000)
				return err_set(e, "deadline_ms: expected an integer in [1, 3600000]");
			r->deadline_ms = (int)v;
		} else if (key_is(k, kl, "messages")) {
			if (decode_messages(&c, &r->conv, max_messages, e) == -1) {
				conv_free(&r->conv);
				return -1;
			}
			have_msgs = 1;
		} else if (mp_skip(&c) == -1)
			return err_set(e, "truncated request");
	}
	if (c.off != n) {
		conv_free(&r->conv);
		return err_set(e, "%zu bytes after the request", n - c.off);
	}
	if (!have_op) {
		conv_free(&r->conv);
		return err_set(e, "op: missing");
	}
	if (r->op == OP_CLASSIFY && !have_msgs)
		return err_set(e, "messages: required by classify");
	return 0;
}

void
proto_request_free(struct request *r)
{
	conv_free(&r->conv);
}

static void
pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void
pack_id(msgpack_packer *pk, msgpack_sbuffer *sb, const struct request *r)
{
	pack_str(pk, "id");
	if (r && r->id_len > 0)
		msgpack_sbuffer_write(sb, (const char *)r->id, r->id_len);
	else
		msgpack_pack_nil(pk);
}

void
proto_error(msgpack_sbuffer *sb, const struct request *r, const char *code, const char *msg)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	pack_id(&pk, sb, r);
	pack_str(&pk, "ok");
	msgpack_pack_false(&pk);
	pack_str(&pk, "error");
	msgpack_pack_map(&pk, 2);
	pack_str(&pk, "code");
	pack_str(&pk, code);
	pack_str(&pk, "message");
	pack_str(&pk, msg);
}

static void
pack_json(msgpack_packer *pk, const json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		msgpack_pack_map(pk, json_object_size(j));
		json_object_foreach((json_t *)j, k, v) {
			pack_str(pk, k);
			pack_json(pk, v);
		}
		break;
	case JSON_ARRAY:
		msgpack_pack_array(pk, json_array_size(j));
		json_array_foreach(j, i, v)
			pack_json(pk, v);
		break;
	case JSON_STRING:
		msgpack_pack_str(pk, json_string_length(j));
		msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(j)); break;
	case JSON_REAL: msgpack_pack_double(pk, json_real_value(j)); break;
	case JSON_TRUE: msgpack_pack_true(pk); break;
	case JSON_FALSE: msgpack_pack_false(pk); break;
	default: msgpack_pack_nil(pk); break;
	}
}

void
proto_pack_json(msgpack_sbuffer *sb, const json_t *j)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	pack_json(&pk, j);
}

void
proto_ok(msgpack_sbuffer *sb, const struct request *r, const char *key, const json_t *body)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, body ? 3 : 2);
	pack_id(&pk, sb, r);
	pack_str(&pk, "ok");
	msgpack_pack_true(&pk);
	if (body) {
		pack_str(&pk, key);
		pack_json(&pk, body);
	}
}

json_t *
proto_id_json(const struct request *r)
{
	struct mp_cur c = { r->id, r->id_len, 0 };
	int64_t i;
	uint64_t u;
	const char *s;
	uint32_t n;

	if (r->id_len == 0 || mp_peek(&c) == MP_NIL)
		return json_null();
	if (mp_read_int(&c, &i) == 0)
		return json_integer(i);
	c.off = 0;
	if (mp_read_uint(&c, &u) == 0)
		return json_integer((json_int_t)u);
	c.off = 0;
	if (mp_read_str(&c, &s, &n) == 0) {
		json_t *j = json_stringn(s, n);
		return j ? j : json_string("(invalid UTF-8)");
	}
	return json_null();
}
