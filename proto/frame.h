/* frame.h - incremental msgpack framing: finds where one complete object ends in a byte
 * stream that arrives in pieces, keeping its state per connection so that each byte is
 * examined once, however the stream is split (cost linear in the bytes received). A
 * declared size that makes the frame exceed the limit is refused as soon as the declaration
 * is read, before the bytes it announces arrive. */
#ifndef GUARDD_FRAME_H
#define GUARDD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "proto/mp.h"	/* MP_MAX_DEPTH, enum mp_frame */

/* Public so it can be embedded in a connection; fields are private by convention. */
struct mp_framer {
	size_t max;			/* the frame size limit */
	size_t len;			/* bytes of the current frame consumed */
	size_t bad_off;			/* MP_FRAME_BAD/BIG: offset of the offending byte */
	uint64_t scanned;		/* bytes examined since init */
	uint64_t skip;			/* payload bytes of a str/bin/ext still to pass */
	uint64_t owed;			/* elements announced but not started (each >= 1 byte) */
	int depth;			/* index into left[]; -1 once the frame is complete */
	int state;			/* enum mp_frame of a finished feed, or MP_FRAME_MORE */
	unsigned hdr_have, hdr_need;	/* a value header received in pieces */
	unsigned char hdr[9];
	uint64_t left[MP_MAX_DEPTH + 1];	/* elements still to start, per depth */
};

void mp_framer_init(struct mp_framer *f, size_t max_bytes);
/* Feeds the next n bytes of the stream. *used = bytes consumed (it stops at the end of a
 * frame). MP_FRAME_OK: a frame is complete, its total length is mp_framer_length(f); call
 * mp_framer_reset before the next frame (until then feed consumes nothing and says OK
 * again). MP_FRAME_MORE: all n consumed, the frame is incomplete. MP_FRAME_BAD (an invalid
 * byte, or nesting deeper than MP_MAX_DEPTH) / MP_FRAME_BIG (a declared size that cannot fit
 * in max_bytes): *used is the offset within p of the byte that decided it, mp_framer_offset
 * its offset within the frame; the framer stays in that state until reset. */
enum mp_frame mp_framer_feed(struct mp_framer *f, const unsigned char *p, size_t n, size_t *used);
size_t mp_framer_length(const struct mp_framer *f);	/* bytes of the current frame so far */
size_t mp_framer_offset(const struct mp_framer *f);	/* BAD/BIG: the offending byte's offset */
uint64_t mp_framer_scanned(const struct mp_framer *f);	/* bytes examined since init */
/* Ready for the next frame (the scanned count and the limit are kept). */
void mp_framer_reset(struct mp_framer *f);

#endif
