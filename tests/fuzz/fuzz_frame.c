/* fuzz_frame.c - the incremental framer against itself and the one-shot framer: the input's
 * first two bytes pick the size limit and the chunking seed, the rest is a stream fed once
 * whole and once in random chunks. Both must find the same frames with the same outcome,
 * examine each byte once, and agree with mp_frame_len on complete frames (any disagreement
 * aborts). */
#include <stdint.h>
#include <stdlib.h>

#include "proto/frame.h"
#include "proto/mp.h"

#define MAXF 4096

struct result {
	enum mp_frame r[MAXF];
	size_t len[MAXF], off[MAXF];
	int n;
};

/* every frame of p (until one is not OK), fed in chunks drawn from seed (0: in one piece) */
static void
frames(const uint8_t *p, size_t n, size_t max, uint32_t seed, struct result *res)
{
	struct mp_framer f;
	size_t at = 0, fed_frame = 0;

	res->n = 0;
	mp_framer_init(&f, max);
	while (res->n < MAXF) {
		size_t k = n - at;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			size_t c = 1 + (seed >> 16) % 17;
			k = c < k ? c : k;
		}
		size_t used;
		enum mp_frame r = mp_framer_feed(&f, p + at, k, &used);
		if (used > k)
			abort();
		at += used;
		fed_frame += used;
		if (r == MP_FRAME_MORE) {
			if (used != k)
				abort();
			if (at < n)
				continue;
		}
		if (r == MP_FRAME_OK && mp_framer_length(&f) != fed_frame)
			abort();	/* the frame is exactly the bytes consumed for it */
		res->r[res->n] = r;
		res->len[res->n] = mp_framer_length(&f);
		res->off[res->n] = r == MP_FRAME_OK || r == MP_FRAME_MORE ? 0 : mp_framer_offset(&f);
		res->n++;
		if (r != MP_FRAME_OK)
			break;
		/* the old framer agrees on a complete frame */
		size_t len = 0;
		const uint8_t *start = p + at - fed_frame;
		if (mp_frame_len(start, fed_frame, max, &len) != MP_FRAME_OK || len != fed_frame)
			abort();
		mp_framer_reset(&f);
		fed_frame = 0;
		if (at == n)
			break;
	}
	if (mp_framer_scanned(&f) > n)
		abort();	/* linear: no byte examined twice */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct result a, b;

	if (size < 2)
		return 0;
	size_t max = 8 + (size_t)data[0] * 16;
	uint32_t seed = data[1] | 1u;
	data += 2;
	size -= 2;
	frames(data, size, max, 0, &a);
	frames(data, size, max, seed, &b);
	if (a.n != b.n)
		abort();
	for (int i = 0; i < a.n; i++)
		if (a.r[i] != b.r[i] || a.len[i] != b.len[i] || a.off[i] != b.off[i])
			abort();
	/* an incomplete stream is incomplete for the old framer too */
	if (a.n > 0 && a.r[a.n - 1] == MP_FRAME_MORE) {
		size_t off = 0, len;
		for (int i = 0; i < a.n - 1; i++)
			off += a.len[i];
		if (mp_frame_len(data + off, size - off, max, &len) != MP_FRAME_MORE)
			abort();
	}
	return 0;
}
