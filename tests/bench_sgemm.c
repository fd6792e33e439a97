/* bench_sgemm.c - this machine's OpenBLAS SGEMM rate right now, the yardstick that
 * make bench-compare prints beside its prefill figures (the machine's speed drifts up to 5x
 * between hours, so a prefill rate means something only next to a rate measured in the same
 * run).
 *
 *   bench_sgemm [threads [m n k [reps]]]
 *
 * The default shape is a prefill of 512 tokens through a 2048x2048 projection of the
 * Llama Guard 3 1B shape (C[512x2048] = A[512x2048] * B^T). One warm-up call, then reps
 * timed calls; prints one JSON line with the median and the best GFLOP/s. Not part of the
 * test suite: it asserts nothing. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "benchutil.h"

/* in libopenblas, not declared by every cblas.h */
void openblas_set_num_threads(int n);

/* (util/median.c's order: this program links no library of ours) */
static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	const char *me = "bench_sgemm";
	long threads = bench_arg(me, argc, argv, 1, 2, 1024);
	long m = bench_arg(me, argc, argv, 2, 512, 1 << 16);
	long n = bench_arg(me, argc, argv, 3, 2048, 1 << 16);
	long k = bench_arg(me, argc, argv, 4, 2048, 1 << 16), reps = bench_arg(me, argc, argv, 5, 7, 1000);
	float *a = malloc((size_t)(m * k) * sizeof(float));
	float *b = malloc((size_t)(n * k) * sizeof(float));
	float *c = malloc((size_t)(m * n) * sizeof(float));
	double *g = malloc((size_t)reps * sizeof(double));

	if (a == NULL || b == NULL || c == NULL || g == NULL) {
		fprintf(stderr, "bench_sgemm: out of memory for %ldx%ldx%ld\n", m, n, k);
		return 1;
	}
	uint64_t z = 1;
	for (long i = 0; i < m * k; i++, z = z * 6364136223846793005ull + 1)
		a[i] = (float)(z >> 40) / (float)(1 << 24) - 0.5f;
	for (long i = 0; i < n * k; i++, z = z * 6364136223846793005ull + 1)
		b[i] = (float)(z >> 40) / (float)(1 << 24) - 0.5f;
	openblas_set_num_threads((int)threads);
	for (long r = -1; r < reps; r++) {
		double t0 = bench_clock_s(CLOCK_MONOTONIC);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a,
		    (int)k, b, (int)k, 0.0f, c, (int)n);
		double dt = bench_clock_s(CLOCK_MONOTONIC) - t0;
		if (r >= 0)
			g[r] = 2.0 * (double)m * (double)n * (double)k / dt / 1e9;
	}
	qsort(g, (size_t)reps, sizeof(*g), cmp_d);
	/* c[0] printed so the calls cannot be optimised away and a broken BLAS shows */
	printf("{\"threads\": %ld, \"m\": %ld, \"n\": %ld, \"k\": %ld, \"reps\": %ld, "
	    "\"gflops_median\": %.2f, \"gflops_best\": %.2f, \"c0\": %.6g}\n", threads, m, n, k,
	    reps, g[reps / 2], g[reps - 1], (double)c[0]);
	free(a);
	free(b);
	free(c);
	free(g);
	return 0;
}
