/* proto.h - guardd's wire protocol (guardd-protocol(7)): one msgpack map per message in
 * each direction. Requests are framed with frame.h, decoded from untrusted bytes with
 * mpjson.h and checked against one schema (request.c); responses are encoded with
 * msgpack-c (proto.c). */
#ifndef GUARDD_PROTO_H
#define GUARDD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "classifier/conv.h"
#include "generator/chat.h"
#include "util/buf.h"
#include "util/err.h"

struct json_t;
struct msgpack_sbuffer;

#define PROTO_VERSION 1
#define PROTO_MAX_ID 256

enum op { OP_CLASSIFY, OP_PING, OP_STATS, OP_RELOAD, OP_CHAT, OP_N };

#define PROTO_MAX_STOP 4
#define PROTO_MAX_STOP_LEN 64

/* The sampling fields of a chat request; has_* says which were given (the rest take the
 * daemon's defaults). */
struct chat_opts {
	int stream;
	int has_max_tokens, has_temperature, has_top_k, has_top_p, has_min_p, has_repeat_penalty,
	    has_seed;
	int max_tokens, top_k;
	double temperature, top_p, min_p, repeat_penalty;
	uint64_t seed;
	char stop[PROTO_MAX_STOP][PROTO_MAX_STOP_LEN + 1];
	int n_stop;
};

struct request {
	unsigned char id[PROTO_MAX_ID];	/* the id as its msgpack bytes, echoed back */
	size_t id_len;
	enum op op;
	char policy[64];		/* empty: the default policy */
	int deadline_ms;		/* 0: the configured one */
	struct conv conv;		/* for OP_CLASSIFY; for OP_CHAT the guard's view of the chat */
	struct chat chat;		/* for OP_CHAT */
	struct chat_opts copt;		/* for OP_CHAT */
	struct conv_image *img;		/* the image parts of the messages, in order (PNG or
					 * JPEG, decoded only where a model reads them); conv
					 * borrows them */
	size_t n_img;
};

enum proto_status {
	PROTO_OK = 0, PROTO_BAD_REQUEST, PROTO_TOO_LARGE, PROTO_UNKNOWN_OP, PROTO_UNKNOWN_POLICY,
	PROTO_BUSY, PROTO_TIMEOUT, PROTO_SHUTTING_DOWN, PROTO_FORBIDDEN, PROTO_TOO_MANY,
	PROTO_RELOAD_FAILED, PROTO_INTERNAL, PROTO_UNSUPPORTED, PROTO_N_STATUS
};

/* The name of an op on the wire ("classify", ...). */
const char *proto_op_name(enum op op);
/* The guard's conversation for a chat: its user and assistant messages in order (system
 * messages are the operator's framing, not a turn, and are left out); fails like
 * conv_check when the turns do not alternate from the user. */
int proto_chat_conv(const struct chat *ch, struct conv *out, struct err *e);

/* The stable wire strings ("bad_request", ...; never renamed); "internal" out of range. */
const char *proto_status_code(enum proto_status s);

struct proto_limits {
	size_t max_request_bytes;
	int max_messages;
	size_t max_image_bytes;		/* one image, decoded; 0: 20 MiB */
	int max_images;			/* in one request; 0: 4 */
};

/* Decodes one complete msgpack frame into r: msgpack -> JSON (mpjson.h: duplicate keys
 * refused at every depth, UTF-8 checked, ...), then proto_request_from_json. Returns
 * PROTO_OK, or an error status with e filled; r->id/id_len are filled as far as they could
 * be read, so an error can carry the id. r needs proto_request_free either way. */
enum proto_status proto_decode_msgpack(const unsigned char *p, size_t n,
    const struct proto_limits *l, struct request *r, struct err *e);
/* The one request schema, shared by msgpack and JSON (parse JSON text with
 * JSON_REJECT_DUPLICATES): {id?: int|string|null, op: "classify"|"ping"|"stats"|"reload"|"chat",
 * policy?: string, deadline_ms?: 1..3600000, messages: [...] (classify, chat), and for chat
 * stream?, max_tokens?, temperature?, top_k?, top_p?, min_p?, repeat_penalty?, seed?, stop?,
 * add_generation_prompt? (guardd-protocol(7))}; a message's content parts may be images
 * (proto/imgpart.h: r->img, {"type": "image"} parts for the decoders); unknown fields are
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
