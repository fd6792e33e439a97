/* span.c - overlap detection: after sorting by start, an overlap always shows between
 * neighbours among the non-empty spans (if x overlaps a later z, x overlaps the next one). */
#include "util/span.h"

#include <stdlib.h>

static int
by_begin(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->beg != y->beg)
		return x->beg < y->beg ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int
span_overlap(struct span *sp, size_t n, size_t *a, size_t *b)
{
	size_t prev = n;

	qsort(sp, n, sizeof(*sp), by_begin);
	for (size_t i = 0; i < n; i++) {
		if (sp[i].end <= sp[i].beg)
			continue;
		if (prev < n && sp[i].beg < sp[prev].end) {
			*a = prev;
			*b = i;
			return 1;
		}
		prev = i;
	}
	return 0;
}
