/* kern_x86.c - AVX-512 matmul kernels (BF16 dot products with avx512_bf16, F16 via F16C
 * conversion and FP32 FMA). Compiled for those targets per function, called only after a
 * run-time CPU check (cpu.c), so the binary still runs on any x86-64. */
#include "core/kern.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <math.h>

#include "core/kern_walk.h"

#define T_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define T_F16 __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))

/* Blocking: a tile of RN weight rows stays in L1 while MT-token slices of a token block
 * (MB tokens x KB columns, ~256-512 KB) stream from L2. KB bounds that block for long rows
 * (ffn_down), partial sums over k blocks are added into Y. */

enum { RN = 4, MT = 6, MB = 96, KB_BF16 = 2048, KB_F16 = 1024 };

/* A tile's RN x MT accumulators, zeroed; then each one's sum into Y[t][r] (added to it for
 * k blocks after the first). Macros, not functions: the tiles' code stays what it was with
 * these loops written out (an inlined helper changes their register allocation). */
#define ACC_ZERO(acc) do { \
	_Pragma("GCC unroll 4") \
	for (int r_ = 0; r_ < RN; r_++) \
		_Pragma("GCC unroll 6") \
		for (int t_ = 0; t_ < MT; t_++) \
			(acc)[r_][t_] = _mm512_setzero_ps(); \
} while (0)
#define ACC_STORE(acc, rn, mt, y, ldy, add) do { \
	_Pragma("GCC unroll 4") \
	for (int r_ = 0; r_ < RN; r_++) \
		_Pragma("GCC unroll 6") \
		for (int t_ = 0; t_ < MT; t_++) \
			if (t_ < (mt) && r_ < (rn)) { \
				float s_ = _mm512_reduce_add_ps((acc)[r_][t_]); \
				(y)[t_ * (ldy) + r_] = (add) ? (y)[t_ * (ldy) + r_] + s_ : s_; \
			} \
} while (0)

T_BF16 static inline __attribute__((always_inline)) void
tile_bf16(const uint16_t *w, int64_t ldw, int rn, const uint16_t *x, int64_t ldx, const int mt,
    int64_t kn, float *y, int64_t ldy, int add, const int pf)
{
	__m512 acc[RN][MT];

	ACC_ZERO(acc);
	for (int64_t k = 0; k < kn; k += 32) {
		__m512bh wv[RN], xv[MT];
#pragma GCC unroll 4
		for (int r = 0; r < RN; r++) {
			wv[r] = (__m512bh)_mm512_loadu_si512(w + (r < rn ? r : 0) * ldw + k);
			/* the next tile's rows, a tile ahead: a row of 2048 BF16 is one 4 KiB page,
			 * where the hardware prefetcher stops, and decode (m <= 4) has too little
			 * compute per byte to hide the misses (1.36x faster at m = 4 on mmapped
			 * weights); only the first token tile of a row tile issues them */
			if (pf)
				_mm_prefetch((const char *)(w + (RN + r) * ldw + k), _MM_HINT_T0);
		}
#pragma GCC unroll 6
		for (int t = 0; t < MT; t++)
			if (t < mt)
				xv[t] = (__m512bh)_mm512_loadu_si512(x + t * ldx + k);
#pragma GCC unroll 4
		for (int r = 0; r < RN; r++)
#pragma GCC unroll 6
			for (int t = 0; t < MT; t++)
				if (t < mt)
					acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], xv[t]);
	}
	ACC_STORE(acc, rn, mt, y, ldy, add);
}

/* F16 weights (half: widened with F16C) or F32 weights against F32 tokens, FP32 FMA */
T_F16 static inline __attribute__((always_inline)) void
tile_fp(const void *w, int64_t ldw, int rn, const float *x, int64_t ldx, const int mt,
    int64_t kn, float *y, int64_t ldy, int add, const int half)
{
	__m512 acc[RN][MT];

	ACC_ZERO(acc);
	for (int64_t k = 0; k < kn; k += 16) {
		__m512 wv[RN], xv[MT];
#pragma GCC unroll 4
		for (int r = 0; r < RN; r++)
			wv[r] = half ?
			    _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w +
			    (r < rn ? r : 0) * ldw + k))) :
			    _mm512_loadu_ps((const float *)w + (r < rn ? r : 0) * ldw + k);
#pragma GCC unroll 6
		for (int t = 0; t < MT; t++)
			if (t < mt)
				xv[t] = _mm512_loadu_ps(x + t * ldx + k);
#pragma GCC unroll 4
		for (int r = 0; r < RN; r++)
#pragma GCC unroll 6
			for (int t = 0; t < MT; t++)
				if (t < mt)
					acc[r][t] = _mm512_fmadd_ps(wv[r], xv[t], acc[r][t]);
	}
	ACC_STORE(acc, rn, mt, y, ldy, add);
}

/* LAST: for BF16 whether to prefetch the next row tile (from the first token tile of each row
 * tile); for F16 and F32 (one tile) whether the weights are F16 */
KERN_GEMM(kern_bf16_avx512, T_BF16, uint16_t, uint16_t, KB_BF16, tile_bf16, t == t0, KERN_TAIL6)
KERN_GEMM(kern_f16_avx512, T_F16, uint16_t, float, KB_F16, tile_fp, 1, KERN_TAIL6)
KERN_GEMM(kern_f32_avx512, T_F16, float, float, KB_F16, tile_fp, 0, KERN_TAIL6)

T_BF16 void
kern_to_bf16_avx512(const float *x, uint16_t *out, int64_t n)
{
	int64_t i = 0;

	for (; i + 32 <= n; i += 32) {
		__m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
		_mm512_storeu_si512(out + i, (__m512i)v);
	}
	for (; i < n; i++) {
		__m512bh v = _mm512_cvtne2ps_pbh(_mm512_setzero_ps(), _mm512_set1_ps(x[i]));
		out[i] = (uint16_t)_mm_extract_epi16(_mm512_castsi512_si128((__m512i)v), 0);
	}
}

#define T_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

/* exp(x) for a vector: x = n ln2 + r with |r| <= ln2/2, degree-7 polynomial for e^r,
 * n folded into the exponent. Relative error ~1e-7 over the float range. */
T_AVX512 static inline __m512
vexp(__m512 x)
{
	const __m512 lo = _mm512_set1_ps(-87.3f), hi = _mm512_set1_ps(88.7f);
	x = _mm512_max_ps(_mm512_min_ps(x, hi), lo);
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
	    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.0f / 5040);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	return _mm512_scalef_ps(p, n);
}

T_AVX512 void
kern_silu_mul_avx512(float *g, const float *u, int64_t n)
{
	int64_t i = 0;
	const __m512 one = _mm512_set1_ps(1.0f);

	for (; i + 16 <= n; i += 16) {
		__m512 x = _mm512_loadu_ps(g + i);
		__m512 s = _mm512_div_ps(x, _mm512_add_ps(one, vexp(_mm512_sub_ps(_mm512_setzero_ps(), x))));
		_mm512_storeu_ps(g + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
	}
	if (i < n) {
		__mmask16 k = (__mmask16)((1u << (n - i)) - 1);
		__m512 x = _mm512_maskz_loadu_ps(k, g + i);
		__m512 s = _mm512_div_ps(x, _mm512_add_ps(one, vexp(_mm512_sub_ps(_mm512_setzero_ps(), x))));
		_mm512_mask_storeu_ps(g + i, k, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, u + i)));
	}
}

T_AVX512 void
kern_softmax_avx512(float *x, int n)
{
	__m512 mx = _mm512_set1_ps(-INFINITY), sum = _mm512_setzero_ps();
	int i;

	for (i = 0; i + 16 <= n; i += 16)
		mx = _mm512_max_ps(mx, _mm512_loadu_ps(x + i));
	float m = _mm512_reduce_max_ps(mx);
	for (; i < n; i++)
		m = x[i] > m ? x[i] : m;
	__m512 vm = _mm512_set1_ps(m);
	for (i = 0; i + 16 <= n; i += 16) {
		__m512 ev = vexp(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
		_mm512_storeu_ps(x + i, ev);
		sum = _mm512_add_ps(sum, ev);
	}
	if (i < n) {
		__mmask16 k = (__mmask16)((1u << (n - i)) - 1);
		__m512 ev = vexp(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm));
		ev = _mm512_maskz_mov_ps(k, ev);
		_mm512_mask_storeu_ps(x + i, k, ev);
		sum = _mm512_add_ps(sum, ev);
	}
	__m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
	for (i = 0; i + 16 <= n; i += 16)
		_mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
	if (i < n) {
		__mmask16 k = (__mmask16)((1u << (n - i)) - 1);
		_mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
	}
}

/* One query row against keys 0..n-1 of one kv head. kt holds the keys transposed (row i is
 * dimension i of every position, stride ldk), so 16 scores come from one FMA chain with no
 * horizontal sums; v holds one row per position (stride ldv). Every sum runs in a fixed order
 * that depends only on n and d, never on how rows were batched. */
T_AVX512 void
kern_attn_row_avx512(const float *q, const float *kt, int64_t ldk, const float *v, int64_t ldv,
    int n, int d, float scale, float *s, float *out)
{
	int j = 0;

	/* four blocks of 16 keys per pass: independent FMA chains hide the FMA latency */
	for (; j < n; j += 64) {
		__mmask16 m[4];
		__m512 a[4];
		for (int b = 0; b < 4; b++) {
			int left = n - j - 16 * b;
			m[b] = left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
			a[b] = _mm512_setzero_ps();
		}
		const float *kb = kt + j;
		for (int i = 0; i < d; i++, kb += ldk) {
			__m512 qi = _mm512_set1_ps(q[i]);
			a[0] = _mm512_fmadd_ps(qi, _mm512_maskz_loadu_ps(m[0], kb), a[0]);
			a[1] = _mm512_fmadd_ps(qi, _mm512_maskz_loadu_ps(m[1], kb + 16), a[1]);
			a[2] = _mm512_fmadd_ps(qi, _mm512_maskz_loadu_ps(m[2], kb + 32), a[2]);
			a[3] = _mm512_fmadd_ps(qi, _mm512_maskz_loadu_ps(m[3], kb + 48), a[3]);
		}
		for (int b = 0; b < 4; b++)
			_mm512_mask_storeu_ps(s + j + 16 * b, m[b], _mm512_mul_ps(a[b], _mm512_set1_ps(scale)));
	}
	kern_softmax_avx512(s, n);
	for (int i = 0; i < d; i += 64) {
		__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
		int w = d - i;	/* 16, 32, 48 or 64 columns in this pass */
		for (j = 0; j < n; j++) {
			const float *vj = v + (int64_t)j * ldv + i;
			__m512 p = _mm512_set1_ps(s[j]);
			a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vj), a0);
			if (w > 16)
				a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vj + 16), a1);
			if (w > 32)
				a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vj + 32), a2);
			if (w > 48)
				a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vj + 48), a3);
		}
		_mm512_storeu_ps(out + i, a0);
		if (w > 16)
			_mm512_storeu_ps(out + i + 16, a1);
		if (w > 32)
			_mm512_storeu_ps(out + i + 32, a2);
		if (w > 48)
			_mm512_storeu_ps(out + i + 48, a3);
	}
}

/* kern_attn_row_avx512 for NH heads at once: each key and value vector is loaded once and
 * used by every head; each head keeps its own accumulators, updated in the same order as
 * kern_attn_row_avx512's, so its bits are that function's. */
T_AVX512 static inline __attribute__((always_inline)) void
attn_heads(const int NH, const float *q, int64_t ldq, const float *kt, int64_t ldk,
    const float *v, int64_t ldv, int n, int d, float scale, float *s, int64_t lds, float *out,
    int64_t ldo)
{
	for (int j = 0; j < n; j += 64) {
		__mmask16 m[4];
		__m512 a[4][4];
		for (int b = 0; b < 4; b++) {
			int left = n - j - 16 * b;
			m[b] = left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
#pragma GCC unroll 4
			for (int h = 0; h < NH; h++)
				a[h][b] = _mm512_setzero_ps();
		}
		const float *kb = kt + j;
		for (int i = 0; i < d; i++, kb += ldk) {
			__m512 k0 = _mm512_maskz_loadu_ps(m[0], kb), k1 = _mm512_maskz_loadu_ps(m[1], kb + 16);
			__m512 k2 = _mm512_maskz_loadu_ps(m[2], kb + 32), k3 = _mm512_maskz_loadu_ps(m[3], kb + 48);
#pragma GCC unroll 4
			for (int h = 0; h < NH; h++) {
				__m512 qi = _mm512_set1_ps(q[h * ldq + i]);
				a[h][0] = _mm512_fmadd_ps(qi, k0, a[h][0]);
				a[h][1] = _mm512_fmadd_ps(qi, k1, a[h][1]);
				a[h][2] = _mm512_fmadd_ps(qi, k2, a[h][2]);
				a[h][3] = _mm512_fmadd_ps(qi, k3, a[h][3]);
			}
		}
#pragma GCC unroll 4
		for (int h = 0; h < NH; h++)
			for (int b = 0; b < 4; b++)
				_mm512_mask_storeu_ps(s + h * lds + j + 16 * b, m[b],
				    _mm512_mul_ps(a[h][b], _mm512_set1_ps(scale)));
	}
	for (int h = 0; h < NH; h++)
		kern_softmax_avx512(s + h * lds, n);
	for (int i = 0; i < d; i += 64) {
		__m512 a[4][4];
		int w = d - i;	/* 16, 32, 48 or 64 columns in this pass */
#pragma GCC unroll 4
		for (int h = 0; h < NH; h++)
			for (int c = 0; c < 4; c++)
				a[h][c] = _mm512_setzero_ps();
		for (int j = 0; j < n; j++) {
			const float *vj = v + (int64_t)j * ldv + i;
			__m512 v0 = _mm512_loadu_ps(vj);
			__m512 v1 = w > 16 ? _mm512_loadu_ps(vj + 16) : v0;
			__m512 v2 = w > 32 ? _mm512_loadu_ps(vj + 32) : v0;
			__m512 v3 = w > 48 ? _mm512_loadu_ps(vj + 48) : v0;
#pragma GCC unroll 4
			for (int h = 0; h < NH; h++) {
				__m512 p = _mm512_set1_ps(s[h * lds + j]);
				a[h][0] = _mm512_fmadd_ps(p, v0, a[h][0]);
				a[h][1] = _mm512_fmadd_ps(p, v1, a[h][1]);
				a[h][2] = _mm512_fmadd_ps(p, v2, a[h][2]);
				a[h][3] = _mm512_fmadd_ps(p, v3, a[h][3]);
			}
		}
#pragma GCC unroll 4
		for (int h = 0; h < NH; h++) {
			float *o = out + h * ldo + i;
			_mm512_storeu_ps(o, a[h][0]);
			if (w > 16)
				_mm512_storeu_ps(o + 16, a[h][1]);
			if (w > 32)
				_mm512_storeu_ps(o + 32, a[h][2]);
			if (w > 48)
				_mm512_storeu_ps(o + 48, a[h][3]);
		}
	}
}

T_AVX512 void
kern_attn_rows_avx512(int nh, const float *q, int64_t ldq, const float *kt, int64_t ldk,
    const float *v, int64_t ldv, int n, int d, float scale, float *s, int64_t lds, float *out,
    int64_t ldo)
{
	switch (nh) {
	case 4: attn_heads(4, q, ldq, kt, ldk, v, ldv, n, d, scale, s, lds, out, ldo); break;
	case 3: attn_heads(3, q, ldq, kt, ldk, v, ldv, n, d, scale, s, lds, out, ldo); break;
	case 2: attn_heads(2, q, ldq, kt, ldk, v, ldv, n, d, scale, s, lds, out, ldo); break;
	case 1: attn_heads(1, q, ldq, kt, ldk, v, ldv, n, d, scale, s, lds, out, ldo); break;
	default: break;
	}
}

#else	/* not x86-64 with GCC-compatible intrinsics: the portable kernels run instead */

void kern_bf16_avx512(const uint16_t *w, int64_t k, int64_t r0, int64_t r1, const uint16_t *xb,
    int m, float *y, int64_t ldy) { (void)w; (void)k; (void)r0; (void)r1; (void)xb; (void)m; (void)y; (void)ldy; }
void kern_f16_avx512(const uint16_t *w, int64_t k, int64_t r0, int64_t r1, const float *x,
    int m, float *y, int64_t ldy) { (void)w; (void)k; (void)r0; (void)r1; (void)x; (void)m; (void)y; (void)ldy; }
void kern_to_bf16_avx512(const float *x, uint16_t *out, int64_t n) { (void)x; (void)out; (void)n; }
void kern_silu_mul_avx512(float *g, const float *u, int64_t n) { (void)g; (void)u; (void)n; }
void kern_softmax_avx512(float *x, int n) { (void)x; (void)n; }
void kern_f32_avx512(const float *w, int64_t k, int64_t r0, int64_t r1, const float *x, int m,
    float *y, int64_t ldy) { (void)w; (void)k; (void)r0; (void)r1; (void)x; (void)m; (void)y; (void)ldy; }
void kern_attn_row_avx512(const float *q, const float *kt, int64_t ldk, const float *v, int64_t ldv,
    int n, int d, float scale, float *s, float *out) { (void)q; (void)kt; (void)ldk; (void)v; (void)ldv; (void)n; (void)d; (void)scale; (void)s; (void)out; }
void kern_attn_rows_avx512(int nh, const float *q, int64_t ldq, const float *kt, int64_t ldk,
    const float *v, int64_t ldv, int n, int d, float scale, float *s, int64_t lds, float *out,
    int64_t ldo) { (void)nh; (void)q; (void)ldq; (void)kt; (void)ldk; (void)v; (void)ldv; (void)n; (void)d; (void)scale; (void)s; (void)lds; (void)out; (void)ldo; }

#endif
