/* benchutil.h - what the benchmark programs tests/bench_*.c share: a clock in seconds and a
 * checked integer argument. Header-only (static inline), because bench_sgemm links no library
 * of ours (the Makefile's bench_% rule links OpenBLAS only). */
#ifndef GUARDD_BENCHUTIL_H
#define GUARDD_BENCHUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* clock id (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, ...) in seconds */
static inline double
bench_clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* argv[i] as an integer in 1..max, def when absent; exits 2 naming prog and the argument
 * when it is not one */
static inline long
bench_arg(const char *prog, int argc, char **argv, int i, long def, long max)
{
	if (argc <= i)
		return def;
	char *end;
	long v = strtol(argv[i], &end, 10);
	if (*end != '\0' || v < 1 || v > max) {
		fprintf(stderr, "%s: argument %d '%s' is not an integer in 1..%ld\n", prog, i,
		    argv[i], max);
		exit(2);
	}
	return v;
}

#endif
