/* median.h - the median of a sample of doubles (benchmark timings, latencies). */
#ifndef GUARDD_MEDIAN_H
#define GUARDD_MEDIAN_H

#include <stddef.h>

/* qsort's ascending order for doubles. */
int median_cmp(const void *a, const void *b);

/* Sorts v[0..n) in place and returns its median: the middle value, or the mean of the two
 * middle ones when n is even; 0 when n is 0. */
double median_of(double *v, size_t n);

#endif
