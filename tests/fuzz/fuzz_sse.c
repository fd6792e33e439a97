/* fuzz_sse.c - the SSE parser against itself: the input is a stream parsed once whole and
 * once in pieces whose sizes come from its first byte; both must give the same events and
 * the same outcome, and count every byte (any disagreement aborts). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sse.h"
#include "util/buf.h"

static int
collect(void *arg, const struct sse_event *ev, struct err *e)
{
	struct buf *b = arg;

	(void)e;
	if (ev->data[ev->data_len] != '\0')
		abort();	/* data is NUL-terminated */
	if (buf_add(b, ev->type, ev->type_len) == -1 || buf_add(b, "\x01", 1) == -1 ||
	    buf_add(b, ev->data, ev->data_len) == -1 || buf_add(b, "\x02", 1) == -1)
		return -1;
	return 0;
}

static int
run(const uint8_t *p, size_t n, unsigned step, size_t max, struct buf *out, size_t *off)
{
	struct sse *s = sse_new(max);
	struct err e;
	int rc = 0;

	if (s == NULL)
		abort();
	for (size_t at = 0; at < n && rc == 0;) {
		size_t k = step && step < n - at ? step : n - at;
		rc = sse_feed(s, (const char *)p + at, k, collect, out, &e);
		at += k;
	}
	*off = sse_offset(s);
	sse_free(s);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a = { 0 }, b = { 0 };
	size_t oa, ob;

	if (size < 1)
		return 0;
	unsigned step = 1 + data[0] % 13;
	size_t max = 16 + (size_t)(data[0] >> 4) * 64;
	int ra = run(data + 1, size - 1, 0, max, &a, &oa);
	int rb = run(data + 1, size - 1, step, max, &b, &ob);
	if (ra != rb || a.n != b.n || (a.n && memcmp(a.p, b.p, a.n) != 0))
		abort();
	if (ra == 0 && (oa != size - 1 || ob != size - 1))
		abort();
	buf_free(&a);
	buf_free(&b);
	return 0;
}
