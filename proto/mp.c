/* mp.c - msgpack framing and decoding (the format: github.com/msgpack/msgpack spec.md). */
#include "proto/mp.h"

#include <string.h>

/* Header of the value at p: its header size, payload bytes and child count. */
static int
head(const unsigned char *p, size_t n, size_t *hdr, uint64_t *payload, uint64_t *children,
    enum mp_type *type)
{
	unsigned b;
	size_t need = 1;

	if (n == 0)
		return 0;
	b = p[0];
	*payload = 0;
	*children = 0;
	if (b <= 0x7f || b >= 0xe0) { *type = b <= 0x7f ? MP_UINT : MP_INT; *hdr = 1; return 1; }
	if ((b & 0xf0) == 0x80) { *type = MP_MAP; *hdr = 1; *children = 2 * (b & 0x0f); return 1; }
	if ((b & 0xf0) == 0x90) { *type = MP_ARRAY; *hdr = 1; *children = b & 0x0f; return 1; }
	if ((b & 0xe0) == 0xa0) { *type = MP_STR; *hdr = 1; *payload = b & 0x1f; return 1; }
	switch (b) {
	case 0xc0: *type = MP_NIL; *hdr = 1; return 1;
	case 0xc2: case 0xc3: *type = MP_BOOL; *hdr = 1; return 1;
	case 0xcc: case 0xcd: case 0xce: case 0xcf:
		*type = MP_UINT; *hdr = 1 + ((size_t)1 << (b - 0xcc)); return 1;
	case 0xd0: case 0xd1: case 0xd2: case 0xd3:
		*type = MP_INT; *hdr = 1 + ((size_t)1 << (b - 0xd0)); return 1;
	case 0xca: *type = MP_FLOAT; *hdr = 5; return 1;
	case 0xcb: *type = MP_FLOAT; *hdr = 9; return 1;
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		*type = MP_EXT; *hdr = 2; *payload = (uint64_t)1 << (b - 0xd4); return 1;
	}
	switch (b) {
	case 0xd9: case 0xc4: case 0xc7: need = 2; break;
	case 0xda: case 0xc5: case 0xc8: case 0xdc: case 0xde: need = 3; break;
	case 0xdb: case 0xc6: case 0xc9: case 0xdd: case 0xdf: need = 5; break;
	default: return -1;	/* 0xc1: never used */
	}
	if (n < need)
		return 0;
	uint64_t v = mp_be(p + 1, need - 1);
	*hdr = need;
	switch (b) {
	case 0xd9: case 0xda: case 0xdb: *type = MP_STR; *payload = v; break;
	case 0xc4: case 0xc5: case 0xc6: *type = MP_BIN; *payload = v; break;
	case 0xc7: case 0xc8: case 0xc9: *type = MP_EXT; *payload = v; *hdr += 1; break;
	case 0xdc: case 0xdd: *type = MP_ARRAY; *children = v; break;
	case 0xde: case 0xdf: *type = MP_MAP; *children = 2 * v; break;
	}
	return 1;
}

enum mp_frame
mp_frame_len(const unsigned char *p, size_t n, size_t max, size_t *len)
{
	uint64_t left[MP_MAX_DEPTH + 1];
	int depth = 0;
	size_t off = 0;

	left[0] = 1;	/* one object */
	while (depth >= 0) {
		if (left[depth] == 0) {
			depth--;
			continue;
		}
		left[depth]--;
		size_t hdr;
		uint64_t payload, children;
		enum mp_type t;
		int r = head(p + off, n - off, &hdr, &payload, &children, &t);
		if (r < 0) {
			*len = off;
			return MP_FRAME_BAD;
		}
		if (r == 0 || hdr > n - off)
			return MP_FRAME_MORE;	/* the caller bounds what it buffers */
		/* declared sizes are checked against the limit before anything waits for them */
		if (payload > max || children > max || off + hdr + payload > max ||
		    off + hdr + children > max) {
			*len = off;
			return MP_FRAME_BIG;	/* each child needs a byte: it cannot fit */
		}
		if (off + hdr + payload > n)
			return MP_FRAME_MORE;
		off += hdr + (size_t)payload;
		if (children > 0) {
			if (depth == MP_MAX_DEPTH) {
				*len = off;
				return MP_FRAME_BAD;
			}
			left[++depth] = children;
		}
	}
	*len = off;
	return MP_FRAME_OK;
}

enum mp_type
mp_peek(const struct mp_cur *c)
{
	size_t hdr;
	uint64_t payload, children;
	enum mp_type t;

	if (head(c->p + c->off, c->n - c->off, &hdr, &payload, &children, &t) != 1 ||
	    hdr > c->n - c->off)
		return MP_BAD;
	return t;
}

const char *
mp_type_name(enum mp_type t)
{
	static const char *const names[] = { "nil", "bool", "integer", "integer", "float", "string",
		"binary", "array", "map", "extension", "invalid" };

	return names[t];
}

/* the header of the next value, checked to lie within the cursor */
static int
next(struct mp_cur *c, enum mp_type want, uint64_t *payload, uint64_t *children,
    const unsigned char **body)
{
	size_t hdr;
	enum mp_type t;

	if (head(c->p + c->off, c->n - c->off, &hdr, payload, children, &t) != 1 ||
	    hdr > c->n - c->off || *payload > c->n - c->off - hdr)
		return -1;
	if (want != MP_BAD && t != want && !(want == MP_UINT && t == MP_INT))
		return -1;
	*body = c->p + c->off;
	c->off += hdr + (size_t)*payload;
	return 0;
}

/* a map's pairs or an array's items; each needs at least `per` bytes, checked here */
static int
read_container(struct mp_cur *c, enum mp_type t, uint64_t per, uint32_t *count)
{
	uint64_t pl, ch;
	const unsigned char *b;
	size_t save = c->off;

	if (mp_peek(c) != t || next(c, t, &pl, &ch, &b) == -1)
		return -1;
	if (t == MP_MAP)
		ch /= 2;
	if (ch > (c->n - c->off) / per) {
		c->off = save;
		return -1;
	}
	*count = (uint32_t)ch;
	return 0;
}

int
mp_read_map(struct mp_cur *c, uint32_t *count)
{
	return read_container(c, MP_MAP, 2, count);
}

int
mp_read_array(struct mp_cur *c, uint32_t *count)
{
	return read_container(c, MP_ARRAY, 1, count);
}

int
mp_read_str(struct mp_cur *c, const char **s, uint32_t *len)
{
	uint64_t pl, ch;
	const unsigned char *b;

	if (mp_peek(c) != MP_STR || next(c, MP_STR, &pl, &ch, &b) == -1)
		return -1;
	*len = (uint32_t)pl;
	*s = (const char *)c->p + c->off - pl;
	return 0;
}

static int
read_number(struct mp_cur *c, int *neg, uint64_t *mag)
{
	enum mp_type t = mp_peek(c);
	uint64_t pl, ch;
	const unsigned char *b;

	if ((t != MP_UINT && t != MP_INT) || next(c, MP_BAD, &pl, &ch, &b) == -1)
		return -1;
	unsigned f = b[0];
	*neg = 0;
	if (f <= 0x7f) {
		*mag = f;
	} else if (f >= 0xe0) {
		*neg = 1;
		*mag = (uint64_t)(256 - f);
	} else if (f >= 0xcc && f <= 0xcf) {
		size_t k = (size_t)1 << (f - 0xcc);
		uint64_t v = 0;
		for (size_t i = 0; i < k; i++)
			v = v << 8 | b[1 + i];
		*mag = v;
	} else {
		size_t k = (size_t)1 << (f - 0xd0);
		uint64_t v = 0;
		for (size_t i = 0; i < k; i++)
			v = v << 8 | b[1 + i];
		int64_t sv;
		if (k == 1) sv = (int8_t)v;
		else if (k == 2) sv = (int16_t)v;
		else if (k == 4) sv = (int32_t)v;
		else memcpy(&sv, &v, 8);
		*neg = sv < 0;
		*mag = sv < 0 ? (uint64_t)(-(sv + 1)) + 1 : (uint64_t)sv;
	}
	return 0;
}

int
mp_read_uint(struct mp_cur *c, uint64_t *v)
{
	size_t save = c->off;
	int neg;

	if (read_number(c, &neg, v) == -1 || neg) {
		c->off = save;
		return -1;
	}
	return 0;
}

int
mp_read_int(struct mp_cur *c, int64_t *v)
{
	size_t save = c->off;
	int neg;
	uint64_t m;

	if (read_number(c, &neg, &m) == -1 || (!neg && m > INT64_MAX) ||
	    (neg && m > (uint64_t)INT64_MAX + 1)) {
		c->off = save;
		return -1;
	}
	*v = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m) : (int64_t)m;
	return 0;
}

int
mp_skip(struct mp_cur *c)
{
	size_t len;

	if (mp_frame_len(c->p + c->off, c->n - c->off, c->n - c->off, &len) != MP_FRAME_OK)
		return -1;
	c->off += len;
	return 0;
}
