/* kern_q_x86.c - AVX-512 VNNI kernels for quantized weights (core/quant.h) and the AVX-512
 * activation quantizer. Compiled for those targets per function, called only after the
 * run-time check in cpu.c (kern_q.c picks them).
 *
 * A tile is 32 weight rows (repacked once per 1024-element chunk, kern_q_pack.c) times up
 * to 6 tokens. One vpdpbusd multiplies 16 rows' 4 bytes by one token's 4 bytes broadcast, so
 * every lane is one row and collects that row's exact int32 dot per scale group; the group
 * is then added into the row's float accumulator as kern_q_int.h defines. Lanes never mix,
 * so a row's bits do not depend on the rows or tokens around it. Decode (1-4 tokens) goes to
 * kern_q_gemv.c, groups of 16 tokens to kern_q_amx.c where AMX tiles run (not GUARD_AMX=0). */
#include "core/kern.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

#include "core/gguf.h"
#include "core/kern_q_int.h"
#include "core/kern_q_x86.h"
#include "core/quant.h"

#define T_512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

enum { MT = 6 };

/* Rows [0, nrows) of the tile (ng groups of 16) x tokens [0, mt) over chunk blocks
 * [b0, b0 + nb); y holds the accumulators between chunks (first: start from 0). */
T_VNNI static inline __attribute__((always_inline)) void
tile_vnni(const struct qpack *p, const int ng, int nrows, const int mt, int nb,
    const uint8_t *xq, size_t ldx, int64_t k, int64_t b0, const struct qprep *tp, float *y,
    int64_t ldy, int first, const int off, const int sub, const int hasmin)
{
	__m512 acc[2][MT];
	__mmask16 mk[2];
	const float *da[MT];

	for (int g = 0; g < 2; g++) {
		int n = nrows - 16 * g;
		mk[g] = n >= 16 ? 0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
	}
#pragma GCC unroll 6
	for (int t = 0; t < MT; t++)
		if (t < mt)
			da[t] = qact_d(xq + (size_t)t * ldx, k) + b0;
#pragma GCC unroll 2
	for (int g = 0; g < 2; g++)
#pragma GCC unroll 6
		for (int t = 0; t < MT; t++)
			if (g < ng && t < mt)
				acc[g][t] = first ? _mm512_setzero_ps() :
				    _mm512_maskz_loadu_ps(mk[g], y + t * ldy + 16 * g);
	for (int b = 0; b < nb; b++) {
		const uint8_t *xb = xq + (b0 + b) * 32;
#pragma GCC unroll 2
		for (int h = 0; h < sub; h++) {
			__m512i iacc[2][MT];
#pragma GCC unroll 6
			for (int t = 0; t < MT; t++)
				if (t < mt) {
					__m512i c = off ? _mm512_set1_epi32(tp->corr[t][b * sub + h]) :
					    _mm512_setzero_si512();
#pragma GCC unroll 2
					for (int g = 0; g < 2; g++)
						if (g < ng)
							iacc[g][t] = c;
				}
#pragma GCC unroll 8
			for (int v = 0; v < 8; v++) {
				if (v >= 8 / sub)	/* a constant bound: the unroll pragma holds */
					break;
				int s = h * (8 / sub) + v;
				__m512i wv[2];
#pragma GCC unroll 2
				for (int g = 0; g < 2; g++)
					if (g < ng)
						wv[g] = _mm512_load_si512(p->q + ((b * 8 + s) * ng + g) * 64);
#pragma GCC unroll 6
				for (int t = 0; t < MT; t++)
					if (t < mt) {
						__m512i a = _mm512_set1_epi32(ld32(xb + t * ldx + 4 * s));
#pragma GCC unroll 2
						for (int g = 0; g < 2; g++)
							if (g < ng)
								iacc[g][t] = _mm512_dpbusd_epi32(iacc[g][t], wv[g], a);
					}
			}
#pragma GCC unroll 2
			for (int g = 0; g < 2; g++)
				if (g < ng) {
					__m512 dsv = _mm512_load_ps(p->ds + (b * 2 + h) * QP_ROWS + 16 * g);
#pragma GCC unroll 6
					for (int t = 0; t < MT; t++)
						if (t < mt)
							acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[g][t]),
							    _mm512_mul_ps(dsv, _mm512_set1_ps(da[t][b])), acc[g][t]);
				}
		}
		if (hasmin)
#pragma GCC unroll 2
			for (int g = 0; g < 2; g++)
				if (g < ng) {
					__m512 dmv = _mm512_load_ps(p->dm + b * QP_ROWS + 16 * g);
#pragma GCC unroll 6
					for (int t = 0; t < MT; t++)
						if (t < mt)
							acc[g][t] = _mm512_fmadd_ps(dmv, _mm512_set1_ps(tp->das[t][b]),
							    acc[g][t]);
				}
	}
#pragma GCC unroll 2
	for (int g = 0; g < 2; g++)
#pragma GCC unroll 6
		for (int t = 0; t < MT; t++)
			if (g < ng && t < mt)
				_mm512_mask_storeu_ps(y + t * ldy + 16 * g, mk[g], acc[g][t]);
}

/* qp_prep, with Q6_K's 16-element activation sums by vpsadbw (64 bytes at a time) */
T_VNNI void
prep_vnni(const struct qp_type *qt, const uint8_t *xq, size_t ldx, int64_t k, int mt,
    int64_t b0, int nb, struct qprep *tp)
{
	if (qt->sub != 2 || nb % 2 != 0) {
		qp_prep(qt, xq, ldx, k, mt, b0, nb, tp);
		return;
	}
	const __m512i flip = _mm512_set1_epi8((char)0x80);
	const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
	const __m128i bias = _mm_set1_epi32(2048), mul = _mm_set1_epi32(-qt->off);

	for (int t = 0; t < mt; t++) {
		const uint8_t *q = xq + (size_t)t * ldx + b0 * 32;
		for (int b = 0; b < nb; b += 2) {
			/* unsigned sums of 8 bytes (each biased by 8 * 128), then pairs: 4 halves */
			__m512i sad = _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(q + 32 * b), flip),
			    _mm512_setzero_si512());
			sad = _mm512_add_epi64(sad, _mm512_shuffle_epi32(sad, _MM_PERM_BADC));
			__m128i h = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
			    _mm512_cvtepi64_epi32(sad), even));
			h = _mm_mullo_epi32(_mm_sub_epi32(h, bias), mul);
			_mm_storeu_si128((__m128i *)&tp->corr[t][2 * b], h);
		}
	}
}

/* qp_pack with unpack16 where the type has one; sgn: the values minus the type's offset, as
 * signed bytes (the layout AMX's tdpbssd takes; off is then 0) */
T_VNNI void
pack_vnni(int type, int sgn, const uint8_t *w, size_t rb, int nrows, int64_t b0, int nb,
    struct qpack *p)
{
	int ng = (nrows + 15) / 16;
	struct qp_type qt;

	if (!qp_type_get(type, 1, &qt))
		return;
	const __m512i off = _mm512_set1_epi8((char)(sgn ? qt.off : 0));
	if (type == GGML_TYPE_Q5_K) {	/* no unpack16 for it (its decode has its own path) */
		qp_pack(type, 1, w, rb, nrows, b0, nb, p);
		return;		/* (Q5_K has no offset: its values are the same signed) */
	}
	for (int g = 0; g < ng; g++) {
		int n = nrows - 16 * g;
		__mmask16 live = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
		__m512i idx = _mm512_maskz_mullo_epi32(live, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7,
		    8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)rb));
		const uint8_t *wg = w + (size_t)(16 * g) * rb;
		for (int b = 0; b < nb; b++) {
			__m512i st[8];
			__m512 ds[2] = { _mm512_setzero_ps(), _mm512_setzero_ps() }, dm = _mm512_setzero_ps();
			if (type == GGML_TYPE_Q8_0)
				unpack16_q8_0(wg, rb, n, idx, b0 + b, st, &ds[0]);
			else
				unpack16(type, wg, idx, b0 + b, st, ds, &dm);
			for (int v = 0; v < 8; v++)
				_mm512_store_si512(p->q + ((b * 8 + v) * ng + g) * 64, _mm512_sub_epi8(st[v], off));
			_mm512_store_ps(p->ds + (b * 2) * QP_ROWS + 16 * g, ds[0]);
			_mm512_store_ps(p->ds + (b * 2 + 1) * QP_ROWS + 16 * g, ds[1]);
			_mm512_store_ps(p->dm + b * QP_ROWS + 16 * g, dm);
		}
	}
}

/* One instance per (groups, tokens) for a type shape (off, sub, hasmin): constants let each
 * keep its accumulators in registers. */
#define TILE_SHAPE(NAME, OFF, SUB, MIN)							\
T_VNNI static void									\
NAME(const struct qpack *p, int ng, int nrows, int mt, int nb, const uint8_t *xq,	\
    size_t ldx, int64_t k, int64_t b0, const struct qprep *tp, float *y, int64_t ldy,	\
    int first)										\
{											\
	switch (ng * 8 + mt) {								\
	case 8 + 1: tile_vnni(p, 1, nrows, 1, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	case 8 + 2: tile_vnni(p, 1, nrows, 2, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	case 8 + 3: tile_vnni(p, 1, nrows, 3, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	case 8 + 4: tile_vnni(p, 1, nrows, 4, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	case 8 + 5: tile_vnni(p, 1, nrows, 5, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	case 8 + 6: tile_vnni(p, 1, nrows, 6, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	case 16 + 1: tile_vnni(p, 2, nrows, 1, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	case 16 + 2: tile_vnni(p, 2, nrows, 2, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	case 16 + 3: tile_vnni(p, 2, nrows, 3, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	case 16 + 4: tile_vnni(p, 2, nrows, 4, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	case 16 + 5: tile_vnni(p, 2, nrows, 5, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	case 16 + 6: tile_vnni(p, 2, nrows, 6, nb, xq, ldx, k, b0, tp, y, ldy, first, OFF, SUB, MIN); break; \
	default: break;									\
	}										\
}

TILE_SHAPE(tile_off, 1, 1, 0)
TILE_SHAPE(tile_min, 0, 1, 1)
TILE_SHAPE(tile_q6, 1, 2, 0)

typedef void (*tile_fn)(const struct qpack *, int, int, int, int, const uint8_t *, size_t,
    int64_t, int64_t, const struct qprep *, float *, int64_t, int);


T_VNNI void
kern_q_vnni(int type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq,
    int m, float *y, int64_t ldy)
{
	struct qp_type qt;
	struct qpack pk;
	struct qprep tp;

	if (!qp_type_get(type, 1, &qt))
		return;
	/* the corr term carries the offset (always non-zero with flip) */
	tile_fn fn = qt.sub == 2 ? tile_q6 : qt.hasmin ? tile_min : tile_off;
	size_t rb = qp_row_bytes(type, k), ldx = qact_row_bytes(k);
	int64_t nbk = k / 32;
	if (gemv_vnni_run(type, w, k, r0, r1, xq, m, y, ldy))
		return;
	/* prefill of 16 tokens or more on AMX tiles where they run (kern_amx_on), else here.
	 * Not Q6_K: its 16-element scale groups halve each tile product's work, and it measured
	 * slower there than on these tiles (0.9x at m = 512). */
	if (m >= 16 && qt.sub == 1 && kern_amx_on() && kern_q_amx(type, w, k, r0, r1, xq, m, y, ldy))
		return;
	for (int64_t r = r0; r < r1; r += QP_ROWS) {
		int nrows = r1 - r < QP_ROWS ? (int)(r1 - r) : QP_ROWS, ng = (nrows + 15) / 16;
		for (int64_t b0 = 0; b0 < nbk; b0 += QP_NB) {
			int nb = nbk - b0 < QP_NB ? (int)(nbk - b0) : QP_NB;
			pack_vnni(type, 0, (const uint8_t *)w + (size_t)r * rb, rb, nrows, b0, nb, &pk);
			/* Q6_K's two scale groups per block keep more registers live: 4 tokens */
			int mtmax = qt.sub == 2 ? 4 : MT;
			for (int t = 0; t < m; t += mtmax) {
				int mt = m - t < mtmax ? m - t : mtmax;
				const uint8_t *xt = (const uint8_t *)xq + (size_t)t * ldx;
				prep_vnni(&qt, xt, ldx, k, mt, b0, nb, &tp);
				fn(&pk, ng, nrows, mt, nb, xt, ldx, k, b0, &tp, y + (int64_t)t * ldy + r,
				    ldy, b0 == 0);
			}
		}
	}
}

/* qact_quantize_row's bytes: per 32-block d = amax / 127, q = round-half-even(x * (1/d))
 * (vcvtps2dq under the default MXCSR rounds half to even) clamped to +-127, s = sum q. */
T_512 void
kern_qact_avx512(const float *x, int64_t k, void *row)
{
	int8_t *q = (int8_t *)row;
	float *d = (float *)((char *)row + k);
	int16_t *s = (int16_t *)((char *)row + k + k / QA_BLOCK * 4);
	const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);

	for (int64_t b = 0; b < k / QA_BLOCK; b++) {
		__m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
		/* vmaxps gives its second operand when one is NaN: NaNs are skipped, as in C */
		__m512 am = _mm512_max_ps(_mm512_abs_ps(x1), _mm512_max_ps(_mm512_abs_ps(x0),
		    _mm512_setzero_ps()));
		float amax = _mm512_reduce_max_ps(am);
		float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
		__m512 vid = _mm512_set1_ps(id);
		__m512 v0 = _mm512_mul_ps(x0, vid), v1 = _mm512_mul_ps(x1, vid);
		/* a NaN (or infinity times 0) quantizes to 0, as qact_quantize_row does */
		__m512i q0 = _mm512_maskz_cvtps_epi32(_mm512_cmp_ps_mask(v0, v0, _CMP_ORD_Q), v0);
		__m512i q1 = _mm512_maskz_cvtps_epi32(_mm512_cmp_ps_mask(v1, v1, _CMP_ORD_Q), v1);
		q0 = _mm512_max_epi32(_mm512_min_epi32(q0, hi), lo);
		q1 = _mm512_max_epi32(_mm512_min_epi32(q1, hi), lo);
		_mm_storeu_si128((__m128i *)(q + 32 * b), _mm512_cvtepi32_epi8(q0));
		_mm_storeu_si128((__m128i *)(q + 32 * b + 16), _mm512_cvtepi32_epi8(q1));
		d[b] = db;
		s[b] = (int16_t)_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
	}
	size_t used = (size_t)k + (size_t)(k / QA_BLOCK) * 6;
	memset((char *)row + used, 0, qact_row_bytes(k) - used);
}

#endif
