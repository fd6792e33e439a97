/* proto.c - responses: errors, successes with a JSON body packed as msgpack, the echoed id. */
#include "proto/proto.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mp.h"

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

const char *
proto_status_code(enum proto_status s)
{
	static const char *const code[PROTO_N_STATUS] = {
		[PROTO_OK] = "ok", [PROTO_BAD_REQUEST] = "bad_request", [PROTO_TOO_LARGE] = "too_large",
		[PROTO_UNKNOWN_OP] = "unknown_op", [PROTO_UNKNOWN_POLICY] = "unknown_policy",
		[PROTO_BUSY] = "busy", [PROTO_TIMEOUT] = "timeout",
		[PROTO_SHUTTING_DOWN] = "shutting_down", [PROTO_FORBIDDEN] = "forbidden",
		[PROTO_TOO_MANY] = "too_many_connections", [PROTO_RELOAD_FAILED] = "reload_failed",
		[PROTO_INTERNAL] = "internal", [PROTO_UNSUPPORTED] = "unsupported",
	};

	return (unsigned)s < PROTO_N_STATUS ? code[s] : "internal";
}

void
proto_error(msgpack_sbuffer *sb, const struct request *r, enum proto_status s, const char *msg)
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
	pack_str(&pk, proto_status_code(s));
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
