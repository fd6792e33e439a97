/* sse.c - the server-sent events parser (sse.h): a line assembled from the pieces, each
 * byte looked at once, the fields of a complete line applied, an event dispatched at its
 * blank line. Every buffer is bounded by the event limit. */
#include "proto/sse.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

struct sse {
	size_t max;		/* an event's limit: pending line + data + type */
	size_t off;		/* bytes fed */
	int bom_done;		/* the first bytes were checked for a BOM */
	size_t bom_seen;	/* BOM bytes matched so far at the very start */
	int after_cr;		/* the last byte was CR: a following LF is the same line end */
	int failed;
	int have_type;
	struct buf line, data, type;
};

struct sse *
sse_new(size_t max_event)
{
	struct sse *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->max = max_event < 16 ? 16 : max_event;
	return p;
}

void
sse_free(struct sse *p)
{
	if (p == NULL)
		return;
	buf_free(&p->line);
	buf_free(&p->data);
	buf_free(&p->type);
	free(p);
}

size_t
sse_offset(const struct sse *p)
{
	return p->off;
}

int
sse_pending(const struct sse *p)
{
	return p->data.n > 0 || p->line.n > 0;
}

static int
field_is(const char *f, size_t n, const char *want)
{
	return strlen(want) == n && memcmp(f, want, n) == 0;
}

static void
event_reset(struct sse *p)
{
	p->data.n = 0;
	if (p->data.p)
		p->data.p[0] = '\0';
	p->type.n = 0;
	if (p->type.p)
		p->type.p[0] = '\0';
	p->have_type = 0;
}

/* one complete line (without its end): a blank line dispatches */
static int
line_done(struct sse *p, sse_event_cb cb, void *arg, struct err *e)
{
	const char *l = p->line.p ? p->line.p : "";
	size_t n = p->line.n;
	int rc = 0;

	p->line.n = 0;
	if (n == 0) {
		if (p->data.n == 0) {	/* the standard: no data, no event */
			event_reset(p);
			return 0;
		}
		struct sse_event ev = {
			.type = p->have_type ? p->type.p : "message",
			.type_len = p->have_type ? p->type.n : 7,
			.data = p->data.p,
			.data_len = p->data.n - 1,	/* the last LF is not data */
		};
		p->data.p[ev.data_len] = '\0';
		if (cb(arg, &ev, e) == -1)
			rc = -1;
		event_reset(p);
		return rc;
	}
	if (l[0] == ':')
		return 0;	/* a comment (keep-alives) */
	const char *colon = memchr(l, ':', n);
	size_t fl = colon ? (size_t)(colon - l) : n;
	const char *v = colon ? colon + 1 : l + n;
	size_t vl = colon ? n - fl - 1 : 0;
	if (vl > 0 && v[0] == ' ') {
		v++;
		vl--;
	}
	if (field_is(l, fl, "data")) {
		if (buf_add(&p->data, v, vl) == -1 || buf_add(&p->data, "\n", 1) == -1)
			return err_set(e, "SSE: out of memory at offset %zu", p->off);
	} else if (field_is(l, fl, "event")) {
		p->type.n = 0;
		if (buf_add(&p->type, v, vl) == -1)
			return err_set(e, "SSE: out of memory at offset %zu", p->off);
		p->have_type = 1;
	}
	/* "id", "retry" and unknown fields: nothing the proxy uses */
	return 0;
}

int
sse_feed(struct sse *p, const char *buf, size_t n, sse_event_cb cb, void *arg, struct err *e)
{
	static const unsigned char bom[3] = { 0xEF, 0xBB, 0xBF };
	size_t i = 0;

	if (p->failed)
		return err_set(e, "SSE: the stream already failed (offset %zu)", p->off);
	/* a BOM only at the very start, possibly split across pieces */
	while (!p->bom_done && i < n) {
		if ((unsigned char)buf[i] == bom[p->bom_seen]) {
			p->bom_seen++;
			i++;
			p->off++;
			if (p->bom_seen == 3)
				p->bom_done = 1;
			continue;
		}
		p->bom_done = 1;
		if (p->bom_seen > 0) {	/* a partial BOM was ordinary text after all */
			if (buf_add(&p->line, bom, p->bom_seen) == -1)
				goto oom;
		}
	}
	while (i < n) {
		char c = buf[i];
		if (p->after_cr && c == '\n') {	/* the LF of a CR LF */
			p->after_cr = 0;
			i++;
			p->off++;
			continue;
		}
		p->after_cr = 0;
		if (c == '\n' || c == '\r') {
			p->after_cr = c == '\r';
			i++;
			p->off++;
			if (line_done(p, cb, arg, e) == -1) {
				p->failed = 1;
				return -1;
			}
			continue;
		}
		/* the rest of this line in one step: up to the next line end or the input's end */
		size_t j = i;
		while (j < n && buf[j] != '\n' && buf[j] != '\r')
			j++;
		if (p->line.n + (j - i) + p->data.n + p->type.n > p->max) {
			p->failed = 1;
			return err_set(e, "SSE: an event longer than %zu bytes at offset %zu", p->max,
			    p->off);
		}
		if (buf_add(&p->line, buf + i, j - i) == -1)
			goto oom;
		p->off += j - i;
		i = j;
	}
	return 0;
oom:
	p->failed = 1;
	return err_set(e, "SSE: out of memory at offset %zu", p->off);
}
