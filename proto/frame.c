/* frame.c - the incremental msgpack framer (see frame.h). A frame is walked as a stack of
 * element counts: each value starts by taking one element from the innermost count, its
 * header (1 to 9 bytes) may arrive in pieces, a str/bin/ext payload is passed without being
 * looked at, and a container pushes its element count. The frame ends when the stack is
 * empty. The format: github.com/msgpack/msgpack spec.md. */
#include "proto/frame.h"

#include <string.h>

#include "proto/mp.h"

void
mp_framer_init(struct mp_framer *f, size_t max_bytes)
{
	memset(f, 0, sizeof(*f));
	f->max = max_bytes;
	mp_framer_reset(f);
}

void
mp_framer_reset(struct mp_framer *f)
{
	f->len = 0;
	f->bad_off = 0;
	f->skip = 0;
	f->owed = 0;
	f->depth = 0;
	f->left[0] = 1;	/* one object */
	f->state = MP_FRAME_MORE;
	f->hdr_have = f->hdr_need = 0;
}

size_t
mp_framer_length(const struct mp_framer *f)
{
	return f->len;
}

size_t
mp_framer_offset(const struct mp_framer *f)
{
	return f->bad_off;
}

uint64_t
mp_framer_scanned(const struct mp_framer *f)
{
	return f->scanned;
}

/* Header size announced by a value's first byte; 0 for the byte that is never used. */
static unsigned
header_size(unsigned b)
{
	if (b <= 0x7f || b >= 0xe0 || (b & 0xe0) == 0xa0 || (b & 0xe0) == 0x80)
		return 1;	/* fixint, negative fixint, fixstr, fixmap, fixarray */
	switch (b) {
	case 0xc0: case 0xc2: case 0xc3: return 1;
	case 0xcc: case 0xd0: case 0xd9: case 0xc4: return 2;
	case 0xcd: case 0xd1: case 0xda: case 0xc5: case 0xdc: case 0xde: return 3;
	case 0xce: case 0xd2: case 0xca: case 0xdb: case 0xc6: case 0xdd: case 0xdf: return 5;
	case 0xcf: case 0xd3: case 0xcb: return 9;
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return 2;	/* fixext: type */
	case 0xc7: return 3;	/* ext 8: length, type */
	case 0xc8: return 4;
	case 0xc9: return 6;
	}
	return 0;	/* 0xc1 */
}

/* A complete header: the payload bytes and the elements it announces. */
static void
header_parse(const unsigned char *h, uint64_t *payload, uint64_t *children)
{
	unsigned b = h[0];

	*payload = 0;
	*children = 0;
	if ((b & 0xf0) == 0x80)
		*children = 2 * (uint64_t)(b & 0x0f);
	else if ((b & 0xf0) == 0x90)
		*children = b & 0x0f;
	else if ((b & 0xe0) == 0xa0)
		*payload = b & 0x1f;
	else
		switch (b) {
		case 0xd9: case 0xc4: case 0xc7: *payload = h[1]; break;
		case 0xda: case 0xc5: case 0xc8: *payload = mp_be(h + 1, 2); break;
		case 0xdb: case 0xc6: case 0xc9: *payload = mp_be(h + 1, 4); break;
		case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
			*payload = (uint64_t)1 << (b - 0xd4);
			break;
		case 0xdc: *children = mp_be(h + 1, 2); break;
		case 0xdd: *children = mp_be(h + 1, 4); break;
		case 0xde: *children = 2 * mp_be(h + 1, 2); break;
		case 0xdf: *children = 2 * mp_be(h + 1, 4); break;
		}
}

/* A value ended: close every container whose last element it was. */
static void
value_done(struct mp_framer *f)
{
	while (f->depth >= 0 && f->left[f->depth] == 0)
		f->depth--;
	if (f->depth < 0)
		f->state = MP_FRAME_OK;
}

static enum mp_frame
fail(struct mp_framer *f, enum mp_frame why, size_t at, size_t *used)
{
	f->state = why;
	f->bad_off = f->len;	/* the deciding byte is counted in len already */
	if (f->bad_off > 0)
		f->bad_off--;
	*used = at;
	return why;
}

enum mp_frame
mp_framer_feed(struct mp_framer *f, const unsigned char *p, size_t n, size_t *used)
{
	size_t i = 0;

	if (f->state != MP_FRAME_MORE) {
		*used = 0;
		return f->state;
	}
	while (i < n) {
		if (f->skip > 0) {	/* inside a payload: passed, not looked at */
			size_t k = f->skip < n - i ? (size_t)f->skip : n - i;
			i += k;
			f->len += k;
			f->scanned += k;
			f->skip -= k;
			if (f->skip == 0)
				value_done(f);
			if (f->state == MP_FRAME_OK)
				break;
			continue;
		}
		unsigned char b = p[i++];
		f->len++;
		f->scanned++;
		if (f->hdr_have == 0) {	/* a new value takes one element of its container */
			if ((f->hdr_need = header_size(b)) == 0)
				return fail(f, MP_FRAME_BAD, i - 1, used);
			f->left[f->depth]--;
			if (f->depth > 0)
				f->owed--;
		}
		f->hdr[f->hdr_have++] = b;
		if (f->hdr_have < f->hdr_need)
			continue;
		uint64_t payload, children;
		header_parse(f->hdr, &payload, &children);
		f->hdr_have = 0;
		/* every announced element needs at least a byte: refuse what cannot fit now */
		if (payload > f->max || children > f->max ||
		    f->len + payload + children + f->owed > f->max)
			return fail(f, MP_FRAME_BIG, i - 1, used);
		if (payload > 0) {
			f->skip = payload;
			continue;
		}
		if (children > 0) {
			if (f->depth == MP_MAX_DEPTH)
				return fail(f, MP_FRAME_BAD, i - 1, used);
			f->left[++f->depth] = children;
			f->owed += children;
			continue;
		}
		value_done(f);
		if (f->state == MP_FRAME_OK)
			break;
	}
	*used = i;
	return f->state == MP_FRAME_OK ? MP_FRAME_OK : MP_FRAME_MORE;
}
