/* quant.h - the quantized weight types llama.cpp writes (GGUF block layouts as ggml defines
 * them) and the int8 activations they are multiplied with.
 *
 * Weights stay in their stored blocks (mmapped, never dequantized into a copy). A matmul
 * quantizes each activation row into QA_BLOCK-element blocks (int8 values, a float32 scale
 * and the block's sum of values), then every kernel family computes, for each block,
 * an exact integer dot product of weight and activation values and combines the blocks
 * in floating point. A row's activation blocks depend on that row alone, so a row's result
 * never depends on the batch around it.
 *
 * Block layouts (little-endian, `half` is IEEE binary16), QK_K = 256:
 *   Q8_0  34 B / 32:  half d; int8 qs[32]                      w = d*q
 *   Q4_0  18 B / 32:  half d; uint8 qs[16]                     w = d*(nib - 8)
 *   Q4_1  20 B / 32:  half d, m; uint8 qs[16]                  w = d*nib + m
 *   Q5_0  22 B / 32:  half d; uint8 qh[4]; uint8 qs[16]        w = d*(nib|hbit<<4 - 16)
 *   Q5_1  24 B / 32:  half d, m; uint8 qh[4]; uint8 qs[16]     w = d*(nib|hbit<<4) + m
 *     (element j < 16 is the low nibble of qs[j], element j+16 its high nibble; bit j of qh
 *      is element j's fifth bit)
 *   Q4_K 144 B / 256: half d, dmin; uint8 scales[12] (8 6-bit scales and 8 6-bit mins);
 *                     uint8 qs[128]                  w = d*sc*nib - dmin*mn per 32
 *   Q5_K 176 B / 256: half d, dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]
 *   Q6_K 210 B / 256: uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d
 *                                                    w = d*sc*(q6 - 32) per 16
 *   Q8_K 292 B / 256: float d; int8 qs[256]; int16 bsums[16]     w = d*q
 * (the element order inside K blocks is ggml's dequantize_row_q*_K order). */
#ifndef GUARDD_QUANT_H
#define GUARDD_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* Is this ggml type one of the quantized types above? */
int quant_supported(int type);

/* n elements (a multiple of the type's block) of a row in the type's blocks, as float. */
void quant_dequant_row(int type, const void *row, float *out, int64_t n);

/* ---- activations ------------------------------------------------------------------------
 * One activation row of k elements (k a multiple of QA_BLOCK) quantized per QA_BLOCK block:
 *   d = amax / 127 (amax = max |x| in the block; d = 0 for an all-zero block),
 *   q = round-half-even(x * (1/d)) clamped to [-127, 127], s = sum of the block's q.
 * Layout of one row, qact_row_bytes(k) bytes, 64-byte multiple:
 *   int8 q[k] | float d[k/32] | int16 s[k/32] | padding.
 * Every kernel family's quantizer writes exactly these bytes. */
enum { QA_BLOCK = 32 };

size_t qact_row_bytes(int64_t k);
void qact_quantize_row(const float *x, int64_t k, void *row);	/* portable C */
static inline const int8_t *qact_q(const void *row) { return (const int8_t *)row; }
static inline const float *qact_d(const void *row, int64_t k) {
	return (const float *)((const char *)row + k);
}
static inline const int16_t *qact_s(const void *row, int64_t k) {
	return (const int16_t *)((const char *)row + k + k / QA_BLOCK * 4);
}

/* Portable C reference: y[t*ldy + r] = sum_k W[r][k] x[t][k] for rows [r0, r1), tokens
 * [0, m); xq holds m rows of qact_row_bytes(k) each. The SIMD kernels in kern.h follow the
 * same contract. */
void quant_matmul_generic(int type, const void *w, int64_t k, int64_t r0, int64_t r1,
    const void *xq, int m, float *y, int64_t ldy);

#endif
