/* vision_ops.c - the vision tower's LayerNorm and exact-erf GELU. The portable versions are
 * the reference (double statistics, libm's erf); the AVX-512 ones compute the same formulas
 * in double, 8 lanes at a time. libm's scalar erf cost more than every matmul of the tiny
 * tower's MLPs (and 1.3 billion calls per image at the 11B shape), so the vector GELU takes
 * erf from a piecewise polynomial instead: degree 9 in each half-unit interval of |z| < 6
 * (Chebyshev interpolation of erf, fitted in 40-digit arithmetic), at most 3.5e-12 from erf
 * in double, and erf = +-1 beyond 6 (erfc(6) = 2e-17). The result is within 1 ulp of the
 * libm formula's except deep in the negative tail (t < -4, |gelu| < 1.3e-4), where 1 + erf
 * cancels and the error stays below 1e-11 |t| absolute; PyTorch's float32 GELU, the
 * reference's, is off by ~3e-8 |t| there. */
#include "core/vision_ops.h"

#include <math.h>

#include "core/kern.h"

static void
layernorm_c(float *out, const float *x, const float *w, const float *b, int n, float eps)
{
	double s = 0, ss = 0;

	for (int i = 0; i < n; i++)
		s += x[i];
	double mean = s / n;
	for (int i = 0; i < n; i++)
		ss += (x[i] - mean) * (x[i] - mean);
	double r = 1.0 / sqrt(ss / n + eps);
	for (int i = 0; i < n; i++)
		out[i] = (float)((x[i] - mean) * r) * w[i] + b[i];
}

static void
gelu_bias_c(float *y, const float *b, int n)
{
	for (int j = 0; j < n; j++) {
		float t = y[j] + b[j];
		y[j] = (float)(0.5 * t * (1.0 + erf(t / M_SQRT2)));
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define T_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

/* erf on [k/2, k/2 + 1/2), k = 0..11: coefficient j of interval k is ERF_TAB[j][k], the
 * polynomial in t = |z| - (k/2 + 1/4) */
static const double ERF_TAB[10][16] = {
	{ 0.27632639016486843, 0.71115563365383139, 0.92290012825792078, 0.98667167121837762,
	  0.99853728341329095, 0.99989937807798246, 0.9999956972205325, 0.9999998862727385,
	  0.99999999814942531, 0.9999999999815149, 0.99999999999988687, 0.99999999999999956,
	  0, 0, 0, 0 },
	{ 1.0600141293754879, 0.64293106919634779, 0.23652112244670342, 0.052774995930135168,
	  0.0071423190221388934, 0.00058627724706506314, 2.9189025378088941e-05, 8.8143219265889892e-07,
	  1.6143993981087998e-08, 1.7934358491150614e-10, 1.2084078362014719e-12, 4.9384897428845586e-15,
	  0, 0, 0, 0 },
	{ -0.26500352964868057, -0.48219830214960019, -0.29565140422928915, -0.092356242233766095,
	  -0.016070217777293231, -0.0016122625111912828, -9.4864329466230629e-05, -3.3053668180626511e-06,
	  -6.8611550449856804e-08, -8.5186359990458544e-10, -6.3437524152674887e-12, -2.8392022742992094e-14,
	  0, 0, 0, 0 },
	{ -0.30917078723362657, 0.026788793637320597, 0.1675357955368183, 0.090157284726138376,
	  0.021724553595240247, 0.0027603887280549817, 0.0001958097163414012, 7.9696149206007054e-06,
	  1.890190505665395e-07, 2.6378333631144606e-09, 2.1801393263965862e-11, 1.0720260254275041e-13,
	  0, 0, 0, 0 },
	{ 0.12698051388190049, 0.15068700188023421, -0.0061592543813404838, -0.048102292348848968,
	  -0.01908338645686045, -0.0032581032026454747, -0.00028656972802653953, -1.384173885262538e-05,
	  -3.7884932457974717e-07, -5.9832658531759046e-09, -5.5164057638331003e-11, -2.9929639228441073e-13,
	  0, 0, 0, 0 },
	{ 0.080053086212667893, -0.053242612276893468, -0.047181096631875329, 0.0066243599370389688,
	  0.010657691549081952, 0.0027558054681977098, 0.00031379666383366152, 1.8371121221405568e-05,
	  5.8727294030777955e-07, 1.0573885622926604e-08, 1.0923760413994137e-10, 6.5543841966583008e-13,
	  0, 0, 0, 0 },
	{ -0.040517150046025421, -0.026873979990399206, 0.02129455313551297, 0.0089667502763822026,
	  -0.0029042334909392064, -0.0016577960256418092, -0.00026351078372703103, -1.9250377789518314e-05,
	  -7.2850532467795758e-07, -1.5040210187471511e-08, -1.7420878080948417e-10, -1.1515653499968266e-12,
	  0, 0, 0, 0 },
	{ -0.016162204114430444, 0.018429989205615147, 0.0036286875873485654, -0.0060586850079089984,
	  -0.00067101092730044009, 0.0006461732650997232, 0.00017001650998424921, 1.626874457938029e-05,
	  7.4652846343463758e-07, 1.7969861917606704e-08, 2.3694718670746944e-10, 1.7546875627169874e-12,
	  0, 0, 0, 0 },
	{ 0.0094108396306246331, 0.0023291999887300671, -0.0055745326826934774, 0.00066195504918384817,
	  0.0009973465662856749, -8.0436499493819299e-05, -8.1981293618591761e-05, -1.1536368049340683e-05,
	  -6.8170208383997241e-07, -2.0062160800352613e-08, -3.1484402794126061e-10, -2.7320269510888006e-12,
	  0, 0, 0, 0 },
	{ 0.00255170474393692, -0.0038719554980894749, 0.00082789537664470147, 0.00089305401467461027,
	  -0.00035922535760472569, -7.3656060026330424e-05, 2.5457689120733374e-05, 6.2291001389913179e-06,
	  4.7880329435716781e-07, 1.6880092613755679e-08, 3.0479342800336578e-10, 2.9689351644711687e-12,
	  0, 0, 0, 0 },
};

T_AVX512 static void
layernorm_avx512(float *out, const float *x, const float *w, const float *b, int n, float eps)
{
	__m512d s0 = _mm512_setzero_pd(), s1 = s0;

	for (int i = 0; i < n; i += 16) {
		__m512 v = _mm512_loadu_ps(x + i);
		s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
		s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(
		    _mm512_castps_pd(v), 1))));
	}
	double mean = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) / n;
	__m512d vm = _mm512_set1_pd(mean);
	s0 = _mm512_setzero_pd(), s1 = s0;
	for (int i = 0; i < n; i += 16) {
		__m512 v = _mm512_loadu_ps(x + i);
		__m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), vm);
		__m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(
		    _mm512_castps_pd(v), 1))), vm);
		s0 = _mm512_fmadd_pd(d0, d0, s0);
		s1 = _mm512_fmadd_pd(d1, d1, s1);
	}
	__m512d vr = _mm512_set1_pd(1.0 / sqrt(_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) / n +
	    eps));
	for (int i = 0; i < n; i += 8) {
		__m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), vm);
		__m256 f = _mm512_cvtpd_ps(_mm512_mul_pd(d, vr));
		_mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_mul_ps(f, _mm256_loadu_ps(w + i)),
		    _mm256_loadu_ps(b + i)));
	}
}

T_AVX512 static void
gelu_bias_avx512(float *y, const float *b, int n)
{
	const __m512d half = _mm512_set1_pd(0.5), one = _mm512_set1_pd(1.0);

	for (int j = 0; j < n; j += 8) {
		__mmask8 m = n - j >= 8 ? 0xff : (__mmask8)((1u << (n - j)) - 1);
		__m256 tf = _mm256_add_ps(_mm256_maskz_loadu_ps(m, y + j), _mm256_maskz_loadu_ps(m, b + j));
		__m512d t = _mm512_cvtps_pd(tf);
		__m512d z = _mm512_div_pd(t, _mm512_set1_pd(M_SQRT2));
		__m512d az = _mm512_abs_pd(z);
		__m512d k = _mm512_min_pd(_mm512_roundscale_pd(_mm512_add_pd(az, az),
		    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC), _mm512_set1_pd(11));
		__m512i idx = _mm512_cvtepi32_epi64(_mm512_cvttpd_epi32(k));
		__m512d u = _mm512_sub_pd(az, _mm512_fmadd_pd(k, half, _mm512_set1_pd(0.25)));
		__m512d e = _mm512_permutex2var_pd(_mm512_loadu_pd(ERF_TAB[9]), idx,
		    _mm512_loadu_pd(ERF_TAB[9] + 8));
		for (int c = 8; c >= 0; c--)
			e = _mm512_fmadd_pd(e, u, _mm512_permutex2var_pd(_mm512_loadu_pd(ERF_TAB[c]), idx,
			    _mm512_loadu_pd(ERF_TAB[c] + 8)));
		/* |erf| <= 1 holds exactly, so gelu(t) never takes the wrong sign */
		e = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(az, _mm512_set1_pd(6), _CMP_GE_OQ),
		    _mm512_min_pd(e, one), one);
		/* erf is odd; a NaN keeps its NaN through t below */
		e = _mm512_mask_sub_pd(e, _mm512_cmp_pd_mask(z, _mm512_setzero_pd(), _CMP_LT_OQ),
		    _mm512_setzero_pd(), e);
		__m512d g = _mm512_mul_pd(_mm512_mul_pd(half, t), _mm512_add_pd(one, e));
		_mm256_mask_storeu_ps(y + j, m, _mm512_cvtpd_ps(g));
	}
}

static int
simd(void)
{
	return kern_set() >= KERN_AVX512;
}
#else
static void
layernorm_avx512(float *out, const float *x, const float *w, const float *b, int n, float eps)
{
	layernorm_c(out, x, w, b, n, eps);
}

static void
gelu_bias_avx512(float *y, const float *b, int n)
{
	gelu_bias_c(y, b, n);
}

static int
simd(void)
{
	return 0;
}
#endif

void
vision_layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps)
{
	if (simd() && n % 16 == 0)
		layernorm_avx512(out, x, w, b, n, eps);
	else
		layernorm_c(out, x, w, b, n, eps);
}

void
vision_gelu_bias(float *y, const float *b, int n)
{
	if (simd())
		gelu_bias_avx512(y, b, n);
	else
		gelu_bias_c(y, b, n);
}
