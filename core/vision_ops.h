/* vision_ops.h - the vision tower's row operations: LayerNorm and bias + exact-erf GELU
 * (core/vision_ops.c), AVX-512 when the CPU runs it, portable C otherwise. */
#ifndef GUARDD_VISION_OPS_H
#define GUARDD_VISION_OPS_H

/* out (n,) = (x - mean) / sqrt(var + eps) * w + b, the statistics in double. */
void vision_layernorm(float *out, const float *x, const float *w, const float *b, int n,
    float eps);
/* y (n,) <- gelu(y + b) with the exact erf: 0.5 t (1 + erf(t / sqrt 2)), in double. */
void vision_gelu_bias(float *y, const float *b, int n);

#endif
