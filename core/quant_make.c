/* quant_make.c - ggml's reference quantizers (no importance matrix), replicated in float32
 * step by step so that the blocks are byte-identical to llama-quantize's. Every expression
 * keeps ggml's order of operations: the rounding of each float operation is part of the
 * result. Layouts: core/quant.h. */
#include "core/quant_make.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "core/gguf.h"
#include "core/half.h"

enum { QK = 32, QK_K = 256 };

#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define GROUP_MAX_EPS 1e-15f

static void
put_half(unsigned char *p, float f)
{
	uint16_t h = f32_to_f16(f);

	p[0] = (unsigned char)(h & 0xff);
	p[1] = (unsigned char)(h >> 8);
}

static float
get_half(const unsigned char *p)
{
	return f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

/* round to nearest, ties to even, by adding 1.5 * 2^23 (valid for |f| <= 2^22 - 1) */
static int
nearest_int(float fval)
{
	float val = fval + 12582912.f;
	int32_t i;

	memcpy(&i, &val, sizeof(i));
	return (i & 0x007fffff) - 0x00400000;
}

/* the element of largest magnitude (the first one on ties), signed */
static float
signed_absmax(const float *x, int n, float *amax_out)
{
	float amax = 0.0f, max = 0.0f;

	for (int j = 0; j < n; j++)
		if (amax < fabsf(x[j])) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	*amax_out = amax;
	return max;
}

/* ---- 32-element blocks ---------------------------------------------------------------- */

static void
q8_0_block(const float *x, unsigned char *y)
{
	float amax = 0.0f;

	for (int j = 0; j < QK; j++)
		amax = MAX(amax, fabsf(x[j]));
	const float d = amax / ((1 << 7) - 1);
	const float id = d ? 1.0f / d : 0.0f;
	put_half(y, d);
	for (int j = 0; j < QK; j++)
		y[2 + j] = (unsigned char)(int8_t)roundf(x[j] * id);
}

static void
q4_0_block(const float *x, unsigned char *y)
{
	float amax, max = signed_absmax(x, QK, &amax);
	const float d = max / -8;
	const float id = d ? 1.0f / d : 0.0f;

	put_half(y, d);
	for (int j = 0; j < QK / 2; j++) {
		const float x0 = x[j] * id, x1 = x[QK / 2 + j] * id;
		const uint8_t xi0 = (uint8_t)MIN(15, (int8_t)(x0 + 8.5f));
		const uint8_t xi1 = (uint8_t)MIN(15, (int8_t)(x1 + 8.5f));
		y[2 + j] = (uint8_t)(xi0 | xi1 << 4);
	}
}

static void
q4_1_block(const float *x, unsigned char *y)
{
	float min = FLT_MAX, max = -FLT_MAX;

	for (int j = 0; j < QK; j++) {
		if (x[j] < min)
			min = x[j];
		if (x[j] > max)
			max = x[j];
	}
	const float d = (max - min) / ((1 << 4) - 1);
	const float id = d ? 1.0f / d : 0.0f;
	put_half(y, d);
	put_half(y + 2, min);
	for (int j = 0; j < QK / 2; j++) {
		const float x0 = (x[j] - min) * id, x1 = (x[QK / 2 + j] - min) * id;
		const uint8_t xi0 = (uint8_t)MIN(15, (int8_t)(x0 + 0.5f));
		const uint8_t xi1 = (uint8_t)MIN(15, (int8_t)(x1 + 0.5f));
		y[4 + j] = (uint8_t)(xi0 | xi1 << 4);
	}
}

static void
q5_0_block(const float *x, unsigned char *y)
{
	float amax, max = signed_absmax(x, QK, &amax);
	const float d = max / -16;
	const float id = d ? 1.0f / d : 0.0f;
	uint32_t qh = 0;

	put_half(y, d);
	for (int j = 0; j < QK / 2; j++) {
		const float x0 = x[j] * id, x1 = x[QK / 2 + j] * id;
		const uint8_t xi0 = (uint8_t)MIN(31, (int8_t)(x0 + 16.5f));
		const uint8_t xi1 = (uint8_t)MIN(31, (int8_t)(x1 + 16.5f));
		y[6 + j] = (uint8_t)((xi0 & 0x0f) | (xi1 & 0x0f) << 4);
		qh |= ((xi0 & 0x10u) >> 4) << j;
		qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
	}
	for (int b = 0; b < 4; b++)
		y[2 + b] = (uint8_t)(qh >> 8 * b);
}

static void
q5_1_block(const float *x, unsigned char *y)
{
	float min = FLT_MAX, max = -FLT_MAX;
	uint32_t qh = 0;

	for (int j = 0; j < QK; j++) {
		if (x[j] < min)
			min = x[j];
		if (x[j] > max)
			max = x[j];
	}
	const float d = (max - min) / ((1 << 5) - 1);
	const float id = d ? 1.0f / d : 0.0f;
	put_half(y, d);
	put_half(y + 2, min);
	for (int j = 0; j < QK / 2; j++) {
		const float x0 = (x[j] - min) * id, x1 = (x[QK / 2 + j] - min) * id;
		const uint8_t xi0 = (uint8_t)(x0 + 0.5f), xi1 = (uint8_t)(x1 + 0.5f);
		y[8 + j] = (uint8_t)((xi0 & 0x0f) | (xi1 & 0x0f) << 4);
		qh |= ((xi0 & 0x10u) >> 4) << j;
		qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
	}
	for (int b = 0; b < 4; b++)
		y[4 + b] = (uint8_t)(qh >> 8 * b);
}

/* ---- super-block helpers (ggml's make_qx_quants, make_qkx2_quants) ------------------- */

/* weights per rmse_type: 1 = x^2 (the only one Q6_K uses), 2 = 1, 3 = |x|, else sqrt|x| */
static float
qx_weight(int rmse_type, float x)
{
	return rmse_type == 1 ? x * x : rmse_type == 2 ? 1 : rmse_type == 3 ? fabsf(x) :
	    sqrtf(fabsf(x));
}

/* symmetric scale search over 19 trial scales around nmax/max; L gets values + nmax */
static float
make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type)
{
	float amax, max = signed_absmax(x, n, &amax);

	if (amax < GROUP_MAX_EPS) {
		for (int i = 0; i < n; i++)
			L[i] = 0;
		return 0.f;
	}
	float iscale = -nmax / max;
	if (rmse_type == 0) {
		for (int i = 0; i < n; i++) {
			int l = nearest_int(iscale * x[i]);
			L[i] = (int8_t)(nmax + MAX(-nmax, MIN(nmax - 1, l)));
		}
		return 1 / iscale;
	}
	int return_early = 0;
	if (rmse_type < 0) {
		rmse_type = -rmse_type;
		return_early = 1;
	}
	float sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = nearest_int(iscale * x[i]);
		l = MAX(-nmax, MIN(nmax - 1, l));
		L[i] = (int8_t)(l + nmax);
		float w = qx_weight(rmse_type, x[i]);
		sumlx += w * x[i] * l;
		suml2 += w * l * l;
	}
	float scale = suml2 ? sumlx / suml2 : 0.0f;
	if (return_early)
		return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
	float best = scale * sumlx;
	for (int is = -9; is <= 9; is++) {
		if (is == 0)
			continue;
		iscale = -(nmax + 0.1f * is) / max;
		sumlx = suml2 = 0;
		for (int i = 0; i < n; i++) {
			int l = nearest_int(iscale * x[i]);
			l = MAX(-nmax, MIN(nmax - 1, l));
			float w = qx_weight(rmse_type, x[i]);
			sumlx += w * x[i] * l;
			suml2 += w * l * l;
		}
		if (suml2 > 0 && sumlx * sumlx > best * suml2) {
			for (int i = 0; i < n; i++) {
				int l = nearest_int(iscale * x[i]);
				L[i] = (int8_t)(nmax + MAX(-nmax, MIN(nmax - 1, l)));
			}
			scale = sumlx / suml2;
			best = scale * sumlx;
		}
	}
	return scale;
}

/* asymmetric (scale, min) search by weighted least squares over nstep+1 trial scales */
static float
make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
    float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep)
{
	float min = x[0], max = x[0], sum_w = weights[0], sum_x = sum_w * x[0];

	for (int i = 1; i < n; i++) {
		if (x[i] < min)
			min = x[i];
		if (x[i] > max)
			max = x[i];
		float w = weights[i];
		sum_w += w;
		sum_x += w * x[i];
	}
	if (min > 0)
		min = 0;
	if (max == min) {
		for (int i = 0; i < n; i++)
			L[i] = 0;
		*the_min = -min;
		return 0.f;
	}
	float iscale = nmax / (max - min);
	float scale = 1 / iscale;
	float best_error = 0;
	for (int i = 0; i < n; i++) {
		int l = nearest_int(iscale * (x[i] - min));
		L[i] = (uint8_t)MAX(0, MIN(nmax, l));
		float diff = scale * L[i] + min - x[i];
		diff = diff * diff;
		best_error += weights[i] * diff;
	}
	if (nstep < 1) {
		*the_min = -min;
		return scale;
	}
	for (int is = 0; is <= nstep; is++) {
		iscale = (rmin + rdelta * is + nmax) / (max - min);
		float sum_l = 0, sum_l2 = 0, sum_xl = 0;
		for (int i = 0; i < n; i++) {
			int l = nearest_int(iscale * (x[i] - min));
			l = MAX(0, MIN(nmax, l));
			Laux[i] = (uint8_t)l;
			float w = weights[i];
			sum_l += w * l;
			sum_l2 += w * l * l;
			sum_xl += w * l * x[i];
		}
		float D = sum_w * sum_l2 - sum_l * sum_l;
		if (D > 0) {
			float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
			float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
			if (this_min > 0) {
				this_min = 0;
				this_scale = sum_xl / sum_l2;
			}
			float cur_error = 0;
			for (int i = 0; i < n; i++) {
				float diff = this_scale * Laux[i] + this_min - x[i];
				diff = diff * diff;
				cur_error += weights[i] * diff;
			}
			if (cur_error < best_error) {
				for (int i = 0; i < n; i++)
					L[i] = Laux[i];
				best_error = cur_error;
				scale = this_scale;
				min = this_min;
			}
		}
	}
	*the_min = -min;
	return scale;
}

static void
get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
	if (j < 4) {
		*d = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*d = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
		*m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
	}
}

/* Q4_K and Q5_K share the scale/min search and the 12-byte packing of 6-bit scales; they
 * differ in nmax (15, 31) and the search grid. y points at d; scales at y+4; L receives the
 * final levels. */
static void
k_scales_levels(const float *x, unsigned char *y, int nmax, float rmin, int nstep, uint8_t *L)
{
	uint8_t Laux[32], *sc12 = y + 4;
	float weights[32], mins[QK_K / 32], scales[QK_K / 32];
	float max_scale = 0, max_min = 0;

	for (int j = 0; j < QK_K / 32; j++) {
		float sum_x2 = 0;
		for (int l = 0; l < 32; l++)
			sum_x2 += x[32 * j + l] * x[32 * j + l];
		float av_x = sqrtf(sum_x2 / 32);
		for (int l = 0; l < 32; l++)
			weights[l] = av_x + fabsf(x[32 * j + l]);
		scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j],
		    Laux, rmin, 0.1f, nstep);
		if (scales[j] > max_scale)
			max_scale = scales[j];
		if (mins[j] > max_min)
			max_min = mins[j];
	}
	float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
	float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
	memset(sc12, 0, 12);
	for (int j = 0; j < QK_K / 32; j++) {
		uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
		uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
		ls = MIN(63, ls);
		lm = MIN(63, lm);
		if (j < 4) {
			sc12[j] = ls;
			sc12[j + 4] = lm;
		} else {
			sc12[j + 4] = (uint8_t)((ls & 0xf) | ((lm & 0xf) << 4));
			sc12[j - 4] |= (uint8_t)((ls >> 4) << 6);
			sc12[j - 0] |= (uint8_t)((lm >> 4) << 6);
		}
	}
	put_half(y, max_scale / 63.f);
	put_half(y + 2, max_min / 63.f);
	for (int j = 0; j < QK_K / 32; j++) {
		uint8_t sc, m;
		get_scale_min_k4(j, sc12, &sc, &m);
		const float d = get_half(y) * sc;
		if (!d)
			continue;
		const float dm = get_half(y + 2) * m;
		for (int ii = 0; ii < 32; ii++) {
			int l = nearest_int((x[32 * j + ii] + dm) / d);
			L[32 * j + ii] = (uint8_t)MAX(0, MIN(nmax, l));
		}
	}
}

static void
q4_k_block(const float *x, unsigned char *y)
{
	uint8_t L[QK_K], *q = y + 16;

	k_scales_levels(x, y, 15, -1.f, 20, L);
	for (int j = 0; j < QK_K; j += 64) {
		for (int l = 0; l < 32; l++)
			q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
		q += 32;
	}
}

static void
q5_k_block(const float *x, unsigned char *y)
{
	uint8_t L[QK_K], *qh = y + 16, *ql = y + 48, m1 = 1, m2 = 2;

	k_scales_levels(x, y, 31, -0.5f, 15, L);
	memset(qh, 0, QK_K / 8);
	for (int n = 0; n < QK_K; n += 64) {
		for (int j = 0; j < 32; j++) {
			int l1 = L[n + j], l2 = L[n + j + 32];
			if (l1 > 15) {
				l1 -= 16;
				qh[j] |= m1;
			}
			if (l2 > 15) {
				l2 -= 16;
				qh[j] |= m2;
			}
			ql[j] = (uint8_t)(l1 | (l2 << 4));
		}
		m1 = (uint8_t)(m1 << 2);
		m2 = (uint8_t)(m2 << 2);
		ql += 32;
	}
}

/* Q6_K: ql[128] qh[64] scales[16] d */
static void
q6_k_block(const float *x, unsigned char *y)
{
	int8_t L[QK_K], *sc = (int8_t *)(y + 192);
	float scales[QK_K / 16], max_scale = 0, max_abs_scale = 0;
	uint8_t *ql = y, *qh = y + 128;

	for (int ib = 0; ib < QK_K / 16; ib++) {
		const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1);
		scales[ib] = scale;
		if (fabsf(scale) > max_abs_scale) {
			max_abs_scale = fabsf(scale);
			max_scale = scale;
		}
	}
	if (max_abs_scale < GROUP_MAX_EPS) {
		memset(y, 0, 210);
		put_half(y + 208, 0.f);
		return;
	}
	float iscale = -128.f / max_scale;
	put_half(y + 208, 1 / iscale);
	for (int ib = 0; ib < QK_K / 16; ib++)
		sc[ib] = (int8_t)MIN(127, nearest_int(iscale * scales[ib]));
	for (int j = 0; j < QK_K / 16; j++) {
		float d = get_half(y + 208) * sc[j];
		if (!d)
			continue;
		for (int ii = 0; ii < 16; ii++) {
			int l = nearest_int(x[16 * j + ii] / d);
			l = MAX(-32, MIN(31, l));
			L[16 * j + ii] = (int8_t)(l + 32);
		}
	}
	for (int j = 0; j < QK_K; j += 128) {
		for (int l = 0; l < 32; l++) {
			const uint8_t q1 = L[j + l + 0] & 0xf, q2 = L[j + l + 32] & 0xf;
			const uint8_t q3 = L[j + l + 64] & 0xf, q4 = L[j + l + 96] & 0xf;
			ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
			ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
			qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
			    ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
		}
		ql += 64;
		qh += 32;
	}
}

/* Q8_K: float d; int8 qs[256]; int16 bsums[16] */
static void
q8_k_block(const float *x, unsigned char *y)
{
	float amax, max = signed_absmax(x, QK_K, &amax), d = 0;
	int8_t *qs = (int8_t *)(y + 4);

	if (!amax) {
		memset(y, 0, 4 + QK_K);
	} else {
		const float iscale = -127.f / max;
		for (int j = 0; j < QK_K; j++) {
			int v = nearest_int(iscale * x[j]);
			qs[j] = (int8_t)MIN(127, v);
		}
		d = 1 / iscale;
	}
	/* ggml leaves bsums as they were for an all-zero block; zero is what a fresh buffer holds */
	for (int j = 0; j < QK_K / 16; j++) {
		int sum = 0;
		for (int ii = 0; ii < 16; ii++)
			sum += qs[j * 16 + ii];
		int16_t s = (int16_t)sum;
		memcpy(y + 4 + QK_K + 2 * j, &s, 2);
	}
	memcpy(y, &d, 4);
}

static const struct {
	int type, block, bytes;
	void (*fn)(const float *, unsigned char *);
} makers[] = {
	{ GGML_TYPE_Q8_0, QK, 34, q8_0_block }, { GGML_TYPE_Q4_0, QK, 18, q4_0_block },
	{ GGML_TYPE_Q4_1, QK, 20, q4_1_block }, { GGML_TYPE_Q5_0, QK, 22, q5_0_block },
	{ GGML_TYPE_Q5_1, QK, 24, q5_1_block }, { GGML_TYPE_Q4_K, QK_K, 144, q4_k_block },
	{ GGML_TYPE_Q5_K, QK_K, 176, q5_k_block }, { GGML_TYPE_Q6_K, QK_K, 210, q6_k_block },
	{ GGML_TYPE_Q8_K, QK_K, 292, q8_k_block },
};

int
quant_make_supported(int type)
{
	for (size_t i = 0; i < sizeof(makers) / sizeof(makers[0]); i++)
		if (makers[i].type == type)
			return 1;
	return 0;
}

size_t
quant_make_row(int type, const float *x, void *out, int64_t n)
{
	for (size_t i = 0; i < sizeof(makers) / sizeof(makers[0]); i++) {
		if (makers[i].type != type)
			continue;
		if (n < 0 || n % makers[i].block != 0)
			return 0;
		unsigned char *y = out;
		for (int64_t b = 0; b < n / makers[i].block; b++)
			makers[i].fn(x + b * makers[i].block, y + b * makers[i].bytes);
		return (size_t)(n / makers[i].block) * (size_t)makers[i].bytes;
	}
	return 0;
}
