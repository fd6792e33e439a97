/* stop.c - releasing an answer's text as it is generated: a UTF-8 repair pass byte by byte
 * (the maximal ill-formed subpart becomes one U+FFFD, as the Unicode standard recommends),
 * then stop strings searched in the repaired text; only text that can no longer change is
 * released. */
#include "generator/stop.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

struct stop {
	char **str;
	size_t *len, n;
	struct buf text;	/* repaired text; [0, rel) is released */
	size_t rel;
	int matched;
	unsigned char pend[4];	/* an incomplete UTF-8 sequence */
	int n_pend, need;	/* bytes held, continuation bytes still wanted */
	unsigned char lo, hi;	/* the range of the next continuation byte */
};

static const char REPLACEMENT[] = "\xef\xbf\xbd";

void
stop_free(struct stop *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->str[i]);
	free(s->str);
	free(s->len);
	buf_free(&s->text);
	free(s);
}

struct stop *
stop_new(const char *const *strs, size_t n, struct err *e)
{
	struct stop *s;

	if (n > STOP_MAX_STRINGS) {
		err_set(e, "%zu stop strings (at most %d)", n, STOP_MAX_STRINGS);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		size_t l = strs != NULL && strs[i] != NULL ? strlen(strs[i]) : 0;
		if (l == 0) {
			err_set(e, "stop string %zu is empty", i);
			return NULL;
		}
		if (l > STOP_MAX_LEN) {
			err_set(e, "stop string %zu is %zu bytes (at most %d)", i, l, STOP_MAX_LEN);
			return NULL;
		}
		if (utf8_valid_prefix(strs[i], l) != l) {
			err_set(e, "stop string %zu: invalid UTF-8 at byte %zu", i,
			    utf8_valid_prefix(strs[i], l));
			return NULL;
		}
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (n && ((s->str = calloc(n, sizeof(*s->str))) == NULL ||
	    (s->len = calloc(n, sizeof(*s->len))) == NULL)))
		goto oom;
	s->n = n;
	for (size_t i = 0; i < n; i++) {
		s->len[i] = strlen(strs[i]);
		if ((s->str[i] = strdup(strs[i])) == NULL)
			goto oom;
	}
	if (buf_add(&s->text, "", 0) == -1)
		goto oom;
	return s;
oom:
	err_set(e, "out of memory");
	stop_free(s);
	return NULL;
}

/* The valid range of the first continuation byte after lead byte c (0 when c cannot start a
 * sequence); later continuation bytes are 80..BF. */
static int
lead(unsigned char c, unsigned char *lo, unsigned char *hi)
{
	*lo = 0x80;
	*hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF)
		return 1;
	if (c >= 0xE0 && c <= 0xEF) {
		if (c == 0xE0)
			*lo = 0xA0;	/* no overlong forms */
		if (c == 0xED)
			*hi = 0x9F;	/* no surrogates */
		return 2;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (c == 0xF0)
			*lo = 0x90;
		if (c == 0xF4)
			*hi = 0x8F;	/* nothing past U+10FFFF */
		return 3;
	}
	return 0;
}

static int
repair_byte(struct stop *s, unsigned char c)
{
	if (s->need > 0) {
		if (c >= s->lo && c <= s->hi) {
			s->pend[s->n_pend++] = c;
			s->lo = 0x80;
			s->hi = 0xBF;
			if (--s->need > 0)
				return 0;
			size_t k = (size_t)s->n_pend;
			s->n_pend = 0;
			return buf_add(&s->text, s->pend, k);
		}
		/* the sequence broke off: it becomes one U+FFFD, c starts afresh */
		s->need = 0;
		s->n_pend = 0;
		if (buf_add(&s->text, REPLACEMENT, 3) == -1)
			return -1;
	}
	if (c < 0x80)
		return buf_add(&s->text, &c, 1);
	if ((s->need = lead(c, &s->lo, &s->hi)) == 0)
		return buf_add(&s->text, REPLACEMENT, 3);
	s->pend[0] = c;
	s->n_pend = 1;
	return 0;
}

/* Cuts at the earliest stop string in the unreleased text, else holds back the longest tail
 * that is a proper prefix of a stop string. A match cannot start in the released part: that
 * part never ends with a proper prefix of a stop string. */
static int
check(struct stop *s, int final)
{
	const char *t = s->text.p;
	size_t n = s->text.n, best = n, hold = 0;

	for (size_t i = 0; i < s->n; i++) {
		const char *m = memmem(t + s->rel, n - s->rel, s->str[i], s->len[i]);
		if (m != NULL && (size_t)(m - t) < best)
			best = (size_t)(m - t);
	}
	if (best < n) {
		s->text.n = best;
		s->text.p[best] = '\0';
		s->rel = best;
		s->matched = 1;
		return 1;
	}
	for (size_t i = 0; i < s->n && !final; i++) {
		size_t k = s->len[i] - 1;
		if (k > n - s->rel)
			k = n - s->rel;
		for (; k > hold; k--)
			if (memcmp(t + n - k, s->str[i], k) == 0) {
				hold = k;
				break;
			}
	}
	s->rel = n - hold;
	return 0;
}

int
stop_feed(struct stop *s, const char *p, size_t n)
{
	if (s->matched)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (repair_byte(s, (unsigned char)p[i]) == -1)
			return -1;
	return check(s, 0);
}

int
stop_flush(struct stop *s)
{
	if (s->matched)
		return 1;
	if (s->need > 0) {
		s->need = 0;
		s->n_pend = 0;
		if (buf_add(&s->text, REPLACEMENT, 3) == -1)
			return -1;
	}
	return check(s, 1);
}

const char *
stop_text(const struct stop *s, size_t *len)
{
	*len = s->rel;
	return s->text.p;
}

int
stop_matched(const struct stop *s)
{
	return s->matched;
}
