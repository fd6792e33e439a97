/* matmul.h - y = x W^T for weights in their stored type; the only place that knows types. */
#ifndef GUARDD_MATMUL_H
#define GUARDD_MATMUL_H

#include <stddef.h>
#include <stdint.h>

struct pool;

/* A weight matrix: rows = output features, cols = input features, row-major, mmapped. */
struct weight {
	const void *data;
	int type;		/* ggml type id */
	int64_t rows, cols;
};

/* Is this weight type computed here (F32, F16, BF16 and core/quant.h's quantized types)? */
int matmul_supported(int type);

/* Scratch bytes matmul needs for m rows of x with k columns. */
size_t matmul_scratch_size(int m, int64_t k);

/* W (rows, cols) @ x (m, cols) -> y (m, rows). scratch holds matmul_scratch_size bytes. */
void matmul(struct pool *p, const struct weight *w, const float *x, int m, float *y,
    void *scratch);

/* One row of W as float (embedding lookup). */
void weight_row(const struct weight *w, int64_t row, float *out);

/* Which kernel family runs: "avx512bf16", "avx512f" or "generic". */
const char *matmul_kernel_name(void);
/* Forces the portable kernels (tests compare them with the SIMD ones). */
void matmul_force_generic(int on);

#endif
