/* bench_kq.c - microbenchmark of the quantized-weight kernels (not a unit test):
 * per type, GOP/s at m = 512 tokens (prefill) on an 8192 x 2048 matrix, and weight GB/s at
 * m = 1 and m = 4 (decode) on a 16384 x 4096 matrix larger than the caches, beside the
 * BF16 kernel (kern_bf16_avx512) on the same shapes, the two alternating in 3 rounds (the
 * machine's speed drifts); best time of each, pool threads. Ratios are BF16 time / ours.
 * Usage: bench_kq [threads (2)] [type name ...]     e.g. bench_kq 2 Q8_0 Q4_K
 * KQ_DECODE_ROWS=256 makes the decode matrix small enough for the caches; KQ_CPUTIME=1 times
 * with process CPU time instead of wall time; KQ_M=96 sets the prefill's tokens; KQ_DECODE=0
 * skips decode; KQ_AMX_AB=1 times the prefill with and without AMX int8 tiles alternately
 * (GUARD_AMX=1 and 0) instead of against BF16. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/gguf.h"
#include "core/half.h"
#include "core/kern.h"
#include "core/pool.h"
#include "core/quant.h"

#include "benchutil.h"
#include "xorshift.h"

static uint32_t rng = 7;

static uint32_t
rnd32(void)
{
	return xorshift32(&rng);
}

static double
now(void)
{
	/* KQ_CPUTIME=1: process CPU time, steadier than wall time on a loaded machine (use 1
	 * thread: the figures are then one core's) */
	static int cpu = -1;
	if (cpu < 0)
		cpu = getenv("KQ_CPUTIME") != NULL && atoi(getenv("KQ_CPUTIME")) > 0;
	return bench_clock_s(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC);
}

struct job {
	int type;		/* -1: BF16 */
	kern_q_fn fn;
	const void *w;
	int64_t rows, k;
	const void *x;
	int m;
	float *y;
};

static void
run(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int64_t blocks = (j->rows + 31) / 32;
	int64_t r0 = blocks * ith / nth * 32, r1 = blocks * (ith + 1) / nth * 32;

	if (r1 > j->rows)
		r1 = j->rows;
	if (r1 <= r0)
		return;
	if (j->type < 0)
		kern_bf16_avx512(j->w, j->k, r0, r1, j->x, j->m, j->y, j->rows);
	else
		j->fn(j->type, j->w, j->k, r0, r1, j->x, j->m, j->y, j->rows);
}

/* seconds for one product, best of reps */
static double
timeit(struct pool *p, struct job *j, int reps)
{
	double best = 1e30;

	for (int i = 0; i < reps; i++) {
		double t0 = now();
		pool_run(p, run, j);
		double t = now() - t0;
		if (t < best)
			best = t;
	}
	return best;
}

static void *
weights(int type, int64_t rows, int64_t k, size_t *size)
{
	uint64_t block, bytes;

	if (type < 0) {
		block = 1;
		bytes = 2;
	} else
		ggml_type_size((uint32_t)type, &block, &bytes);
	*size = (size_t)rows * (size_t)(k / (int64_t)block) * bytes;
	uint8_t *w = aligned_alloc(64, (*size + 63) / 64 * 64);
	for (size_t i = 0; i + 4 <= *size; i += 4) {
		uint32_t v = rnd32();
		memcpy(w + i, &v, 4);
	}
	/* small finite scales: every half is a small number (exponent bits cleared) */
	if (type < 0) {
		uint16_t *h = (uint16_t *)w;
		for (size_t i = 0; i < *size / 2; i++)
			h[i] = f32_to_bf16((float)(h[i] & 0xff) / 4096.0f - 1.0f / 32);
	} else
		for (size_t o = 0; o + bytes <= *size; o += bytes) {
			uint16_t h = f32_to_f16(0.01f);
			if (type == GGML_TYPE_Q8_K) {
				float d = 0.01f;
				memcpy(w + o, &d, 4);
			} else if (type == GGML_TYPE_Q6_K)
				memcpy(w + o + 208, &h, 2);
			else {
				memcpy(w + o, &h, 2);
				if (type != GGML_TYPE_Q8_0 && type != GGML_TYPE_Q4_0 &&
				    type != GGML_TYPE_Q5_0)
					memcpy(w + o + 2, &h, 2);
			}
		}
	return w;
}

static void *
acts(int type, int m, int64_t k)
{
	float *x = malloc(sizeof(float) * (size_t)k);
	size_t rb = type < 0 ? (size_t)k * 2 : ((size_t)k + (size_t)k / 32 * 6 + 63) / 64 * 64;
	uint8_t *a = aligned_alloc(64, rb * (size_t)m);
	kern_qact_fn q = kern_qact_pick();

	for (int t = 0; t < m; t++) {
		for (int64_t i = 0; i < k; i++)
			x[i] = (float)(int)(rnd32() % 2001 - 1000) / 1000.0f;
		if (type < 0)
			kern_to_bf16_avx512(x, (uint16_t *)(a + rb * (size_t)t), k);
		else
			q(x, k, a + rb * (size_t)t);
	}
	free(x);
	return a;
}

/* one shape: the quantized kernel and the BF16 one on the same shape, alternating in
 * rounds (the machine's speed drifts), best time of each */
struct shape {
	int64_t rows, k;
	int m;
};

static void
pair(struct pool *p, int type, struct shape sh, int reps, double *tq, double *tb, size_t *qsize)
{
	struct job q = { type, kern_q_pick(type), NULL, sh.rows, sh.k, NULL, sh.m, NULL };
	struct job b = { -1, NULL, NULL, sh.rows, sh.k, NULL, sh.m, NULL };
	size_t bsize;

	q.w = weights(type, sh.rows, sh.k, qsize);
	q.x = acts(type, sh.m, sh.k);
	q.y = malloc(sizeof(float) * (size_t)(sh.rows * sh.m));
	int bf = kern_set() >= KERN_AVX512BF16;
	if (bf) {
		b.w = weights(-1, sh.rows, sh.k, &bsize);
		b.x = acts(-1, sh.m, sh.k);
		b.y = q.y;
	}
	*tq = *tb = 1e30;
	/* KQ_AMX_AB: the "BF16" column is this kernel without AMX tiles (kern_amx_on reads
	 * GUARD_AMX on every call) */
	const char *ab = getenv("KQ_AMX_AB");
	int amx_ab = ab != NULL && atoi(ab) > 0 && sh.m >= 16;
	for (int round = 0; round < 3; round++) {
		if (amx_ab)
			setenv("GUARD_AMX", "1", 1);
		double t = timeit(p, &q, reps);
		*tq = t < *tq ? t : *tq;
		if (amx_ab) {
			setenv("GUARD_AMX", "0", 1);
			t = timeit(p, &q, reps);
			*tb = t < *tb ? t : *tb;
		} else if (bf) {
			t = timeit(p, &b, reps);
			*tb = t < *tb ? t : *tb;
		}
	}
	free((void *)q.w);
	free((void *)q.x);
	free(q.y);
	free((void *)b.w);
	free((void *)b.x);
}

static void
bench(struct pool *p, int type)
{
	const char *name = ggml_type_name((uint32_t)type);
	size_t size;
	const char *em = getenv("KQ_M"), *ed = getenv("KQ_DECODE");
	int m = em != NULL && atoi(em) > 0 ? atoi(em) : 512;
	double tq, tb, ops = 2.0 * 8192 * 2048 * m;
	double bsize = 16384.0 * 4096 * 2;
	const char *other = getenv("KQ_AMX_AB") != NULL && atoi(getenv("KQ_AMX_AB")) > 0 ?
	    "no AMX" : "BF16";

	if (kern_q_pick(type) == NULL) {
		printf("%-5s no SIMD kernel here\n", name);
		return;
	}
	pair(p, type, (struct shape){ 8192, 2048, m }, 2, &tq, &tb, &size);
	printf("%-5s prefill m=%d (8192x2048): %6.1f GOP/s   %s %6.1f G(FL)OP/s   ratio %.2f\n",
	    name, m, ops / tq / 1e9, other, ops / tb / 1e9, tb / tq);
	if (ed != NULL && atoi(ed) == 0)
		return;
	/* KQ_DECODE_ROWS: fewer rows, e.g. 256 to stay in the caches and see the kernel's own
	 * speed rather than the memory's */
	const char *dr = getenv("KQ_DECODE_ROWS");
	int64_t rows = dr != NULL && atoi(dr) > 0 ? atoi(dr) : 16384;
	bsize = (double)rows * 4096 * 2;
	for (int md = 1; md <= 4; md += 3) {
		pair(p, type, (struct shape){ rows, 4096, md }, rows < 16384 ? 200 : 5, &tq, &tb, &size);
		printf("%-5s decode m=%d (%lldx4096, %.1f MB): %5.1f GB/s   BF16 %5.1f GB/s   "
		    "time ratio %.2f\n", name, md, (long long)rows, (double)size / 1e6,
		    (double)size / tq / 1e9, bsize / tb / 1e9, tb / tq);
	}
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	int nth = argc > 1 ? atoi(argv[1]) : 2;
	struct pool *p = pool_new(nth > 0 ? nth : 2);
	static const int all[] = { GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0,
		GGML_TYPE_Q5_1, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_Q8_K };

	printf("kernels: %s%s, %d threads\n", kern_set_name(kern_set()),
	    kern_cpu_vnni() ? " + avx512vnni" : "", pool_size(p));
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		int want = argc <= 2;
		for (int a = 2; a < argc; a++)
			want |= strcmp(argv[a], ggml_type_name((uint32_t)all[i])) == 0;
		if (want)
			bench(p, all[i]);
	}
	pool_free(p);
	return 0;
}
