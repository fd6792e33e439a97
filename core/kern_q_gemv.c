/* kern_q_gemv.c - the decode product (1 to 4 tokens) of the AVX-512 VNNI family for Q8_0,
 * all nine types: memory-bound, so no pack buffer; 16 rows' blocks are unpacked into
 * registers, multiplied by every token at once and summed in kern_q_int.h's order, the
 * same bits as the prefill tiles give. */
#include "core/kern.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "core/kern_q_x86.h"
#include "core/quant.h"

#include <string.h>

/* Decode reads 16 rows at once, 16 streams the hardware prefetcher follows poorly (a row of
 * 1-4 KiB ends at a page); so each line starting in bytes [from, to) of a row is prefetched
 * in the NEXT group of 16 rows, a whole group ahead, as the BF16 kernel prefetches its next
 * tile (measured 2026-12-01 on the Llama Guard 3 1B shape, mmapped: Q4_K_M decode 17.6 ->
 * 21.9 tok/s, Q8_0 13.9 -> 15.5, against 512 bytes ahead in the same row). The K types,
 * whose 16 rows are gathered a superblock at a time, prefetch into L2 only (_MM_HINT_T1):
 * the bursts of 16 x 3 lines no longer wait for L1's few fill buffers (Q4_K_M decode 25.1
 * -> 26.7 tok/s, same run; Q8_0 lost 2 % that way and keeps L1). */

static inline uint64_t
ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

T_VNNI static inline __attribute__((always_inline)) void
prefetch16(const uint8_t *w, size_t rb, size_t from, size_t to, const int l2)
{
	for (size_t l = (from + 63) / 64; l * 64 < to; l++)
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++)
			if (l2)
				_mm_prefetch((const char *)(w + (16 + i) * rb + l * 64), _MM_HINT_T1);
			else
				_mm_prefetch((const char *)(w + (16 + i) * rb + l * 64), _MM_HINT_T0);
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
	struct qp_type qt;

	qp_type_get(type, 1, &qt);
	for (int64_t b0 = 0; b0 < k / 32; b0 += QP_NB) {
		int nb = k / 32 - b0 < QP_NB ? (int)(k / 32 - b0) : QP_NB;
		prep_vnni(&qt, xq, ldx, k, mt, b0, nb, &tp);
		for (int g = 0; g < ng; g++) {
			const uint8_t *wg = w + (size_t)(16 * g) * rb;
			for (int bb = 0; bb < nb; bb++) {
				int64_t b = b0 + bb;
				__m512i st[8];
				__m512 ds[2], dm = _mm512_setzero_ps();
				/* the row's bytes up to block b (a K superblock's bytes spread evenly) */
				const int kq = type == GGML_TYPE_Q8_K;
				size_t bs = type == GGML_TYPE_Q8_0 ? 34 : type == GGML_TYPE_Q4_0 ? 18 :
				    type == GGML_TYPE_Q4_1 ? 20 : type == GGML_TYPE_Q5_0 ? 22 :
				    type == GGML_TYPE_Q5_1 ? 24 : 292;
				size_t at = kq ? (size_t)b / 8 * bs + (size_t)(b % 8) * bs / 8 : (size_t)b * bs;
				size_t nx = kq ? (size_t)(b + 1) / 8 * bs + (size_t)((b + 1) % 8) * bs / 8 :
				    (size_t)(b + 1) * bs;
				prefetch16(wg, rb, at, nx, 0);
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

/* Q4_K and Q5_K decode: a superblock at a time, so its scale bytes (and Q5_K's 32 bytes of
 * fifth bits) are gathered once and each 32-byte run of nibbles once for the two blocks
 * that share it. Same float steps. */
T_VNNI static inline __attribute__((always_inline)) void
gemv_q4k(const uint8_t *w, size_t rb, int nrows, const int mt, const uint8_t *xq, size_t ldx,
    int64_t k, float *y, int64_t ldy, const int five)
{
	const size_t bs = five ? 176 : 144;
	int ng = (nrows + 15) / 16;
	__m512 acc[2][GV_MT];
	__m512i idx[2];
	__mmask16 mk[2];
	struct qprep tp;
	const struct qp_type qt = { 0, 1, 1, 4 };
	const __m512i lo4 = _mm512_set1_epi8(0x0f), b255 = _mm512_set1_epi32(255);
	const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
	const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
	__m256i ix8[2][2];

	for (int g = 0; g < 2; g++) {
		int n = nrows - 16 * g;
		mk[g] = n >= 16 ? 0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
		idx[g] = _mm512_maskz_mullo_epi32(mk[g], _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8,
		    9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)rb));
		ix8[g][0] = _mm512_castsi512_si256(idx[g]);
		ix8[g][1] = _mm512_extracti64x4_epi64(idx[g], 1);
		for (int t = 0; t < GV_MT; t++)
			acc[g][t] = _mm512_setzero_ps();
	}
	for (int64_t b0 = 0; b0 < k / 32; b0 += QP_NB) {
		int nb = k / 32 - b0 < QP_NB ? (int)(k / 32 - b0) : QP_NB;
		qp_prep(&qt, xq, ldx, k, mt, b0, nb, &tp);
		for (int g = 0; g < ng; g++) {
			const uint8_t *wg = w + (size_t)(16 * g) * rb;
			for (int sb = 0; sb < nb / 8; sb++) {
				const uint8_t *p = wg + (size_t)(b0 / 8 + sb) * bs;
				prefetch16(wg, rb, (size_t)(b0 / 8 + sb) * bs, (size_t)(b0 / 8 + sb + 1) * bs, 1);
				__m512i qh[8];
				if (five)
#pragma GCC unroll 8
					for (int v = 0; v < 8; v++)
						qh[v] = GATHER(idx[g], p + 16 + 4 * v);
				__m512i dd = GATHER(idx[g], p);
				__m512 d = half_lo(dd), dmin = half_lo(_mm512_srli_epi32(dd, 16));
				__m512i sw[3] = { GATHER(idx[g], p + 4), GATHER(idx[g], p + 8),
					GATHER(idx[g], p + 12) };
				/* the 8 scales and 8 mins as bytes, 4 blocks to a dword, then byte j % 4 */
				const __m512i m03 = _mm512_set1_epi8(3);
				__m512i scb[2] = { _mm512_and_si512(sw[0], _mm512_set1_epi8(0x3f)),
					_mm512_or_si512(_mm512_and_si512(sw[2], lo4), _mm512_slli_epi32(
					    _mm512_and_si512(_mm512_srli_epi32(sw[0], 6), m03), 4)) };
				__m512i mnb[2] = { _mm512_and_si512(sw[1], _mm512_set1_epi8(0x3f)),
					_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(sw[2], 4), lo4),
					    _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(sw[1], 6), m03), 4)) };
#define SB(v, n) ((n) % 4 == 3 ? _mm512_srli_epi32((v)[(n) / 4], 24) : (n) % 4 == 0 ?	\
	_mm512_and_si512((v)[(n) / 4], b255) :						\
	_mm512_and_si512(_mm512_srli_epi32((v)[(n) / 4], 8 * ((n) % 4)), b255))
#pragma GCC unroll 4
				for (int i = 0; i < 4; i++) {
					__m512i gq[8];
					if (!five) {
						/* 8 qwords of 8 rows per gather: half the loads of 16 dwords */
#pragma GCC unroll 4
						for (int v = 0; v < 4; v++)
#pragma GCC unroll 2
							for (int h = 0; h < 2; h++)
								gq[4 * h + v] = _mm512_i32gather_epi64(ix8[g][h],
								    (const void *)(p + 16 + 32 * i + 8 * v), 1);
					} else {
#pragma GCC unroll 8
						for (int v = 0; v < 8; v++)
							gq[v] = GATHER(idx[g], p + 16 + 32 * five + 32 * i + 4 * v);
					}
#pragma GCC unroll 2
					for (int hi = 0; hi < 2; hi++) {
						int j = 2 * i + hi, bb = sb * 8 + j;
						__m512i sc = SB(scb, j), mn = SB(mnb, j);
						__m512 ds = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
						__m512 dm = _mm512_sub_ps(_mm512_setzero_ps(),
						    _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mn)));
						__m512i st[8];
#pragma GCC unroll 8
						for (int v = 0; v < 8; v++)
							st[v] = _mm512_and_si512(hi ? _mm512_srli_epi32(gq[v], 4) : gq[v], lo4);
						if (five)	/* bit j of each qh byte is block j's fifth bit */
#pragma GCC unroll 8
							for (int v = 0; v < 8; v++)
								st[v] = _mm512_or_si512(st[v], _mm512_slli_epi32(_mm512_and_si512(
								    _mm512_srli_epi32(qh[v], j), _mm512_set1_epi8(1)), 4));
#pragma GCC unroll 4
						for (int t = 0; t < GV_MT; t++)
							if (t < mt) {
								const uint8_t *xb = xq + (size_t)t * ldx + (b0 + bb) * 32;
								__m512i ia = _mm512_setzero_si512();
								if (!five) {
									/* row r's sum is in dwords 2r and 2r + 1 of its half:
									 * the same integer, summed in another order */
									__m512i a0 = ia, a1 = ia;
#pragma GCC unroll 4
									for (int v = 0; v < 4; v++) {
										__m512i xv = _mm512_set1_epi64((long long)ld64(xb + 8 * v));
										a0 = _mm512_dpbusd_epi32(a0, st[v], xv);
										a1 = _mm512_dpbusd_epi32(a1, st[4 + v], xv);
									}
									ia = _mm512_add_epi32(_mm512_permutex2var_epi32(a0, ev, a1),
									    _mm512_permutex2var_epi32(a0, od, a1));
								} else
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
	case 1: gemv_q4k(w, rb, nrows, 1, xq, ldx, k, y, ldy, 0); break;
	case 2: gemv_q4k(w, rb, nrows, 2, xq, ldx, k, y, ldy, 0); break;
	case 3: gemv_q4k(w, rb, nrows, 3, xq, ldx, k, y, ldy, 0); break;
	case 4: gemv_q4k(w, rb, nrows, 4, xq, ldx, k, y, ldy, 0); break;
	default: break;
	}
}

T_VNNI static void
gemv_q5_k(const uint8_t *w, size_t rb, int nrows, int mt, const uint8_t *xq, size_t ldx,
    int64_t k, float *y, int64_t ldy)
{
	switch (mt) {
	case 1: gemv_q4k(w, rb, nrows, 1, xq, ldx, k, y, ldy, 1); break;
	case 2: gemv_q4k(w, rb, nrows, 2, xq, ldx, k, y, ldy, 1); break;
	case 3: gemv_q4k(w, rb, nrows, 3, xq, ldx, k, y, ldy, 1); break;
	case 4: gemv_q4k(w, rb, nrows, 4, xq, ldx, k, y, ldy, 1); break;
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
	const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
	const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
	__m256i ix8[2][2];

	for (int g = 0; g < 2; g++) {
		int n = nrows - 16 * g;
		mk[g] = n >= 16 ? 0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
		idx[g] = _mm512_maskz_mullo_epi32(mk[g], _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8,
		    9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)rb));
		ix8[g][0] = _mm512_castsi512_si256(idx[g]);
		ix8[g][1] = _mm512_extracti64x4_epi64(idx[g], 1);
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
				prefetch16(wg, rb, (size_t)(b0 / 8 + sb) * 210, (size_t)(b0 / 8 + sb + 1) * 210, 1);
				__m512 d = half_lo(_mm512_srli_epi32(GATHER(idx[g], p + 206), 16));
				__m512i scw[4] = { GATHER(idx[g], p + 192), GATHER(idx[g], p + 196),
					GATHER(idx[g], p + 200), GATHER(idx[g], p + 204) };
#pragma GCC unroll 2
				for (int n = 0; n < 2; n++) {
					__m512i qh[8], ia[4][2][GV_MT];
#pragma GCC unroll 8
					for (int v = 0; v < 8; v++)
						qh[v] = mt > 1 ? GATHER(idx[g], p + 128 + 32 * n + 4 * v) :
						    _mm512_i32gather_epi64(ix8[g][v / 4],
						    (const void *)(p + 128 + 32 * n + 8 * (v % 4)), 1);
#pragma GCC unroll 2
					for (int half = 0; half < 2; half++) {
						__m512i ql[8];
#pragma GCC unroll 8
						for (int v = 0; v < 8; v++)
							ql[v] = mt > 1 ? GATHER(idx[g], p + 64 * n + 32 * half + 4 * v) :
							    _mm512_i32gather_epi64(ix8[g][v / 4],
							    (const void *)(p + 64 * n + 32 * half + 8 * (v % 4)), 1);
#pragma GCC unroll 2
						for (int nib = 0; nib < 2; nib++) {
							int s = half + 2 * nib, bb = sb * 8 + 4 * n + s;
							__m512i st[8];
#pragma GCC unroll 8
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
										if (mt > 1) {
											__m512i a = _mm512_set1_epi32(tp.corr[t][bb * 2 + h]);
#pragma GCC unroll 4
											for (int v = 0; v < 4; v++)
												a = _mm512_dpbusd_epi32(a, st[4 * h + v],
												    _mm512_set1_epi32(ld32(xb + 4 * (4 * h + v))));
											ia[s][h][t] = a;
											continue;
										}
										/* one token: st[4 * r + v] is qword v of rows
										 * 8r..8r+7 (half the gather loads), row i's sum
										 * in dwords 2i and 2i + 1 */
										__m512i a0 = _mm512_setzero_si512(), a1 = a0;
#pragma GCC unroll 2
										for (int v = 2 * h; v < 2 * h + 2; v++) {
											__m512i xv = _mm512_set1_epi64((long long)ld64(xb + 8 * v));
											a0 = _mm512_dpbusd_epi32(a0, st[v], xv);
											a1 = _mm512_dpbusd_epi32(a1, st[4 + v], xv);
										}
										ia[s][h][t] = _mm512_add_epi32(_mm512_set1_epi32(
										    tp.corr[t][bb * 2 + h]), _mm512_add_epi32(
										    _mm512_permutex2var_epi32(a0, ev, a1),
										    _mm512_permutex2var_epi32(a0, od, a1)));
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
GEMV_TYPE(gemv_q4_1, GGML_TYPE_Q4_1, 0, 1, 1)
GEMV_TYPE(gemv_q5_0, GGML_TYPE_Q5_0, 1, 1, 0)
GEMV_TYPE(gemv_q5_1, GGML_TYPE_Q5_1, 0, 1, 1)
GEMV_TYPE(gemv_q8_k, GGML_TYPE_Q8_K, 1, 1, 0)

typedef void (*gemv_fn)(const uint8_t *, size_t, int, int, const uint8_t *, size_t, int64_t,
    float *, int64_t);
T_VNNI int
gemv_vnni_run(int type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq,
    int m, float *y, int64_t ldy)
{
	gemv_fn gv = type == GGML_TYPE_Q8_0 ? gemv_q8_0 : type == GGML_TYPE_Q4_0 ? gemv_q4_0 :
	    type == GGML_TYPE_Q4_K ? gemv_q4_k : type == GGML_TYPE_Q5_K ? gemv_q5_k :
	    type == GGML_TYPE_Q6_K ? gemv_q6_k : type == GGML_TYPE_Q4_1 ? gemv_q4_1 :
	    type == GGML_TYPE_Q5_0 ? gemv_q5_0 : type == GGML_TYPE_Q5_1 ? gemv_q5_1 :
	    type == GGML_TYPE_Q8_K ? gemv_q8_k : NULL;
	size_t rb = qp_row_bytes(type, k), ldx = qact_row_bytes(k);

	if (gv == NULL || m > GV_MT)
		return 0;
	for (int64_t r = r0; r < r1; r += QP_ROWS)
		gv((const uint8_t *)w + (size_t)r * rb, rb, r1 - r < QP_ROWS ? (int)(r1 - r) : QP_ROWS,
		    m, xq, ldx, k, y + r, ldy);
	return 1;
}

#endif
