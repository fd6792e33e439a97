/* ops.c - RMSNorm, RoPE, SwiGLU's gate and softmax, in the numerics of the HF reference. */
#include "core/ops.h"

#include <math.h>

#include "core/kern.h"

/* the AVX-512 row kernels; the portable ones otherwise (both batch-independent) */
static int
simd(void)
{
	return kern_set() >= KERN_AVX512;
}

void
rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
	double ss = 0;	/* in double: n up to 8192 squares, kept exact enough to match */

	for (int i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	float r = (float)(1.0 / sqrt(ss / n + eps));
	for (int i = 0; i < n; i++)
		out[i] = w[i] * (x[i] * r);
}

void
rope_angles(float *cs, int d, int pos, const float *inv_freq)
{
	int half = d / 2;

	for (int i = 0; i < half; i++) {
		/* float32 angle, as HF computes inv_freq @ position_ids in float32 */
		float ang = (float)pos * inv_freq[i];
		cs[i] = (float)cos((double)ang);
		cs[half + i] = (float)sin((double)ang);
	}
}

void
rope_apply(float *x, int d, const float *cs, int halves)
{
	int half = d / 2;

	for (int i = 0; i < half; i++) {
		float c = cs[i], s = cs[half + i];
		int a = halves ? i : 2 * i, b = halves ? i + half : 2 * i + 1;
		float x0 = x[a], x1 = x[b];
		x[a] = x0 * c - x1 * s;
		x[b] = x1 * c + x0 * s;
	}
}

void
silu_mul(float *g, const float *u, int64_t n)
{
	if (simd()) {
		kern_silu_mul_avx512(g, u, n);
		return;
	}
	for (int64_t i = 0; i < n; i++)
		g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void
softmax(float *x, int n)
{
	if (simd()) {
		kern_softmax_avx512(x, n);
		return;
	}
	float m = x[0], s = 0;
	for (int i = 1; i < n; i++)
		m = x[i] > m ? x[i] : m;
	for (int i = 0; i < n; i++) {
		x[i] = expf(x[i] - m);
		s += x[i];
	}
	for (int i = 0; i < n; i++)
		x[i] /= s;
}

void
attn_row(const float *q, const float *kt, int64_t ldk, const float *v, int64_t ldv, int n,
    int d, float scale, float *s, float *out)
{
	if (simd() && d % 16 == 0) {
		kern_attn_row_avx512(q, kt, ldk, v, ldv, n, d, scale, s, out);
		return;
	}
	for (int j = 0; j < n; j++)
		s[j] = 0;
	for (int i = 0; i < d; i++)
		for (int j = 0; j < n; j++)
			s[j] += q[i] * kt[(int64_t)i * ldk + j];
	for (int j = 0; j < n; j++)
		s[j] *= scale;
	softmax(s, n);
	for (int i = 0; i < d; i++)
		out[i] = 0;
	for (int j = 0; j < n; j++)
		for (int i = 0; i < d; i++)
			out[i] += s[j] * v[(int64_t)j * ldv + i];
}

void
attn_rows(int nh, const float *q, int64_t ldq, const float *kt, int64_t ldk, const float *v,
    int64_t ldv, int n, int d, float scale, float *s, int64_t lds, float *out, int64_t ldo)
{
	if (simd() && d % 16 == 0 && nh <= 4) {
		kern_attn_rows_avx512(nh, q, ldq, kt, ldk, v, ldv, n, d, scale, s, lds, out, ldo);
		return;
	}
	for (int h = 0; h < nh; h++)
		attn_row(q + h * ldq, kt, ldk, v, ldv, n, d, scale, s + h * lds, out + h * ldo);
}
