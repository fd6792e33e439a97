/* fuzz_request.c - what the daemon does with each frame of a connection: the incremental
 * framer splits the bytes, each frame is decoded (msgpack -> JSON -> the request schema)
 * and a classify request's prompt is built. Differential check: a frame that decodes to JSON
 * gives the same status when its JSON text goes through the JSON front (a mismatch aborts;
 * frames with binary image data, which JSON text cannot always carry, are decoded only). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/prompt.h"
#include "proto/frame.h"
#include "proto/mpjson.h"
#include "proto/proto.h"

/* whether j holds a msgpack binary value ({"$bin": bytes}, mpjson.h), which JSON text cannot
 * carry when its bytes are not UTF-8 */
static int
has_bin(const json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v)
			if (strcmp(k, "$bin") == 0 || has_bin(v))
				return 1;
	} else if (json_is_array(j))
		json_array_foreach(j, i, v)
			if (has_bin(v))
				return 1;
	return 0;
}

static void
one(const uint8_t *p, size_t n)
{
	struct proto_limits l = { 65536, 64, 0, 0 };
	struct request r, rj;
	struct err e, ej;
	enum proto_status st = proto_decode_msgpack(p, n, &l, &r, &e);

	if (st == PROTO_OK && r.op == OP_CLASSIFY) {
		struct buf t = { 0 };
		struct tokvec ids = { 0 };
		enum role role;
		prompt_body(&r.conv, NULL, &t, &ids, &role, &e);
		buf_free(&t);
		tokvec_free(&ids);
	}
	json_t *j = mpjson_decode(p, n, &ej);
	if (j != NULL && has_bin(j)) {
		char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		free(text);	/* not UTF-8 at all: no JSON text to compare with */
		json_decref(j);
	} else if (j != NULL) {
		char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		json_error_t je;
		json_t *back = text ? json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
		    JSON_DECODE_ANY, &je) : NULL;
		if (back == NULL || !json_equal(j, back))
			abort();	/* JSON text must carry exactly what msgpack did */
		enum proto_status sj = proto_request_from_json(back, &l, &rj, &ej);
		if (sj != st || (st != PROTO_OK && strcmp(e.msg, ej.msg) != 0))
			abort();	/* the two fronts must agree */
		proto_request_free(&rj);
		json_decref(back);
		free(text);
		json_decref(j);
	} else if (st == PROTO_OK)
		abort();	/* a request was accepted that is not valid JSON */
	proto_request_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mp_framer f;
	size_t off = 0, used;

	mp_framer_init(&f, 65536);
	while (off < size) {
		enum mp_frame fr = mp_framer_feed(&f, data + off, size - off, &used);
		if (fr != MP_FRAME_OK)
			break;
		one(data + off, mp_framer_length(&f));
		off += used;
		mp_framer_reset(&f);
	}
	return 0;
}
