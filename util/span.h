/* span.h - finding overlapping byte ranges (tensor data in model files) in O(n log n). */
#ifndef GUARDD_SPAN_H
#define GUARDD_SPAN_H

#include <stddef.h>
#include <stdint.h>

struct span {
	uint64_t beg, end;	/* [beg, end); empty spans overlap nothing */
	size_t id;		/* the caller's index */
};

/* Sorts sp by beg and looks for two non-empty spans sharing a byte. Returns 1 and sets *a, *b
 * (positions in the sorted sp, a before b) when found, else 0. */
int span_overlap(struct span *sp, size_t n, size_t *a, size_t *b);

#endif
