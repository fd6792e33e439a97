/* mpjson.h - one complete msgpack object from untrusted bytes to a jansson value, checked
 * so that the JSON and msgpack front ends accept the same documents: map keys are strings,
 * a key repeated in any map is refused, strings are valid UTF-8, integers fit in int64,
 * floats are finite, extension values are refused and binary ones too except as a map's
 * "data" value (an image part's bytes, given as {"$bin": a string of those bytes,
 * unchecked}), nesting is at most MP_MAX_DEPTH, keys hold no NUL byte (as in JSON text read by jansson). Every count is
 * checked against the bytes present before anything is allocated; cost is linear in the
 * input. Errors name the path and the byte offset, e.g.
 * "messages[1].role: duplicate key at byte 57". */
#ifndef GUARDD_MPJSON_H
#define GUARDD_MPJSON_H

#include <stddef.h>

#include "util/err.h"

struct json_t;

/* The object in p[0..n), which must fill the n bytes exactly. Returns a new reference, or
 * NULL with e filled. */
struct json_t *mpjson_decode(const unsigned char *p, size_t n, struct err *e);

#endif
