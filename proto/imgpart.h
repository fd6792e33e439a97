/* imgpart.h - image parts of a request's messages, taken out of the JSON tree into the
 * request's image list (their bytes, in message order) so that the conversation and chat
 * decoders see plain {"type": "image"} parts in their places. Accepted forms:
 * {"type": "image", "data": BIN} (msgpack bin; from JSON text a base64 string) and OpenAI's
 * {"type": "image_url", "image_url": {"url": "data:image/...;base64,...", "detail"?}}.
 * Remote http(s) URLs are refused (guardd fetches nothing). Limits: the request's
 * max_images and max_image_bytes (decoded). Errors name the message and the part. */
#ifndef GUARDD_IMGPART_H
#define GUARDD_IMGPART_H

#include "proto/proto.h"

/* defaults when proto_limits leaves them 0 */
#define PROTO_MAX_IMAGES_DEFAULT 4
#define PROTO_MAX_IMAGE_BYTES_DEFAULT (20u << 20)

/* The request object o with its image parts replaced by {"type": "image"} (a new reference;
 * o itself, referenced again, when it has none), the images appended to r. NULL with e
 * filled on a bad part; *st gets the status. */
struct json_t *proto_images_take(const struct json_t *o, const struct proto_limits *l,
    struct request *r, enum proto_status *st, struct err *e);
void proto_images_free(struct request *r);

#endif
