/* kern_q_x86.c - AVX-512 VNNI kernels for quantized weights (core/quant.h) and the AVX-512
 * activation quantizer. Compiled for those targets per function, called only after the
 * run-time check in cpu.c (kern_q.c picks them).
 *
 * A tile is 32 weight rows (repacked once per 1024-element chunk, kern_q_pack.c) times up
 * to 6 tokens. One vpdpbusd multiplies 16 rows' 4 bytes by one token's 4 bytes broadcast, so
 * every lane is one row and collects that row's exact int32 dot per scale group; the group
 * is then added into the row's float accumulator as kern_q_int.h defines. Lanes never mix,
 * so a row's bits do not depend on the rows or tokens around it. */
#include "core/kern.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

#include "core/gguf.h"
#include "core/kern_q_int.h"
#include "core/quant.h"

#define T_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))
#define T_512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

enum { MT = 6 };

static inline int32_t
ld32(const uint8_t *p)
{
	int32_t v;

	memcpy(&v, p, 4);
	return v;
}

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
T_VNNI static void
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

/* ---- SIMD repacking of the hot types (the others go through qp_pack's portable C) ----
 * Row i of a group of 16 is at w + idx[i] (rows past the end repeat row 0); a gather of
 * dword n of 16 rows' block is one step of 4 elements. */
#define GATHER(idx, p) _mm512_i32gather_epi32((idx), (const void *)(p), 1)

T_VNNI static inline __m512
half_lo(__m512i v)
{
	return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
}

T_VNNI static inline __attribute__((always_inline)) int
unpack16(int type, const uint8_t *w, __m512i idx, int64_t b, __m512i st[8], __m512 ds[2],
    __m512 *dm)
{
	const __m512i lo4 = _mm512_set1_epi8(0x0f), m6 = _mm512_set1_epi32(63);
	const uint8_t *p;
	int j = (int)(b % 8);

	switch (type) {
	case GGML_TYPE_Q8_0:
		p = w + b * 34;
		for (int v = 0; v < 8; v++)
			st[v] = _mm512_xor_si512(GATHER(idx, p + 2 + 4 * v), _mm512_set1_epi8((char)0x80));
		ds[0] = half_lo(GATHER(idx, p));
		return 1;
	case GGML_TYPE_Q4_0:
		p = w + b * 18;
		for (int v = 0; v < 4; v++) {
			__m512i g = GATHER(idx, p + 2 + 4 * v);
			st[v] = _mm512_and_si512(g, lo4);
			st[v + 4] = _mm512_and_si512(_mm512_srli_epi32(g, 4), lo4);
		}
		ds[0] = half_lo(GATHER(idx, p));
		return 1;
	case GGML_TYPE_Q4_K: {
		p = w + b / 8 * 144;
		const uint8_t *qs = p + 16 + 32 * (j / 2);
		for (int v = 0; v < 8; v++) {
			__m512i g = GATHER(idx, qs + 4 * v);
			st[v] = _mm512_and_si512(j & 1 ? _mm512_srli_epi32(g, 4) : g, lo4);
		}
		__m512i dd = GATHER(idx, p);
		__m512 d = half_lo(dd), dmin = half_lo(_mm512_srli_epi32(dd, 16));
		/* byte n of scales[12] of every row */
#define SB(n) _mm512_and_si512(_mm512_srli_epi32(GATHER(idx, p + 4 + (n) / 4 * 4), 8 * ((n) % 4)), \
	_mm512_set1_epi32(255))
		__m512i sc, mn;
		if (j < 4) {
			sc = _mm512_and_si512(SB(j), m6);
			mn = _mm512_and_si512(SB(j + 4), m6);
		} else {
			__m512i a = SB(j + 4);
			sc = _mm512_or_si512(_mm512_and_si512(a, _mm512_set1_epi32(15)),
			    _mm512_slli_epi32(_mm512_srli_epi32(SB(j - 4), 6), 4));
			mn = _mm512_or_si512(_mm512_srli_epi32(a, 4),
			    _mm512_slli_epi32(_mm512_srli_epi32(SB(j), 6), 4));
		}
#undef SB
		ds[0] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
		*dm = _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mn)));
		return 1;
	}
	case GGML_TYPE_Q6_K: {
		int n = j / 4, s = j % 4;
		p = w + b / 8 * 210;
		const uint8_t *ql = p + 64 * n + 32 * (s & 1), *qh = p + 128 + 32 * n;
		for (int v = 0; v < 8; v++) {
			__m512i l = _mm512_and_si512(_mm512_srli_epi32(GATHER(idx, ql + 4 * v), 4 * (s >> 1)), lo4);
			__m512i h = _mm512_and_si512(_mm512_srli_epi32(GATHER(idx, qh + 4 * v), 2 * s),
			    _mm512_set1_epi8(3));
			st[v] = _mm512_or_si512(l, _mm512_slli_epi32(h, 4));
		}
		__m512 d = half_lo(_mm512_srli_epi32(GATHER(idx, p + 206), 16));
		__m512i sc = GATHER(idx, p + 192 + 8 * n + 2 * s);
		ds[0] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(sc, 24), 24)));
		ds[1] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(sc, 16), 24)));
		return 1;
	}
	default:
		return 0;
	}
}

/* Q8_0 without gathers: 16 rows' 32 bytes by two 256-bit loads per register, then an 8 x 8
 * dword transpose in each 256-bit half (unpacks, then one two-source permute per step).
 * As fast as the 8 gathers on this Sapphire Rapids (22 GB/s per core in cache), but gathers
 * are microcoded and slow on Zen 4 and on Intel parts with the Downfall mitigation.
 * Rows n.. of the group repeat row 0. */
T_VNNI static inline __attribute__((always_inline)) void
unpack16_q8_0(const uint8_t *w, size_t rb, int n, __m512i idx, int64_t b, __m512i st[8],
    __m512 *ds)
{
	const uint8_t *p = w + b * 34;
	__m512i z[8], t[8], u[8];

	for (int i = 0; i < 8; i++) {
		const uint8_t *lo = p + (size_t)(i < n ? i : 0) * rb, *hi = p + (size_t)(i + 8 < n ? i + 8 : 0) * rb;
		z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(lo + 2))),
		    _mm256_loadu_si256((const __m256i *)(hi + 2)), 1);
	}
	for (int i = 0; i < 8; i += 2) {
		t[i] = _mm512_unpacklo_epi32(z[i], z[i + 1]);
		t[i + 1] = _mm512_unpackhi_epi32(z[i], z[i + 1]);
	}
	for (int i = 0; i < 8; i += 4) {
		u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
		u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
		u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
		u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
	}
	/* u[j] (rows 0-3) and u[j + 4] (rows 4-7) hold dword j in 128-bit lanes 0 and 2 and
	 * dword j + 4 in lanes 1 and 3 */
	const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
	const __m512i hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
	const __m512i flip = _mm512_set1_epi8((char)0x80);
	for (int j = 0; j < 4; j++) {
		st[j] = _mm512_xor_si512(_mm512_permutex2var_epi64(u[j], lo, u[j + 4]), flip);
		st[j + 4] = _mm512_xor_si512(_mm512_permutex2var_epi64(u[j], hi, u[j + 4]), flip);
	}
	*ds = half_lo(GATHER(idx, p));
}

/* qp_pack with unpack16 where the type has one */
T_VNNI static void
pack_vnni(int type, const uint8_t *w, size_t rb, int nrows, int64_t b0, int nb, struct qpack *p)
{
	int ng = (nrows + 15) / 16;

	if (type != GGML_TYPE_Q8_0 && type != GGML_TYPE_Q4_0 && type != GGML_TYPE_Q4_K &&
	    type != GGML_TYPE_Q6_K) {
		qp_pack(type, 1, w, rb, nrows, b0, nb, p);
		return;
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
				_mm512_store_si512(p->q + ((b * 8 + v) * ng + g) * 64, st[v]);
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

/* Decode reads 16 rows at once, 16 streams the hardware prefetcher follows poorly (a row of
 * 1-4 KiB ends at a page); so each line starting in bytes [from, to) of a row is prefetched
 * PF_DIST bytes ahead (consecutive calls cover each line once), as the BF16 kernel does. */
enum { PF_DIST = 512 };

T_VNNI static inline __attribute__((always_inline)) void
prefetch16(const uint8_t *w, size_t rb, size_t from, size_t to)
{
	for (size_t l = (from + 63) / 64; l * 64 < to; l++)
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++)
			_mm_prefetch((const char *)(w + i * rb + l * 64 + PF_DIST), _MM_HINT_T0);
}

/* Decode (m <= 4): no pack buffer. Each block of 16 rows is unpacked into registers and
 * multiplied by every token at once; the accumulators stay in registers over the whole row,
 * and the float steps are the tile's, so the bits are the same as at any m. */
enum { GV_MT = 4 };

T_VNNI static inline __attribute__((always_inline)) void
gemv_vnni(const int type, const uint8_t *w, size_t rb, int nrows, const int mt,
    const uint8_t *xq, size_t ldx, int64_t k, float *y, int64_t ldy, const int off,
    const int sub, const int hasmin)
{
	int ng = (nrows + 15) / 16;
	__m512 acc[2][GV_MT];
	__m512i idx[2];
	__mmask16 mk[2];
	struct qprep tp;

	for (int g = 0; g < 2; g++) {
		int n = nrows - 16 * g;
		mk[g] = n >= 16 ? 0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
		idx[g] = _mm512_maskz_mullo_epi32(mk[g], _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8,
		    9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)rb));
		for (int t = 0; t < GV_MT; t++)
			acc[g][t] = _mm512_setzero_ps();
	}
	struct qp_type qt = { off ? (type == GGML_TYPE_Q6_K ? 32 : type == GGML_TYPE_Q4_0 ? 8 : 128) : 0,
		sub, hasmin, 8 };
	for (int64_t b0 = 0; b0 < k / 32; b0 += QP_NB) {
		int nb = k / 32 - b0 < QP_NB ? (int)(k / 32 - b0) : QP_NB;
		prep_vnni(&qt, xq, ldx, k, mt, b0, nb, &tp);
		for (int g = 0; g < ng; g++) {
			const uint8_t *wg = w + (size_t)(16 * g) * rb;
			for (int bb = 0; bb < nb; bb++) {
				int64_t b = b0 + bb;
				__m512i st[8];
				__m512 ds[2], dm = _mm512_setzero_ps();
				size_t bs = type == GGML_TYPE_Q8_0 ? 34 : type == GGML_TYPE_Q4_0 ? 18 : 210;
				size_t at = type == GGML_TYPE_Q6_K ? (size_t)b / 8 * bs + (size_t)(b % 8) * bs / 8 :
				    (size_t)b * bs;
				size_t nx = type == GGML_TYPE_Q6_K ? (size_t)(b + 1) / 8 * bs +
				    (size_t)((b + 1) % 8) * bs / 8 : (size_t)(b + 1) * bs;
				prefetch16(wg, rb, at, nx);
				if (type == GGML_TYPE_Q8_0)
					unpack16_q8_0(wg, rb, nrows - 16 * g, idx[g], b, st, &ds[0]);
				else
					unpack16(type, wg, idx[g], b, st, ds, &dm);
#pragma GCC unroll 2
				for (int h = 0; h < sub; h++)
#pragma GCC unroll 4
					for (int t = 0; t < GV_MT; t++)
						if (t < mt) {
							const uint8_t *xb = xq + (size_t)t * ldx + b * 32;
							__m512i ia = off ? _mm512_set1_epi32(tp.corr[t][bb * sub + h]) :
							    _mm512_setzero_si512();
#pragma GCC unroll 8
							for (int v = 0; v < 8; v++)
								if (v < 8 / sub)
									ia = _mm512_dpbusd_epi32(ia, st[h * (8 / sub) + v],
									    _mm512_set1_epi32(ld32(xb + 4 * (h * (8 / sub) + v))));
							float da = qact_d(xq + (size_t)t * ldx, k)[b];
							acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia),
							    _mm512_mul_ps(ds[h], _mm512_set1_ps(da)), acc[g][t]);
						}
				if (hasmin)
#pragma GCC unroll 4
					for (int t = 0; t < GV_MT; t++)
						if (t < mt)
							acc[g][t] = _mm512_fmadd_ps(dm, _mm512_set1_ps(tp.das[t][bb]),
							    acc[g][t]);
			}
		}
	}
	for (int g = 0; g < ng; g++)
		for (int t = 0; t < mt; t++)
			_mm512_mask_storeu_ps(y + t * ldy + 16 * g, mk[g], acc[g][t]);
}

/* Q4_K decode: a superblock at a time, so its scale bytes are gathered once and each
 * 32-byte run of nibbles once for the two blocks that share it. Same float steps. */
T_VNNI static inline __attribute__((always_inline)) void
gemv_q4k(const uint8_t *w, size_t rb, int nrows, const int mt, const uint8_t *xq, size_t ldx,
    int64_t k, float *y, int64_t ldy)
{
	int ng = (nrows + 15) / 16;
	__m512 acc[2][GV_MT];
	__m512i idx[2];
	__mmask16 mk[2];
	struct qprep tp;
	const struct qp_type qt = { 0, 1, 1, 4 };
	const __m512i lo4 = _mm512_set1_epi8(0x0f), m6 = _mm512_set1_epi32(63), b255 = _mm512_set1_epi32(255);

	for (int g = 0; g < 2; g++) {
		int n = nrows - 16 * g;
		mk[g] = n >= 16 ? 0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
		idx[g] = _mm512_maskz_mullo_epi32(mk[g], _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8,
		    9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)rb));
		for (int t = 0; t < GV_MT; t++)
			acc[g][t] = _mm512_setzero_ps();
	}
	for (int64_t b0 = 0; b0 < k / 32; b0 += QP_NB) {
		int nb = k / 32 - b0 < QP_NB ? (int)(k / 32 - b0) : QP_NB;
		qp_prep(&qt, xq, ldx, k, mt, b0, nb, &tp);
		for (int g = 0; g < ng; g++) {
			const uint8_t *wg = w + (size_t)(16 * g) * rb;
			for (int sb = 0; sb < nb / 8; sb++) {
				const uint8_t *p = wg + (b0 / 8 + sb) * 144;
				prefetch16(wg, rb, (size_t)(b0 / 8 + sb) * 144, (size_t)(b0 / 8 + sb + 1) * 144);
				__m512i dd = GATHER(idx[g], p);
				__m512 d = half_lo(dd), dmin = half_lo(_mm512_srli_epi32(dd, 16));
				__m512i sw[3] = { GATHER(idx[g], p + 4), GATHER(idx[g], p + 8),
					GATHER(idx[g], p + 12) };
#define SB(n) _mm512_and_si512(_mm512_srli_epi32(sw[(n) / 4], 8 * ((n) % 4)), b255)
				for (int i = 0; i < 4; i++) {
					__m512i gq[8];
					for (int v = 0; v < 8; v++)
						gq[v] = GATHER(idx[g], p + 16 + 32 * i + 4 * v);
#pragma GCC unroll 2
					for (int hi = 0; hi < 2; hi++) {
						int j = 2 * i + hi, bb = sb * 8 + j;
						__m512i sc, mn;
						if (j < 4) {
							sc = _mm512_and_si512(SB(j), m6);
							mn = _mm512_and_si512(SB(j + 4), m6);
						} else {
							__m512i a = SB(j + 4);
							sc = _mm512_or_si512(_mm512_and_si512(a, _mm512_set1_epi32(15)),
							    _mm512_slli_epi32(_mm512_srli_epi32(SB(j - 4), 6), 4));
							mn = _mm512_or_si512(_mm512_srli_epi32(a, 4),
							    _mm512_slli_epi32(_mm512_srli_epi32(SB(j), 6), 4));
						}
						__m512 ds = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
						__m512 dm = _mm512_sub_ps(_mm512_setzero_ps(),
						    _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mn)));
						__m512i st[8];
						for (int v = 0; v < 8; v++)
							st[v] = _mm512_and_si512(hi ? _mm512_srli_epi32(gq[v], 4) : gq[v], lo4);
#pragma GCC unroll 4
						for (int t = 0; t < GV_MT; t++)
							if (t < mt) {
								const uint8_t *xb = xq + (size_t)t * ldx + (b0 + bb) * 32;
								__m512i ia = _mm512_setzero_si512();
#pragma GCC unroll 8
								for (int v = 0; v < 8; v++)
									ia = _mm512_dpbusd_epi32(ia, st[v],
									    _mm512_set1_epi32(ld32(xb + 4 * v)));
								float da = qact_d(xq + (size_t)t * ldx, k)[b0 + bb];
								acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia),
								    _mm512_mul_ps(ds, _mm512_set1_ps(da)), acc[g][t]);
								acc[g][t] = _mm512_fmadd_ps(dm, _mm512_set1_ps(tp.das[t][bb]),
								    acc[g][t]);
							}
					}
				}
#undef SB
			}
		}
	}
	for (int g = 0; g < ng; g++)
		for (int t = 0; t < mt; t++)
			_mm512_mask_storeu_ps(y + t * ldy + 16 * g, mk[g], acc[g][t]);
}

T_VNNI static void
gemv_q4_k(const uint8_t *w, size_t rb, int nrows, int mt, const uint8_t *xq, size_t ldx,
    int64_t k, float *y, int64_t ldy)
{
	switch (mt) {
	case 1: gemv_q4k(w, rb, nrows, 1, xq, ldx, k, y, ldy); break;
	case 2: gemv_q4k(w, rb, nrows, 2, xq, ldx, k, y, ldy); break;
	case 3: gemv_q4k(w, rb, nrows, 3, xq, ldx, k, y, ldy); break;
	case 4: gemv_q4k(w, rb, nrows, 4, xq, ldx, k, y, ldy); break;
	default: break;
	}
}

/* Q6_K decode: a 128-element half of a superblock (4 blocks) at a time, so its 32 bytes of
 * high bits are gathered once for the 4 blocks and each 32 bytes of low nibbles once for
 * the 2 blocks that share them. The integer dots of the 4 blocks come first, then the
 * float steps in block order, as everywhere. */
T_VNNI static inline __attribute__((always_inline)) void
gemv_q6k(const uint8_t *w, size_t rb, int nrows, const int mt, const uint8_t *xq, size_t ldx,
    int64_t k, float *y, int64_t ldy)
{
	int ng = (nrows + 15) / 16;
	__m512 acc[2][GV_MT];
	__m512i idx[2];
	__mmask16 mk[2];
	struct qprep tp;
	const struct qp_type qt = { 32, 2, 0, 6 };
	const __m512i lo4 = _mm512_set1_epi8(0x0f), lo2 = _mm512_set1_epi8(3);

	for (int g = 0; g < 2; g++) {
		int n = nrows - 16 * g;
		mk[g] = n >= 16 ? 0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
		idx[g] = _mm512_maskz_mullo_epi32(mk[g], _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8,
		    9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)rb));
		for (int t = 0; t < GV_MT; t++)
			acc[g][t] = _mm512_setzero_ps();
	}
	for (int64_t b0 = 0; b0 < k / 32; b0 += QP_NB) {
		int nb = k / 32 - b0 < QP_NB ? (int)(k / 32 - b0) : QP_NB;
		prep_vnni(&qt, xq, ldx, k, mt, b0, nb, &tp);
		for (int g = 0; g < ng; g++) {
			const uint8_t *wg = w + (size_t)(16 * g) * rb;
			for (int sb = 0; sb < nb / 8; sb++) {
				const uint8_t *p = wg + (b0 / 8 + sb) * 210;
				prefetch16(wg, rb, (size_t)(b0 / 8 + sb) * 210, (size_t)(b0 / 8 + sb + 1) * 210);
				__m512 d = half_lo(_mm512_srli_epi32(GATHER(idx[g], p + 206), 16));
				__m512i scw[4] = { GATHER(idx[g], p + 192), GATHER(idx[g], p + 196),
					GATHER(idx[g], p + 200), GATHER(idx[g], p + 204) };
				for (int n = 0; n < 2; n++) {
					__m512i qh[8], ia[4][2][GV_MT];
					for (int v = 0; v < 8; v++)
						qh[v] = GATHER(idx[g], p + 128 + 32 * n + 4 * v);
#pragma GCC unroll 2
					for (int half = 0; half < 2; half++) {
						__m512i ql[8];
						for (int v = 0; v < 8; v++)
							ql[v] = GATHER(idx[g], p + 64 * n + 32 * half + 4 * v);
#pragma GCC unroll 2
						for (int nib = 0; nib < 2; nib++) {
							int s = half + 2 * nib, bb = sb * 8 + 4 * n + s;
							__m512i st[8];
							for (int v = 0; v < 8; v++)
								st[v] = _mm512_or_si512(_mm512_and_si512(
								    _mm512_srli_epi32(ql[v], 4 * nib), lo4),
								    _mm512_slli_epi32(_mm512_and_si512(
								    _mm512_srli_epi32(qh[v], 2 * s), lo2), 4));
#pragma GCC unroll 4
							for (int t = 0; t < GV_MT; t++)
								if (t < mt) {
									const uint8_t *xb = xq + (size_t)t * ldx + (b0 + bb) * 32;
#pragma GCC unroll 2
									for (int h = 0; h < 2; h++) {
										__m512i a = _mm512_set1_epi32(tp.corr[t][bb * 2 + h]);
#pragma GCC unroll 4
										for (int v = 0; v < 4; v++)
											a = _mm512_dpbusd_epi32(a, st[4 * h + v],
											    _mm512_set1_epi32(ld32(xb + 4 * (4 * h + v))));
										ia[s][h][t] = a;
									}
								}
						}
					}
#pragma GCC unroll 4
					for (int s = 0; s < 4; s++) {
						int bb = sb * 8 + 4 * n + s;
#pragma GCC unroll 2
						for (int h = 0; h < 2; h++) {
							int i = 8 * n + 2 * s + h;
							__m512 ds = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_srai_epi32(
							    _mm512_slli_epi32(scw[i / 4], 24 - 8 * (i % 4)), 24)));
#pragma GCC unroll 4
							for (int t = 0; t < GV_MT; t++)
								if (t < mt) {
									float da = qact_d(xq + (size_t)t * ldx, k)[b0 + bb];
									acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[s][h][t]),
									    _mm512_mul_ps(ds, _mm512_set1_ps(da)), acc[g][t]);
								}
						}
					}
				}
			}
		}
	}
	for (int g = 0; g < ng; g++)
		for (int t = 0; t < mt; t++)
			_mm512_mask_storeu_ps(y + t * ldy + 16 * g, mk[g], acc[g][t]);
}

T_VNNI static void
gemv_q6_k(const uint8_t *w, size_t rb, int nrows, int mt, const uint8_t *xq, size_t ldx,
    int64_t k, float *y, int64_t ldy)
{
	switch (mt) {
	case 1: gemv_q6k(w, rb, nrows, 1, xq, ldx, k, y, ldy); break;
	case 2: gemv_q6k(w, rb, nrows, 2, xq, ldx, k, y, ldy); break;
	case 3: gemv_q6k(w, rb, nrows, 3, xq, ldx, k, y, ldy); break;
	case 4: gemv_q6k(w, rb, nrows, 4, xq, ldx, k, y, ldy); break;
	default: break;
	}
}

#define GEMV_TYPE(NAME, TYPE, OFF, SUB, MIN)						\
T_VNNI static void									\
NAME(const uint8_t *w, size_t rb, int nrows, int mt, const uint8_t *xq, size_t ldx,	\
    int64_t k, float *y, int64_t ldy)							\
{											\
	switch (mt) {									\
	case 1: gemv_vnni(TYPE, w, rb, nrows, 1, xq, ldx, k, y, ldy, OFF, SUB, MIN); break; \
	case 2: gemv_vnni(TYPE, w, rb, nrows, 2, xq, ldx, k, y, ldy, OFF, SUB, MIN); break; \
	case 3: gemv_vnni(TYPE, w, rb, nrows, 3, xq, ldx, k, y, ldy, OFF, SUB, MIN); break; \
	case 4: gemv_vnni(TYPE, w, rb, nrows, 4, xq, ldx, k, y, ldy, OFF, SUB, MIN); break; \
	default: break;									\
	}										\
}

GEMV_TYPE(gemv_q8_0, GGML_TYPE_Q8_0, 1, 1, 0)
GEMV_TYPE(gemv_q4_0, GGML_TYPE_Q4_0, 1, 1, 0)

typedef void (*gemv_fn)(const uint8_t *, size_t, int, int, const uint8_t *, size_t, int64_t,
    float *, int64_t);

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
	gemv_fn gv = type == GGML_TYPE_Q8_0 ? gemv_q8_0 : type == GGML_TYPE_Q4_0 ? gemv_q4_0 :
	    type == GGML_TYPE_Q4_K ? gemv_q4_k : type == GGML_TYPE_Q6_K ? gemv_q6_k : NULL;

	if (gv != NULL && m <= GV_MT) {
		for (int64_t r = r0; r < r1; r += QP_ROWS)
			gv((const uint8_t *)w + (size_t)r * rb, rb, r1 - r < QP_ROWS ? (int)(r1 - r) :
			    QP_ROWS, m, xq, ldx, k, y + r, ldy);
		return;
	}
	/* prefill: whole groups of 16 tokens on AMX tiles if asked (kern_amx_on), the rest here */
	if (m >= 16 && kern_amx_on()) {
		int done = kern_q_amx(type, w, k, r0, r1, xq, m, y, ldy);
		xq = (const uint8_t *)xq + (size_t)done * ldx;
		y += (int64_t)done * ldy;
		m -= done;
	}
	for (int64_t r = r0; r < r1; r += QP_ROWS) {
		int nrows = r1 - r < QP_ROWS ? (int)(r1 - r) : QP_ROWS, ng = (nrows + 15) / 16;
		for (int64_t b0 = 0; b0 < nbk; b0 += QP_NB) {
			int nb = nbk - b0 < QP_NB ? (int)(nbk - b0) : QP_NB;
			pack_vnni(type, (const uint8_t *)w + (size_t)r * rb, rb, nrows, b0, nb, &pk);
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
