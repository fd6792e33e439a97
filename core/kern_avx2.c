/* kern_avx2.c - AVX2+FMA matmul kernels for CPUs without AVX-512 (F32 directly, F16 via F16C,
 * BF16 by widening to float32). Compiled for that target per function, called only after the
 * run-time check in cpu.c. Each output is one FMA chain per 8 lanes over k in order, then a
 * fixed horizontal sum: the same for a token whatever other tokens share its batch. */
#include "core/kern.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "core/kern_walk.h"

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))

/* RN weight rows x MT tokens of 8-lane accumulators (12) + MT token loads + one weight load
 * fill the 16 ymm registers;
 * KB bounds the columns of a tile (partials over k blocks are added into y in k order), MB
 * the tokens sharing one pass over the weights. */
enum { RN = 4, MT = 3, MB = 64, KB = 1024 };

T_AVX2 static inline __attribute__((always_inline)) __m256
load_f32(const void *p, int64_t i)
{
	return _mm256_loadu_ps((const float *)p + i);
}

T_AVX2 static inline __attribute__((always_inline)) __m256
load_f16(const void *p, int64_t i)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
}

T_AVX2 static inline __attribute__((always_inline)) __m256
load_bf16(const void *p, int64_t i)
{
	__m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
	return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

T_AVX2 static inline __attribute__((always_inline)) float
hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* One tile: rows [0, rn) of w (element stride esz handled by LOAD) against mt tokens. */
#define TILE(NAME, LOAD, ETYPE) \
T_AVX2 static inline __attribute__((always_inline)) void \
NAME(const ETYPE *w, int64_t ldw, int rn, const float *x, int64_t ldx, const int mt, \
    int64_t kn, float *y, int64_t ldy, int add, const int last) \
{ \
	__m256 acc[RN][MT]; \
	(void)last;	/* the walk's per-file argument: nothing here */ \
	_Pragma("GCC unroll 4") \
	for (int r = 0; r < RN; r++) \
		_Pragma("GCC unroll 3") \
		for (int t = 0; t < MT; t++) \
			acc[r][t] = _mm256_setzero_ps(); \
	for (int64_t k = 0; k < kn; k += 8) { \
		__m256 xv[MT]; \
		_Pragma("GCC unroll 3") \
		for (int t = 0; t < MT; t++) \
			if (t < mt) \
				xv[t] = _mm256_loadu_ps(x + t * ldx + k); \
		_Pragma("GCC unroll 4") \
		for (int r = 0; r < RN; r++) { \
			__m256 wv = LOAD(w + (r < rn ? r : 0) * ldw, k); \
			_Pragma("GCC unroll 3") \
			for (int t = 0; t < MT; t++) \
				if (t < mt) \
					acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]); \
		} \
	} \
	_Pragma("GCC unroll 4") \
	for (int r = 0; r < RN; r++) \
		_Pragma("GCC unroll 3") \
		for (int t = 0; t < MT; t++) \
			if (t < mt && r < rn) { \
				float s = hsum(acc[r][t]); \
				y[t * ldy + r] = add ? y[t * ldy + r] + s : s; \
			} \
}

TILE(tile_f32, load_f32, float)
TILE(tile_f16, load_f16, uint16_t)
TILE(tile_bf16, load_bf16, uint16_t)
KERN_GEMM(kern_f32_avx2, T_AVX2, float, float, KB, tile_f32, 0, KERN_TAIL3)
KERN_GEMM(kern_f16_avx2, T_AVX2, uint16_t, float, KB, tile_f16, 0, KERN_TAIL3)
KERN_GEMM(kern_bf16_avx2, T_AVX2, uint16_t, float, KB, tile_bf16, 0, KERN_TAIL3)

#else	/* not x86-64 with GCC-compatible intrinsics: never called (cpu.c reports generic) */

void kern_bf16_avx2(const uint16_t *w, int64_t k, int64_t r0, int64_t r1, const float *x,
    int m, float *y, int64_t ldy) { (void)w; (void)k; (void)r0; (void)r1; (void)x; (void)m; (void)y; (void)ldy; }
void kern_f16_avx2(const uint16_t *w, int64_t k, int64_t r0, int64_t r1, const float *x,
    int m, float *y, int64_t ldy) { (void)w; (void)k; (void)r0; (void)r1; (void)x; (void)m; (void)y; (void)ldy; }
void kern_f32_avx2(const float *w, int64_t k, int64_t r0, int64_t r1, const float *x,
    int m, float *y, int64_t ldy) { (void)w; (void)k; (void)r0; (void)r1; (void)x; (void)m; (void)y; (void)ldy; }

#endif
