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

/* Kernel families, each needing the one before: generic C; AVX2+FMA+F16C; AVX-512
 * F/BW/VL; plus AVX512_BF16. Every family sums each output in an order that depends only on
 * the row length, never on the batch around it, so results are identical batch or not. */
enum kern_set { KERN_GENERIC, KERN_AVX2, KERN_AVX512, KERN_AVX512BF16 };
/* What this CPU runs and its OS has enabled (cpuid + XGETBV). */
enum kern_set kern_cpu_set(void);
/* The family in use: kern_cpu_set() capped by the environment variable GUARD_KERNELS
 * (generic | avx2 | avx512f | avx512bf16), read once at first use. */
enum kern_set kern_set(void);
const char *kern_set_name(enum kern_set s);
/* Does this CPU run AVX512_VNNI (int8 dot products) and does the GUARD_KERNELS cap allow
 * AVX-512 (avx512f or above)? */
int kern_cpu_vnni(void);
/* Do AMX int8 tiles run here: advertised, enabled in XCR0, granted by the kernel
 * (arch_prctl) and proven by a tile product in a forked child (a SIGILL kills only the
 * child)? Needs a cap allowing AVX-512; GUARD_AMX=0 says no. Decided once; forks on first
 * call. */
int kern_cpu_amx(void);
/* Do the quantized kernels' prefills use AMX tiles: kern_cpu_amx() and GUARD_AMX is not 0.
 * On by default. Forks on first call (the probe). */
int kern_amx_on(void);
/* Do AMX-BF16 tiles run here (kern_cpu_amx's probe, a tdpbf16ps in the same child)? */
int kern_cpu_amx_bf16(void);
/* Do BF16 weights run on AMX tiles (kern_bf16_amx): the tiles run, the cap allows
 * avx512bf16, and GUARD_AMX is not 0. On by default. Forks on first call (the probe). */
int kern_bf16_amx_on(void);
/* BF16 weights on AMX tiles (kern_bf16_amx.c), the kern_bf16_avx512 contract with the
 * activations packed by kern_pack_bf16_amx: token groups [tg0, tg1) of 16 tokens (tokens
 * >= m are zeros) into xp, which holds (m + 15) / 16 * 16 * k BF16 values; k % 32 == 0. */
void kern_pack_bf16_amx(const float *x, int m, int64_t k, int tg0, int tg1, uint16_t *xp);
void kern_bf16_amx(const uint16_t *w, int64_t k, int64_t r0, int64_t r1, const uint16_t *xp,
    int m, float *y, int64_t ldy);

/* AVX2 + FMA (+ F16C) versions of the matmul kernels, same contract, k a multiple of 8.
 * BF16 and F16 weights are widened to float32; x stays float32. */
void kern_bf16_avx2(const uint16_t *w, int64_t k, int64_t r0, int64_t r1,
    const float *x, int m, float *y, int64_t ldy);
void kern_f16_avx2(const uint16_t *w, int64_t k, int64_t r0, int64_t r1,
    const float *x, int m, float *y, int64_t ldy);
void kern_f32_avx2(const float *w, int64_t k, int64_t r0, int64_t r1,
    const float *x, int m, float *y, int64_t ldy);


/* Elementwise and row kernels (AVX-512 F; float exp accurate to ~2 ulp). */
void kern_silu_mul_avx512(float *g, const float *u, int64_t n);
/* In place: x[0..n) = softmax(x[0..n)); returns nothing, n >= 1. */
void kern_softmax_avx512(float *x, int n);
/* One query row's attention over n keys, d a multiple of 16: kt (d, ldk) keys transposed,
 * v (n, ldv): s (n scratch) = softmax(scale q.k_j), out (d) = sum_j s_j v_j. */
void kern_attn_row_avx512(const float *q, const float *kt, int64_t ldk, const float *v,
    int64_t ldv, int n, int d, float scale, float *s, float *out);
/* kern_attn_row_avx512 for nh <= 4 heads sharing kt and v (ops.h attn_rows), same bits per
 * head. */
void kern_attn_rows_avx512(int nh, const float *q, int64_t ldq, const float *kt, int64_t ldk,
    const float *v, int64_t ldv, int n, int d, float scale, float *s, int64_t lds, float *out,
    int64_t ldo);

/* Quantized weights (core/quant.h): the fastest kernel this CPU runs for a ggml type, or NULL
 * when only quant_matmul_generic does (the contract is quant_matmul_generic's). */
typedef void (*kern_q_fn)(int type, const void *w, int64_t k, int64_t r0, int64_t r1,
    const void *xq, int m, float *y, int64_t ldy);
kern_q_fn kern_q_pick(int type);
/* The activation quantizer that writes qact_quantize_row's bytes fastest here, or NULL. */
typedef void (*kern_qact_fn)(const float *x, int64_t k, void *row);
kern_qact_fn kern_qact_pick(void);
/* The families kern_q_pick chooses from (core/kern_q_x86.c, core/kern_q_avx2.c): any of the
 * nine types of quant.h (others: nothing is written), k a multiple of the type's block.
 * Every family sums each output in kern_q_int.h's order, so all give the same bits. */
void kern_q_vnni(int type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq,
    int m, float *y, int64_t ldy);
void kern_q_avx2(int type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq,
    int m, float *y, int64_t ldy);
/* kern_q_vnni's product on AMX tiles, m >= 16 (only where kern_cpu_amx()): returns m, or
 * 0 if it did nothing. Same bits as the VNNI tiles. */
int kern_q_amx(int type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq,
    int m, float *y, int64_t ldy);
void kern_qact_avx512(const float *x, int64_t k, void *row);
void kern_qact_avx2(const float *x, int64_t k, void *row);

#endif
