/* mp.h - a bounds-checked msgpack reader for untrusted bytes: framing (the length of one
 * complete object) and a cursor for decoding requests. Pure functions, no I/O, no
 * allocation: every count is checked against the bytes present before it is used. */
#ifndef GUARDD_MP_H
#define GUARDD_MP_H

#include <stddef.h>
#include <stdint.h>

#define MP_MAX_DEPTH 32

/* The big-endian unsigned integer in p[0..k), k <= 8: msgpack's lengths and numbers. */
static inline uint64_t
mp_be(const unsigned char *p, size_t k)
{
	uint64_t v = 0;

	for (size_t i = 0; i < k; i++)
		v = v << 8 | p[i];
	return v;
}

enum mp_frame { MP_FRAME_MORE = 0, MP_FRAME_OK = 1, MP_FRAME_BAD = -1, MP_FRAME_BIG = -2 };

/* Length of the first complete object in p[0..n): MP_FRAME_OK with *len set, MP_FRAME_MORE
 * when the bytes end inside it, MP_FRAME_BAD for an invalid byte or nesting deeper than
 * MP_MAX_DEPTH, MP_FRAME_BIG for a declared size that cannot fit in max bytes. */
enum mp_frame mp_frame_len(const unsigned char *p, size_t n, size_t max, size_t *len);

enum mp_type { MP_NIL, MP_BOOL, MP_INT, MP_UINT, MP_FLOAT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP,
	MP_EXT, MP_BAD };

struct mp_cur {
	const unsigned char *p;
	size_t n, off;
};

/* The next value's type without consuming it (MP_BAD at the end). */
enum mp_type mp_peek(const struct mp_cur *c);
const char *mp_type_name(enum mp_type t);
/* Each returns 0, or -1 when the next value is not of that type or does not fit. */
int mp_read_map(struct mp_cur *c, uint32_t *count);
int mp_read_array(struct mp_cur *c, uint32_t *count);
int mp_read_str(struct mp_cur *c, const char **s, uint32_t *len);
int mp_read_uint(struct mp_cur *c, uint64_t *v);	/* non-negative ints of any width */
int mp_read_int(struct mp_cur *c, int64_t *v);		/* any int that fits */
int mp_skip(struct mp_cur *c);				/* one whole value */

#endif
