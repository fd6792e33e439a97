/* kern_q_avx2.c - AVX2 kernels for quantized weights (core/quant.h) and the AVX2 activation
 * quantizer, for CPUs without AVX-512 VNNI. Same repacked tiles and the same per-row float
 * sum as kern_q_x86.c (kern_q_int.h), so both families give the same bits; the int8 dot is
 * vpmaddubsw (u8 x s8 pairs to int16) then vpmaddwd by 1 (pairs to int32). Weights are
 * at most 63 there, so the int16 pairs never saturate; 8-bit weights stay signed and go
 * through the sign trick (|w| x sign(w)*a, at most 2 * 128 * 127). */
#include "core/kern.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

#include "core/kern_q_int.h"
#include "core/quant.h"

#define T_AVX2 __attribute__((target("avx2,fma")))

enum { MT = 2 };

static inline int32_t
ld32(const uint8_t *p)
{
	int32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* Rows 16g .. 16g + 15 of the tile (n of them valid) x tokens [0, mt). */
T_AVX2 static inline __attribute__((always_inline)) void
tile_avx2(const struct qpack *p, int ng, int g, int n, const int mt, int nb, const uint8_t *xq,
    size_t ldx, int64_t k, int64_t b0, const struct qprep *tp, float *y, int64_t ldy,
    int first, const int off, const int sub, const int hasmin, const int s8)
{
	__m256 acc[2][MT];
	__m256i mk[2];
	const float *da[MT];
	const __m256i ones = _mm256_set1_epi16(1);

	for (int j = 0; j < 2; j++) {
		int c = n - 8 * j;
		mk[j] = _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
	}
#pragma GCC unroll 2
	for (int t = 0; t < MT; t++)
		if (t < mt)
			da[t] = qact_d(xq + (size_t)t * ldx, k) + b0;
#pragma GCC unroll 2
	for (int j = 0; j < 2; j++)
#pragma GCC unroll 2
		for (int t = 0; t < MT; t++)
			if (t < mt)
				acc[j][t] = first ? _mm256_setzero_ps() :
				    _mm256_maskload_ps(y + t * ldy + 16 * g + 8 * j, mk[j]);
	for (int b = 0; b < nb; b++) {
		const uint8_t *xb = xq + (b0 + b) * 32;
#pragma GCC unroll 2
		for (int h = 0; h < sub; h++) {
			__m256i iacc[2][MT];
#pragma GCC unroll 2
			for (int t = 0; t < MT; t++)
				if (t < mt) {
					__m256i c = off ? _mm256_set1_epi32(tp->corr[t][b * sub + h]) :
					    _mm256_setzero_si256();
					iacc[0][t] = iacc[1][t] = c;
				}
#pragma GCC unroll 8
			for (int v = 0; v < 8; v++) {
				if (v >= 8 / sub)	/* a constant bound: the unroll pragma holds */
					break;
				int s = h * (8 / sub) + v;
				const uint8_t *q = p->q + ((b * 8 + s) * ng + g) * 64;
				__m256i wv[2];
#pragma GCC unroll 2
				for (int j = 0; j < 2; j++)
					wv[j] = _mm256_load_si256((const __m256i *)(q + 32 * j));
#pragma GCC unroll 2
				for (int t = 0; t < MT; t++)
					if (t < mt) {
						__m256i a = _mm256_set1_epi32(ld32(xb + t * ldx + 4 * s));
#pragma GCC unroll 2
						for (int j = 0; j < 2; j++) {
							__m256i pr = s8 ?
							    _mm256_maddubs_epi16(_mm256_abs_epi8(wv[j]),
								_mm256_sign_epi8(a, wv[j])) :
							    _mm256_maddubs_epi16(wv[j], a);
							iacc[j][t] = _mm256_add_epi32(iacc[j][t],
							    _mm256_madd_epi16(pr, ones));
						}
					}
			}
#pragma GCC unroll 2
			for (int j = 0; j < 2; j++) {
				__m256 dsv = _mm256_load_ps(p->ds + (b * 2 + h) * QP_ROWS + 16 * g + 8 * j);
#pragma GCC unroll 2
				for (int t = 0; t < MT; t++)
					if (t < mt)
						acc[j][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[j][t]),
						    _mm256_mul_ps(dsv, _mm256_set1_ps(da[t][b])), acc[j][t]);
			}
		}
		if (hasmin)
#pragma GCC unroll 2
			for (int j = 0; j < 2; j++) {
				__m256 dmv = _mm256_load_ps(p->dm + b * QP_ROWS + 16 * g + 8 * j);
#pragma GCC unroll 2
				for (int t = 0; t < MT; t++)
					if (t < mt)
						acc[j][t] = _mm256_fmadd_ps(dmv, _mm256_set1_ps(tp->das[t][b]),
						    acc[j][t]);
			}
	}
#pragma GCC unroll 2
	for (int j = 0; j < 2; j++)
#pragma GCC unroll 2
		for (int t = 0; t < MT; t++)
			if (t < mt)
				_mm256_maskstore_ps(y + t * ldy + 16 * g + 8 * j, mk[j], acc[j][t]);
}

#define TILE_SHAPE(NAME, OFF, SUB, MIN, S8)						\
T_AVX2 static void									\
NAME(const struct qpack *p, int ng, int g, int n, int mt, int nb, const uint8_t *xq,	\
    size_t ldx, int64_t k, int64_t b0, const struct qprep *tp, float *y, int64_t ldy,	\
    int first)										\
{											\
	if (mt == 2)									\
		tile_avx2(p, ng, g, n, 2, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN, S8); \
	else										\
		tile_avx2(p, ng, g, n, 1, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN, S8); \
}

TILE_SHAPE(tile_off, 1, 1, 0, 0)
TILE_SHAPE(tile_min, 0, 1, 1, 0)
TILE_SHAPE(tile_q6, 1, 2, 0, 0)
TILE_SHAPE(tile_s8, 0, 1, 0, 1)

typedef void (*tile_fn)(const struct qpack *, int, int, int, int, int, const uint8_t *, size_t,
    int64_t, int64_t, const struct qprep *, float *, int64_t, int);

T_AVX2 void
kern_q_avx2(int type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq,
    int m, float *y, int64_t ldy)
{
	struct qp_type qt;
	struct qpack pk;
	struct qprep tp;

	if (!qp_type_get(type, 0, &qt))
		return;
	tile_fn fn = qt.sub == 2 ? tile_q6 : qt.hasmin ? tile_min : qt.bits == 8 ? tile_s8 :
	    tile_off;
	size_t rb = qp_row_bytes(type, k), ldx = qact_row_bytes(k);
	int64_t nbk = k / 32;

	for (int64_t r = r0; r < r1; r += QP_ROWS) {
		int nrows = r1 - r < QP_ROWS ? (int)(r1 - r) : QP_ROWS, ng = (nrows + 15) / 16;
		for (int64_t b0 = 0; b0 < nbk; b0 += QP_NB) {
			int nb = nbk - b0 < QP_NB ? (int)(nbk - b0) : QP_NB;
			qp_pack(type, 0, (const uint8_t *)w + (size_t)r * rb, rb, nrows, b0, nb, &pk);
			for (int t = 0; t < m; t += MT) {
				int mt = m - t < MT ? m - t : MT;
				const uint8_t *xt = (const uint8_t *)xq + (size_t)t * ldx;
				qp_prep(&qt, xt, ldx, k, mt, b0, nb, &tp);
				for (int g = 0; g < ng; g++)
					fn(&pk, ng, g, nrows - 16 * g, mt, nb, xt, ldx, k, b0, &tp,
					    y + (int64_t)t * ldy + r, ldy, b0 == 0);
			}
		}
	}
}

/* qact_quantize_row's bytes, 8 floats at a time (see kern_qact_avx512). */
T_AVX2 void
kern_qact_avx2(const float *x, int64_t k, void *row)
{
	int8_t *q = (int8_t *)row;
	float *d = (float *)((char *)row + k);
	int16_t *s = (int16_t *)((char *)row + k + k / QA_BLOCK * 4);
	const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);

	for (int64_t b = 0; b < k / QA_BLOCK; b++) {
		__m256 xv[4], m = _mm256_setzero_ps();
		for (int i = 0; i < 4; i++) {
			xv[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
			m = _mm256_max_ps(_mm256_and_ps(xv[i], absmask), m);	/* NaN: keeps m */
		}
		__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
		m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
		m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
		float amax = _mm_cvtss_f32(m4);
		float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
		__m256 vid = _mm256_set1_ps(id);
		__m256i qi[4], sum = _mm256_setzero_si256();
		for (int i = 0; i < 4; i++) {
			__m256 v = _mm256_mul_ps(xv[i], vid);
			qi[i] = _mm256_and_si256(_mm256_cvtps_epi32(v),
			    _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_ORD_Q)));	/* NaN: 0 */
			qi[i] = _mm256_max_epi32(_mm256_min_epi32(qi[i], hi), lo);
			sum = _mm256_add_epi32(sum, qi[i]);
		}
		/* packs interleave the 128-bit lanes: put them back in order */
		__m256i p16a = _mm256_packs_epi32(qi[0], qi[1]), p16b = _mm256_packs_epi32(qi[2], qi[3]);
		__m256i p8 = _mm256_packs_epi16(p16a, p16b);
		p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
		_mm256_storeu_si256((__m256i *)(q + 32 * b), p8);
		__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
		s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
		s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
		d[b] = db;
		s[b] = (int16_t)_mm_cvtsi128_si32(s4);
	}
	size_t used = (size_t)k + (size_t)(k / QA_BLOCK) * 6;
	memset((char *)row + used, 0, qact_row_bytes(k) - used);
}

#endif
