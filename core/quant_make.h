/* quant_make.h - float rows into the quantized GGUF blocks of core/quant.h, as ggml's reference
 * quantizers make them without an importance matrix (what llama-quantize writes by default).
 *
 * The arithmetic follows ggml's quantize_row_*_ref step by step in float32 (nearest_int's
 * round-to-nearest-even trick, make_qx_quants for Q6_K, make_qkx2_quants for Q4_K and Q5_K),
 * compiled without FP contraction (-std=c11), so the blocks come out byte for byte as
 * llama-quantize's. */
#ifndef GUARDD_QUANT_MAKE_H
#define GUARDD_QUANT_MAKE_H

#include <stddef.h>
#include <stdint.h>

/* Is this ggml type one quant_make_row can write (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
 * Q6_K, Q8_K)? */
int quant_make_supported(int type);

/* Quantizes n floats (a multiple of the type's block, ggml_type_size) into out; returns the
 * bytes written, 0 for a type quant_make_supported refuses or an n that is not a multiple. */
size_t quant_make_row(int type, const float *x, void *out, int64_t n);

#endif
