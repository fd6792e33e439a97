/* matmul.c - dispatch of y = x W^T by weight type to our kernels (AVX-512, AVX2 or portable C,
 * whichever family cpu.c chose), split over the pool by rows. No BLAS: its SGEMM may sum a row
 * differently depending on the batch shape, and every result here must not depend on it. */
#include "core/matmul.h"

#include <stdatomic.h>
#include <string.h>

#include "core/gguf.h"
#include "core/half.h"
#include "core/kern.h"
#include "core/pool.h"
#include "core/quant.h"

static atomic_int force_generic;

void matmul_force_generic(int on) { atomic_store(&force_generic, on); }

static enum kern_set
level(void)
{
	return atomic_load(&force_generic) ? KERN_GENERIC : kern_set();
}

const char *
matmul_kernel_name(void)
{
	return kern_set_name(level());
}

const char *
matmul_quant_kernel_name(int type)
{
	if (!quant_supported(type))
		return "";
	return !atomic_load(&force_generic) && kern_q_pick(type) != NULL ? "int8 SIMD" :
	    "portable C";
}

int
matmul_supported(int type)
{
	return type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_BF16 ||
	    quant_supported(type);
}

/* bfloat16 copies of x, or quantized activation rows (64-byte aligned in the scratch) */
size_t
matmul_scratch_size(int m, int64_t k)
{
	/* (AMX packs whole groups of 16 tokens) */
	size_t b16 = (size_t)(m + 15) / 16 * 16 * (size_t)k * sizeof(uint16_t);
	size_t qa = k % QA_BLOCK == 0 ? (size_t)m * qact_row_bytes(k) : 0;

	return (b16 > qa ? b16 : qa) + 64;
}

static inline float
elem(const struct weight *w, const void *row, int64_t i)
{
	switch (w->type) {
	case GGML_TYPE_F16: return f16_to_f32(((const uint16_t *)row)[i]);
	case GGML_TYPE_BF16: return bf16_to_f32(((const uint16_t *)row)[i]);
	default: return ((const float *)row)[i];
	}
}

static size_t
row_bytes(const struct weight *w)
{
	uint64_t block = 1, bytes = 4;

	ggml_type_size((uint32_t)w->type, &block, &bytes);
	return (size_t)(w->cols / (int64_t)block) * (size_t)bytes;
}

void
weight_row(const struct weight *w, int64_t row, float *out)
{
	const char *p = (const char *)w->data + (size_t)row * row_bytes(w);

	if (quant_supported(w->type)) {
		quant_dequant_row(w->type, p, out, w->cols);
		return;
	}
	for (int64_t i = 0; i < w->cols; i++)
		out[i] = elem(w, p, i);
}

struct job {
	const struct weight *w;
	const float *x;
	const uint16_t *xb;
	int m;
	float *y;
	void *xq;		/* quantized activation rows */
	kern_q_fn qfn;
	kern_qact_fn qact;
};

/* Rows for thread ith: contiguous ranges, multiples of 16 so tiles stay whole. */
static void
split_rows(int64_t rows, int ith, int nth, int64_t *r0, int64_t *r1)
{
	int64_t blocks = (rows + 15) / 16;
	int64_t b0 = blocks * ith / nth, b1 = blocks * (ith + 1) / nth;

	*r0 = b0 * 16;
	*r1 = b1 * 16 < rows ? b1 * 16 : rows;
}

static void
run_generic(void *arg, int ith, int nth)
{
	struct job *j = arg;
	const struct weight *w = j->w;
	int64_t r0, r1, k = w->cols;
	float buf[512];

	split_rows(w->rows, ith, nth, &r0, &r1);
	for (int64_t r = r0; r < r1; r++) {
		const char *row = (const char *)w->data + (size_t)r * row_bytes(w);
		for (int t = 0; t < j->m; t++)
			j->y[(int64_t)t * w->rows + r] = 0;
		/* convert a slice of the row once, use it for every token */
		for (int64_t k0 = 0; k0 < k; k0 += 512) {
			int64_t kn = k - k0 < 512 ? k - k0 : 512;
			for (int64_t i = 0; i < kn; i++)
				buf[i] = elem(w, row, k0 + i);
			for (int t = 0; t < j->m; t++) {
				const float *xt = j->x + (int64_t)t * k + k0;
				float s = 0;
				for (int64_t i = 0; i < kn; i++)
					s += buf[i] * xt[i];
				j->y[(int64_t)t * w->rows + r] += s;
			}
		}
	}
}

static void
run_bf16(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int64_t r0, r1;

	split_rows(j->w->rows, ith, nth, &r0, &r1);
	if (r1 > r0)
		kern_bf16_avx512(j->w->data, j->w->cols, r0, r1, j->xb, j->m, j->y, j->w->rows);
}

static void
run_f16(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int64_t r0, r1;

	split_rows(j->w->rows, ith, nth, &r0, &r1);
	if (r1 > r0)
		kern_f16_avx512(j->w->data, j->w->cols, r0, r1, j->x, j->m, j->y, j->w->rows);
}

static void
run_f32(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int64_t r0, r1;

	split_rows(j->w->rows, ith, nth, &r0, &r1);
	if (r1 > r0)
		kern_f32_avx512(j->w->data, j->w->cols, r0, r1, j->x, j->m, j->y, j->w->rows);
}

static void
run_f32_avx2(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int64_t r0, r1;

	split_rows(j->w->rows, ith, nth, &r0, &r1);
	if (r1 > r0)
		kern_f32_avx2(j->w->data, j->w->cols, r0, r1, j->x, j->m, j->y, j->w->rows);
}

static void
run_f16_avx2(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int64_t r0, r1;

	split_rows(j->w->rows, ith, nth, &r0, &r1);
	if (r1 > r0)
		kern_f16_avx2(j->w->data, j->w->cols, r0, r1, j->x, j->m, j->y, j->w->rows);
}

static void
run_bf16_avx2(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int64_t r0, r1;

	split_rows(j->w->rows, ith, nth, &r0, &r1);
	if (r1 > r0)
		kern_bf16_avx2(j->w->data, j->w->cols, r0, r1, j->x, j->m, j->y, j->w->rows);
}

static void
run_to_bf16(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int64_t n = (int64_t)j->m * j->w->cols;
	int64_t a = n * ith / nth / 32 * 32, b = ith == nth - 1 ? n : n * (ith + 1) / nth / 32 * 32;

	kern_to_bf16_avx512(j->x + a, (uint16_t *)j->xb + a, b - a);
}

static void
run_bf16_amx(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int64_t r0, r1;

	split_rows(j->w->rows, ith, nth, &r0, &r1);
	if (r1 > r0)
		kern_bf16_amx(j->w->data, j->w->cols, r0, r1, j->xb, j->m, j->y, j->w->rows);
}

/* each thread packs whole groups of 16 tokens */
static void
run_pack_amx(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int ng = (j->m + 15) / 16;

	kern_pack_bf16_amx(j->x, j->m, j->w->cols, ng * ith / nth, ng * (ith + 1) / nth,
	    (uint16_t *)j->xb);
}

/* each thread quantizes whole activation rows: a row's bytes never depend on the others */
static void
run_qact(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int64_t k = j->w->cols;
	size_t xb = qact_row_bytes(k);

	for (int t = j->m * ith / nth; t < j->m * (ith + 1) / nth; t++)
		j->qact(j->x + (int64_t)t * k, k, (char *)j->xq + (size_t)t * xb);
}

static void
run_quant(void *arg, int ith, int nth)
{
	struct job *j = arg;
	int64_t r0, r1;

	split_rows(j->w->rows, ith, nth, &r0, &r1);
	if (r1 > r0)
		j->qfn(j->w->type, j->w->data, j->w->cols, r0, r1, j->xq, j->m, j->y, j->w->rows);
}

/* Quantized weights: the m activation rows are quantized once, then every thread runs its
 * rows against all of them. */
static void
matmul_quant(struct pool *p, struct job *j, void *scratch)
{
	int generic = atomic_load(&force_generic);

	j->xq = (void *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
	j->qact = generic ? NULL : kern_qact_pick();
	if (j->qact == NULL)
		j->qact = qact_quantize_row;
	j->qfn = generic ? NULL : kern_q_pick(j->w->type);
	if (j->qfn == NULL)
		j->qfn = quant_matmul_generic;
	pool_run(p, run_qact, j);
	pool_run(p, run_quant, j);
}

void
matmul(struct pool *p, const struct weight *w, const float *x, int m, float *y, void *scratch)
{
	struct job j = { w, x, NULL, m, y, NULL, NULL, NULL };

	enum kern_set lv = level();
	pool_fn fn = run_generic;

	if (m <= 0)
		return;
	if (quant_supported(w->type)) {
		matmul_quant(p, &j, scratch);
		return;
	}
	if (lv >= KERN_AVX512BF16 && w->type == GGML_TYPE_BF16 && w->cols % 32 == 0 &&
	    kern_bf16_amx_on()) {
		j.xb = (const uint16_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
		pool_run(p, run_pack_amx, &j);
		pool_run(p, run_bf16_amx, &j);
		return;
	}
	if (lv >= KERN_AVX512BF16 && w->type == GGML_TYPE_BF16 && w->cols % 32 == 0) {
		j.xb = scratch;
		pool_run(p, run_to_bf16, &j);
		pool_run(p, run_bf16, &j);
		return;
	}
	if (lv >= KERN_AVX512 && w->cols % 16 == 0 && w->type == GGML_TYPE_F32)
		fn = run_f32;
	else if (lv >= KERN_AVX512 && w->cols % 16 == 0 && w->type == GGML_TYPE_F16)
		fn = run_f16;
	else if (lv >= KERN_AVX2 && w->cols % 8 == 0)
		fn = w->type == GGML_TYPE_F32 ? run_f32_avx2 : w->type == GGML_TYPE_F16 ?
		    run_f16_avx2 : run_bf16_avx2;
	pool_run(p, fn, &j);
}
