/* kern_q_x86.h - what the AVX-512 VNNI quantized kernels share (private to kern_q_x86.c
 * and kern_q_gemv.c, x86-64 GCC only): 16-row SIMD unpacking of the hot types into the
 * broadcast layout of kern_q_int.h, the activation terms, and the decode entry. */
#ifndef GUARDD_KERN_Q_X86_H
#define GUARDD_KERN_Q_X86_H

#include <immintrin.h>
#include <string.h>

#include "core/gguf.h"
#include "core/kern_q_int.h"

#define T_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

static inline int32_t
ld32(const uint8_t *p)
{
	int32_t v;

	memcpy(&v, p, 4);
	return v;
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
	case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: {
		int hasm = type == GGML_TYPE_Q4_1 || type == GGML_TYPE_Q5_1;
		int five = type == GGML_TYPE_Q5_0 || type == GGML_TYPE_Q5_1;
		p = w + b * (18 + 2 * hasm + 4 * five);
		const uint8_t *qs = p + 2 + 2 * hasm + 4 * five;
		for (int v = 0; v < 4; v++) {
			__m512i g = GATHER(idx, qs + 4 * v);
			st[v] = _mm512_and_si512(g, lo4);
			st[v + 4] = _mm512_and_si512(_mm512_srli_epi32(g, 4), lo4);
		}
		if (five) {
			/* bits 4v..4v+3 of qh to bit 4 of the step's 4 bytes: times 1 + 2^7 + 2^14
			 * + 2^21 puts bit e at bit 8e (the copies do not overlap) */
			__m512i qh = GATHER(idx, p + 2 + 2 * hasm);
			for (int v = 0; v < 8; v++) {
				__m512i t = _mm512_and_si512(_mm512_srli_epi32(qh, 4 * v), _mm512_set1_epi32(15));
				t = _mm512_and_si512(_mm512_mullo_epi32(t, _mm512_set1_epi32(0x00204081)),
				    _mm512_set1_epi32(0x01010101));
				st[v] = _mm512_or_si512(st[v], _mm512_slli_epi32(t, 4));
			}
		}
		__m512i dd = GATHER(idx, p);
		ds[0] = half_lo(dd);
		if (hasm)
			*dm = half_lo(_mm512_srli_epi32(dd, 16));
		return 1;
	}
	case GGML_TYPE_Q8_K:
		p = w + b / 8 * 292;
		for (int v = 0; v < 8; v++)
			st[v] = _mm512_xor_si512(GATHER(idx, p + 4 + 32 * j + 4 * v),
			    _mm512_set1_epi8((char)0x80));
		ds[0] = _mm512_i32gather_ps(idx, (const void *)p, 1);
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

#pragma GCC unroll 8
	for (int i = 0; i < 8; i++) {
		const uint8_t *lo = p + (size_t)(i < n ? i : 0) * rb, *hi = p + (size_t)(i + 8 < n ? i + 8 : 0) * rb;
		z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(lo + 2))),
		    _mm256_loadu_si256((const __m256i *)(hi + 2)), 1);
	}
#pragma GCC unroll 4
	for (int i = 0; i < 8; i += 2) {
		t[i] = _mm512_unpacklo_epi32(z[i], z[i + 1]);
		t[i + 1] = _mm512_unpackhi_epi32(z[i], z[i + 1]);
	}
#pragma GCC unroll 2
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
#pragma GCC unroll 4
	for (int j = 0; j < 4; j++) {
		st[j] = _mm512_xor_si512(_mm512_permutex2var_epi64(u[j], lo, u[j + 4]), flip);
		st[j + 4] = _mm512_xor_si512(_mm512_permutex2var_epi64(u[j], hi, u[j + 4]), flip);
	}
	*ds = half_lo(GATHER(idx, p));
}

/* qp_prep, with Q6_K's 16-element activation sums by vpsadbw */
void prep_vnni(const struct qp_type *qt, const uint8_t *xq, size_t ldx, int64_t k, int mt,
    int64_t b0, int nb, struct qprep *tp);

/* Repacks rows [0, nrows) of blocks [b0, b0 + nb) into p (qp_pack's layout, values unsigned
 * as qp_type_get(type, 1) says); sgn: minus the type's offset instead, as signed bytes */
void pack_vnni(int type, int sgn, const uint8_t *w, size_t rb, int nrows, int64_t b0, int nb,
    struct qpack *p);

/* The decode product (m <= 4) for the types it has a path for; 0: not done, use the tiles */
int gemv_vnni_run(int type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq,
    int m, float *y, int64_t ldy);

#endif
