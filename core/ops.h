/* ops.h - the small numeric steps of a Llama block (everything but matmul). */
#ifndef GUARDD_OPS_H
#define GUARDD_OPS_H

#include <stdint.h>

/* x (n,) -> out (n,) = x / rms(x) * w */
void rmsnorm(float *out, const float *x, const float *w, int n, float eps);
/* RoPE of one position: cs (d,) = cos of its d/2 angles, then their sin. Computed once per
 * token and batch, used for every layer and head. */
void rope_angles(float *cs, int d, int pos, const float *inv_freq);
/* Rotates one head (d,) by rope_angles' cs: pairs (i, i+d/2) when halves, else (2i, 2i+1). */
void rope_apply(float *x, int d, const float *cs, int halves);
/* g (n,) <- silu(g) * u */
void silu_mul(float *g, const float *u, int64_t n);
/* One query row's causal attention over n cached positions: kt (d, ldk) keys transposed,
 * v (n, ldv) values; out (d,) = softmax(scale q.K^T) V, with s (n,) as scratch.
 * Row-independent and deterministic: batching never changes the result. */
void attn_row(const float *q, const float *kt, int64_t ldk, const float *v, int64_t ldv, int n,
    int d, float scale, float *s, float *out);
/* attn_row for nh query heads that share one kv head (kt, v): head h's query at q + h*ldq,
 * scratch s + h*lds, output out + h*ldo. Each head's bits are attn_row's: the keys and
 * values are loaded once for all heads, the arithmetic per head is unchanged. */
void attn_rows(int nh, const float *q, int64_t ldq, const float *kt, int64_t ldk, const float *v,
    int64_t ldv, int n, int d, float scale, float *s, int64_t lds, float *out, int64_t ldo);
/* x (n,) <- softmax(x) */
void softmax(float *x, int n);

#endif
