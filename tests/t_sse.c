/* t_sse.c - the server-sent events parser (proto/sse.c): the standard's line ends and
 * fields, events split at every byte give the same events as in one piece, the limit and
 * the stop from a callback fail with the offset named. */
#include <stdio.h>
#include <string.h>

#include "proto/sse.h"
#include "tap.h"
#include "util/buf.h"

/* events written as "type|data;" into a buffer */
static int
collect(void *arg, const struct sse_event *ev, struct err *e)
{
	struct buf *b = arg;

	(void)e;
	buf_add(b, ev->type, ev->type_len);
	buf_add(b, "|", 1);
	buf_add(b, ev->data, ev->data_len);
	buf_add(b, ";", 1);
	return 0;
}

static int
stop_at_second(void *arg, const struct sse_event *ev, struct err *e)
{
	int *n = arg;

	(void)ev;
	if (++*n == 2)
		return err_set(e, "second event refused");
	return 0;
}

/* the events of text fed in pieces of at most step bytes (0: whole) */
static int
parse(const char *text, size_t n, size_t step, size_t max, struct buf *out, struct err *e)
{
	struct sse *p = sse_new(max);
	int rc = 0;

	out->n = 0;
	buf_add(out, "", 0);
	for (size_t at = 0; at < n && rc == 0;) {
		size_t k = step && step < n - at ? step : n - at;
		rc = sse_feed(p, text + at, k, collect, out, e);
		at += k;
	}
	sse_free(p);
	return rc;
}

static void
same_everywhere(const char *name, const char *text, const char *want)
{
	struct buf got = { 0 };
	struct err e;
	size_t n = strlen(text);
	int bad = 0;

	if (parse(text, n, 0, 4096, &got, &e) != 0 || strcmp(got.p, want) != 0) {
		ok(0, "%s: whole: got '%s' want '%s'", name, got.p ? got.p : "", want);
		buf_free(&got);
		return;
	}
	ok(1, "%s: '%s'", name, got.p);
	for (size_t step = 1; step <= n && !bad; step++)
		if (parse(text, n, step, 4096, &got, &e) != 0 || strcmp(got.p, want) != 0) {
			diag("pieces of %zu: '%s'", step, got.p);
			bad = 1;
		}
	/* every split point into two pieces (a CR at the end of one, LF at the start of the next) */
	for (size_t cut = 1; cut < n && !bad; cut++) {
		struct sse *p = sse_new(4096);
		got.n = 0;
		buf_add(&got, "", 0);
		if (sse_feed(p, text, cut, collect, &got, &e) != 0 ||
		    sse_feed(p, text + cut, n - cut, collect, &got, &e) != 0 || strcmp(got.p, want) != 0) {
			diag("cut at %zu: '%s'", cut, got.p);
			bad = 1;
		}
		sse_free(p);
	}
	ok(!bad, "%s: the same events from every chunking", name);
	buf_free(&got);
}

int
main(void)
{
	struct buf got = { 0 };
	struct err e;

	same_everywhere("LF", "data: a\n\ndata: b\n\n", "message|a;message|b;");
	same_everywhere("CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", "message|a;message|b;");
	same_everywhere("CR", "data: a\r\rdata: b\r\r", "message|a;message|b;");
	same_everywhere("mixed ends", "data: a\r\n\rdata: b\n\r\n", "message|a;message|b;");
	same_everywhere("multi-line data", "data: x\ndata:y\ndata\n\n", "message|x\ny\n;");
	same_everywhere("one space only", "data:  two\n\n", "message| two;");
	same_everywhere("comments and unknown fields", ": keep-alive\nid: 7\nretry: 10\nfoo: bar\n"
	    "data: z\n\n", "message|z;");
	same_everywhere("event type", "event: error\ndata: {}\n\ndata: m\n\n", "error|{};message|m;");
	same_everywhere("no data, no event", "event: x\n\n\n\ndata: q\n\n", "message|q;");
	same_everywhere("BOM", "\xEF\xBB\xBF" "data: b\n\n", "message|b;");
	/* a partial BOM is text: "\xEF\xBB" is a line of its own here, an unknown field */
	same_everywhere("not a BOM", "\xEF\xBB\ndata: b\n\n\xEF" "data: c\n\n", "message|b;");
	same_everywhere("OpenAI stream", "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
	    "data: [DONE]\n\n", "message|{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]};message|[DONE];");

	/* an event at the end with no blank line is pending, not dispatched */
	struct sse *p = sse_new(64);
	got.n = 0;
	buf_add(&got, "", 0);
	ok(sse_feed(p, "data: a\n\ndata: cut", 18, collect, &got, &e) == 0 && strcmp(got.p, "message|a;") == 0 &&
	    sse_pending(p) && sse_offset(p) == 18, "an unfinished event is held (%s, offset %zu)", got.p, sse_offset(p));
	sse_free(p);

	/* the limit: one long line, fed in pieces, fails at its offset */
	char big[300];
	memset(big, 'x', sizeof(big));
	memcpy(big, "data: ", 6);
	int rc = parse(big, sizeof(big), 7, 100, &got, &e);
	ok(rc == -1 && strstr(e.msg, "longer than 100 bytes at offset"), "an over-long line is refused (%s)", e.msg);
	/* many short data lines add up to the limit too */
	struct buf many = { 0 };
	for (int i = 0; i < 100; i++)
		buf_adds(&many, "data: abc\n");
	rc = parse(many.p, many.n, 0, 200, &got, &e);
	ok(rc == -1 && strstr(e.msg, "longer than 200 bytes"), "many data lines of one event are refused (%s)", e.msg);
	buf_adds(&many, "\n");
	rc = parse(many.p, many.n, 0, 4096, &got, &e);
	ok(rc == 0 && got.n == 8 + 100 * 4 - 1 + 1, "the same within a larger limit: one event of %zu bytes", got.n);
	buf_free(&many);

	/* a callback stops it; later input is refused */
	int count = 0;
	p = sse_new(64);
	rc = sse_feed(p, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 27, stop_at_second, &count, &e);
	ok(rc == -1 && count == 2 && strcmp(e.msg, "second event refused") == 0, "a callback's -1 stops the parser (%s)", e.msg);
	rc = sse_feed(p, "data: 4\n\n", 9, stop_at_second, &count, &e);
	ok(rc == -1 && count == 2 && strstr(e.msg, "already failed"), "and input after it is refused (%s)", e.msg);
	sse_free(p);

	/* NUL bytes are data, not ends */
	rc = parse("data: a\0b\n\n", 11, 1, 64, &got, &e);
	ok(rc == 0 && got.n == 12 && memcmp(got.p, "message|a\0b;", 12) == 0, "NUL bytes are kept as data");

	buf_free(&got);
	printf("1..%d\n", tap_n);
	return tap_fail != 0;
}
