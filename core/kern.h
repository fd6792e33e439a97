/* kern.h - matmul inner kernels, one family per instruction set (chosen at run time). */
#ifndef GUARDD_KERN_H
#define GUARDD_KERN_H

#include <stdint.h>

/* All compute Y[t][r] = sum_k X[t][k] W[r][k] for rows [r0, r1) and tokens [0, m).
 * Y has leading dimension ldy. */
void kern_bf16_avx512(const uint16_t *w, int64_t k, int64_t r0, int64_t r1,
    const uint16_t *xb, int m, float *y, int64_t ldy);
void kern_f16_avx512(const uint16_t *w, int64_t k, int64_t r0, int64_t r1,
    const float *x, int m, float *y, int64_t ldy);
void kern_f32_avx512(const float *w, int64_t k, int64_t r0, int64_t r1,
    const float *x, int m, float *y, int64_t ldy);
/* x (n floats) to bfloat16, round to nearest even. */
void kern_to_bf16_avx512(const float *x, uint16_t *out, int64_t n);

int kern_have_avx512bf16(void);
int kern_have_avx512f(void);


/* Elementwise and row kernels (AVX-512 F; float exp accurate to ~2 ulp). */
void kern_silu_mul_avx512(float *g, const float *u, int64_t n);
/* In place: x[0..n) = softmax(x[0..n)); returns nothing, n >= 1. */
void kern_softmax_avx512(float *x, int n);
/* One query row's attention over n keys, d a multiple of 16: kt (d, ldk) keys transposed,
 * v (n, ldv): s (n scratch) = softmax(scale q.k_j), out (d) = sum_j s_j v_j. */
void kern_attn_row_avx512(const float *q, const float *kt, int64_t ldk, const float *v,
    int64_t ldv, int n, int d, float scale, float *s, float *out);

#endif
