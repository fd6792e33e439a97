/* proto.h - guardd's wire protocol (guardd-protocol(7)): one msgpack map per message in
 * each direction. Requests are decoded from untrusted bytes with mp.h; responses are
 * encoded with msgpack-c. */
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

/* Stable error codes (never renamed). */
#define ERR_BAD_REQUEST "bad_request"
#define ERR_TOO_LARGE "too_large"
#define ERR_UNKNOWN_OP "unknown_op"
#define ERR_UNKNOWN_POLICY "unknown_policy"
#define ERR_BUSY "busy"
#define ERR_TIMEOUT "timeout"
#define ERR_SHUTTING_DOWN "shutting_down"
#define ERR_FORBIDDEN "forbidden"
#define ERR_TOO_MANY "too_many_connections"
#define ERR_RELOAD_FAILED "reload_failed"
#define ERR_INTERNAL "internal"

/* Decodes one complete frame. On failure fills e and returns -1; the id is filled as far
 * as it could be read, so the error can still carry it. */
int proto_decode(const unsigned char *p, size_t n, int max_messages, struct request *r,
    struct err *e);
void proto_request_free(struct request *r);

/* Responses, appended to sb: an error, or success with a body (a JSON value packed as
 * msgpack under `key`, or nothing). */
void proto_error(struct msgpack_sbuffer *sb, const struct request *r, const char *code,
    const char *msg);
void proto_ok(struct msgpack_sbuffer *sb, const struct request *r, const char *key,
    const struct json_t *body);
/* JSON value to msgpack, and back (the client side). */
void proto_pack_json(struct msgpack_sbuffer *sb, const struct json_t *j);
/* The request id as JSON (for the verdict log). */
struct json_t *proto_id_json(const struct request *r);

#endif
