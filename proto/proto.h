/* proto.h - guardd's wire protocol (guardd-protocol(7)): one msgpack map per message in
 * each direction. Requests are framed with frame.h, decoded from untrusted bytes with
 * mpjson.h and checked against one schema (request.c); responses are encoded with
 * msgpack-c (proto.c). */
#ifndef GUARDD_PROTO_H
#define GUARDD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "classifier/conv.h"
#include "util/buf.h"
#include "util/err.h"

struct json_t;
struct msgpack_sbuffer;

#define PROTO_VERSION 1
#define PROTO_MAX_ID 256

enum op { OP_CLASSIFY, OP_PING, OP_STATS, OP_RELOAD };

struct request {
	unsigned char id[PROTO_MAX_ID];	/* the id as its msgpack bytes, echoed back */
	size_t id_len;
	enum op op;
	char policy[64];		/* empty: the default policy */
	int deadline_ms;		/* 0: the configured one */
	struct conv conv;		/* for OP_CLASSIFY */
};

enum proto_status {
	PROTO_OK = 0, PROTO_BAD_REQUEST, PROTO_TOO_LARGE, PROTO_UNKNOWN_OP, PROTO_UNKNOWN_POLICY,
	PROTO_BUSY, PROTO_TIMEOUT, PROTO_SHUTTING_DOWN, PROTO_FORBIDDEN, PROTO_TOO_MANY,
	PROTO_RELOAD_FAILED, PROTO_INTERNAL, PROTO_N_STATUS
};

/* The stable wire strings ("bad_request", ...; never renamed); "internal" out of range. */
const char *proto_status_code(enum proto_status s);

struct proto_limits {
	size_t max_request_bytes;
	int max_messages;
};

/* Decodes one complete msgpack frame into r: msgpack -> JSON (mpjson.h: duplicate keys
 * refused at every depth, UTF-8 checked, ...), then proto_request_from_json. Returns
 * PROTO_OK, or an error status with e filled; r->id/id_len are filled as far as they could
 * be read, so an error can carry the id. r needs proto_request_free either way. */
enum proto_status proto_decode_msgpack(const unsigned char *p, size_t n,
    const struct proto_limits *l, struct request *r, struct err *e);
/* The one request schema, shared by msgpack and JSON (parse JSON text with
 * JSON_REJECT_DUPLICATES): {id?: int|string|null, op: "classify"|"ping"|"stats"|"reload",
 * policy?: string, deadline_ms?: 1..3600000, messages: [...] (classify)}; unknown fields are
 * skipped. The id is kept as its msgpack bytes (an id from JSON is packed), so every front
 * echoes it the same way; proto_id_json gives it back as JSON. */
enum proto_status proto_request_from_json(const struct json_t *o, const struct proto_limits *l,
    struct request *r, struct err *e);
void proto_request_free(struct request *r);

/* An error response, appended to sb. */
void proto_error(struct msgpack_sbuffer *sb, const struct request *r, enum proto_status s,
    const char *msg);

/* A success response, appended to sb: a body (a JSON value packed as msgpack under `key`),
 * or nothing. */
void proto_ok(struct msgpack_sbuffer *sb, const struct request *r, const char *key,
    const struct json_t *body);
/* JSON value to msgpack, and back (the client side). */
void proto_pack_json(struct msgpack_sbuffer *sb, const struct json_t *j);
/* The request id as JSON (for the verdict log). */
struct json_t *proto_id_json(const struct request *r);

#endif
