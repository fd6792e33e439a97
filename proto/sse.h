/* sse.h - an incremental parser of server-sent events (text/event-stream, as the WHATWG
 * HTML standard defines them), for an upstream's streamed answer. Bytes arrive in any
 * pieces; each byte is examined once (cost linear in the input) and an event is handed on
 * when its blank line arrives. Lines end with LF, CR LF or CR (also across pieces); a
 * leading BOM is skipped; ':' lines are comments; "data" lines are joined with LF; "event"
 * names the event; "id" and "retry" are kept as the standard says but unused. An event
 * (its pending line, data and name together) longer than the limit is an error naming the
 * offset, never an allocation without bound. */
#ifndef GUARDD_SSE_H
#define GUARDD_SSE_H

#include <stddef.h>

#include "util/err.h"

struct sse;

struct sse_event {
	const char *type;	/* the "event" field, "message" when none was given */
	size_t type_len;
	const char *data;	/* the data lines joined with LF (NUL-terminated, may hold NUL) */
	size_t data_len;
};

/* An event is ready; return -1 to stop the parser (sse_feed then fails with e untouched
 * unless the callback filled it). */
typedef int (*sse_event_cb)(void *arg, const struct sse_event *ev, struct err *e);

/* A parser whose events may be at most max_event bytes (>= 16). NULL: out of memory. */
struct sse *sse_new(size_t max_event);
void sse_free(struct sse *p);
/* Feeds n bytes; calls cb for every event they complete. Returns -1 with e set (the offset
 * in the whole stream named) on an over-long event or when cb stopped it. After an error
 * the parser refuses further input. */
int sse_feed(struct sse *p, const char *buf, size_t n, sse_event_cb cb, void *arg,
    struct err *e);
/* Bytes fed so far. */
size_t sse_offset(const struct sse *p);
/* 1 when the stream stopped inside an event: data was read that no blank line completed
 * (the standard drops such an event at the end of the stream). */
int sse_pending(const struct sse *p);

#endif
