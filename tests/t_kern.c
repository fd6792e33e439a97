/* t_kern.c - the matmul kernels of the family in use (GUARD_KERNELS caps it) compute every
 * token's row the same, bit for bit, whatever the batch (1 to 13 tokens, 1 or 2 threads),
 * for F32, F16 and BF16 weights and row lengths that do and do not fill their blocks; and
 * they agree with a float64 dot product.
 *   GUARD_KERNELS=avx2 t_kern */
#include <math.h>

#include "core/gguf.h"
#include "core/half.h"
#include "core/kern.h"
#include "core/matmul.h"
#include "core/pool.h"
#include "tap.h"

static uint32_t rng = 12345;

static float
rnd(void)
{
	rng = rng * 1664525u + 1013904223u;
	return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static int
test_shape(int type, int64_t rows, int64_t cols, struct pool *p1, struct pool *p2)
{
	enum { M = 13 };
	size_t esz = type == GGML_TYPE_F32 ? 4 : 2;
	void *wd = malloc((size_t)(rows * cols) * esz);
	float *wf = malloc((size_t)(rows * cols) * 4), *x = malloc((size_t)(M * cols) * 4);
	float *one = malloc((size_t)(M * rows) * 4), *y = malloc((size_t)(M * rows) * 4);
	void *scratch = malloc(matmul_scratch_size(M, cols));
	struct weight w = { wd, type, rows, cols };
	int same = 1;
	double maxrel = 0;

	for (int64_t i = 0; i < rows * cols; i++) {
		float v = rnd();
		if (type == GGML_TYPE_F32)
			((float *)wd)[i] = wf[i] = v;
		else if (type == GGML_TYPE_F16)
			wf[i] = f16_to_f32(((uint16_t *)wd)[i] = f32_to_f16(v));
		else
			wf[i] = bf16_to_f32(((uint16_t *)wd)[i] = f32_to_bf16(v));
	}
	for (int64_t i = 0; i < M * cols; i++)
		x[i] = rnd();
	/* each token alone, one thread: the reference rows */
	for (int t = 0; t < M; t++)
		matmul(p1, &w, x + t * cols, 1, one + t * rows, scratch);
	for (int t = 0; t < M; t++)
		for (int64_t r = 0; r < rows; r++) {
			double s = 0, a = 0;
			for (int64_t k = 0; k < cols; k++) {
				s += (double)wf[r * cols + k] * x[t * cols + k];
				a += fabs((double)wf[r * cols + k] * x[t * cols + k]);
			}
			maxrel = fmax(maxrel, fabs(one[t * rows + r] - s) / (a + 1e-30));
		}
	/* every batch size and offset, both pools */
	for (int m = 2; m <= M; m++)
		for (int pi = 0; pi < 2; pi++) {
			int t0 = (m * 5) % (M - m + 1);
			matmul(pi ? p2 : p1, &w, x + t0 * cols, m, y, scratch);
			if (memcmp(y, one + t0 * rows, (size_t)(m * rows) * 4) != 0)
				same = 0;
		}
	/* BF16 kernels with avx512bf16 round x to bfloat16: ~2^-9 relative per product */
	double tol = kern_set() >= KERN_AVX512BF16 && type == GGML_TYPE_BF16 ? 1e-2 : 1e-5;
	ok(same, "%s %lldx%lld: batches of 1-%d tokens (1 and 2 threads) give the same bits",
	    ggml_type_name((uint32_t)type), (long long)rows, (long long)cols, M);
	ok(maxrel < tol, "%s %lldx%lld: within %.0e of float64 (relative to sum |w x|: %.2g)",
	    ggml_type_name((uint32_t)type), (long long)rows, (long long)cols, tol, maxrel);
	free(wd);
	free(wf);
	free(x);
	free(one);
	free(y);
	free(scratch);
	return same;
}

int
main(void)
{
	const char *want = getenv("GUARD_KERNELS");
	enum kern_set cpu = kern_cpu_set(), act = kern_set();

	diag("CPU and OS support %s; in use: %s (GUARD_KERNELS=%s)", kern_set_name(cpu),
	    matmul_kernel_name(), want ? want : "unset");
	if (want != NULL && *want) {
		int asked = -1;
		for (int i = KERN_GENERIC; i <= KERN_AVX512BF16; i++)
			if (strcmp(want, kern_set_name((enum kern_set)i)) == 0)
				asked = i;
		if (asked > (int)cpu) {
			ok(act == cpu, "GUARD_KERNELS=%s on a CPU that runs up to %s: capped to %s",
			    want, kern_set_name(cpu), kern_set_name(act));
			printf("ok %d # skip this CPU cannot run %s kernels\n", ++tap_n, want);
			return done_testing();
		}
		ok(asked >= 0 && (int)act == asked && strcmp(matmul_kernel_name(), want) == 0,
		    "GUARD_KERNELS=%s selects %s", want, matmul_kernel_name());
	} else
		ok(act == cpu, "unset GUARD_KERNELS: the best family the CPU runs (%s)",
		    kern_set_name(act));
	struct pool *p1 = pool_new(1), *p2 = pool_new(2);
	static const int types[] = { GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16 };
	/* 64 fills every block; 72 is a multiple of 8 only (AVX2 yes, AVX-512 falls back to
	 * the portable code); 2080 spans several k blocks */
	static const int64_t cols[] = { 64, 72, 2080 };
	for (int ti = 0; ti < 3; ti++)
		for (int ci = 0; ci < 3; ci++)
			test_shape(types[ti], 37, cols[ci], p1, p2);
	pool_free(p1);
	pool_free(p2);
	return done_testing();
}
