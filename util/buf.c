/* buf.c - growable buffers and UTF-8 validation. */
#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
buf_reserve(struct buf *b, size_t extra)
{
	if (b->n + extra + 1 <= b->cap)
		return 0;
	if (extra > SIZE_MAX / 4 - b->n)
		return -1;
	size_t nc = b->cap ? b->cap : 64;
	while (nc < b->n + extra + 1)
		nc *= 2;
	char *np = realloc(b->p, nc);
	if (np == NULL)
		return -1;
	b->p = np;
	b->cap = nc;
	return 0;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) == -1)
		return -1;
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

int
buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)n;
	return 0;
}

void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

int
tokvec_push(struct tokvec *t, int32_t id)
{
	return tokvec_append(t, &id, 1);
}

int
tokvec_append(struct tokvec *t, const int32_t *ids, size_t n)
{
	if (t->n + n > t->cap) {
		size_t nc = t->cap ? t->cap : 64;
		while (nc < t->n + n)
			nc *= 2;
		int32_t *nv = realloc(t->v, nc * sizeof(*nv));
		if (nv == NULL)
			return -1;
		t->v = nv;
		t->cap = nc;
	}
	if (n)
		memcpy(t->v + t->n, ids, n * sizeof(*ids));
	t->n += n;
	return 0;
}

void
tokvec_free(struct tokvec *t)
{
	free(t->v);
	memset(t, 0, sizeof(*t));
}

int
utf8_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	if ((c & 0xf8) == 0xf0)
		return 4;
	return 1;
}

size_t
utf8_valid_prefix(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			k = 1; cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2; cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3; cp = c & 0x07;
		} else
			return i;
		if (n - i <= k)
			return i;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += k + 1;
	}
	return i;
}
