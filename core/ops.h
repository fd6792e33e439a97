/* ops.h - the small numeric steps of a Llama block (everything but matmul). */
#ifndef GUARDD_OPS_H
#define GUARDD_OPS_H

#include <stdint.h>

/* x (n,) -> out (n,) = x / rms(x) * w */
void rmsnorm(float *out, const float *x, const float *w, int n, float eps);
/* Rotates one head (d,) at position pos: pairs (i, i+d/2) when halves, else (2i, 2i+1). */
void rope(float *x, int d, int pos, const float *inv_freq, int halves);
/* g (n,) <- silu(g) * u */
void silu_mul(float *g, const float *u, int64_t n);
/* One query row's causal attention over n cached positions: kt (d, ldk) keys transposed,
 * v (n, ldv) values; out (d,) = softmax(scale q.K^T) V, with s (n,) as scratch.
 * Row-independent and deterministic: batching never changes the result. */
void attn_row(const float *q, const float *kt, int64_t ldk, const float *v, int64_t ldv, int n,
    int d, float scale, float *s, float *out);
/* x (n,) <- softmax(x) */
void softmax(float *x, int n);

#endif
