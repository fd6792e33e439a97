/* vision_attn.c - the vision tower's self-attention (every token of every tile against every
 * token, bidirectional) as blocked products per head and block of VA_MQ query rows:
 * S = scale Q K^T over all keys in register tiles, a softmax per row, then O = P V in
 * register tiles. Each score is one FMA chain over the head dimension and each output one
 * FMA chain over the keys in order, exactly as kern_attn_row_avx512 sums them, and the
 * softmax is its kern_softmax_avx512: every bit equals the row kernel's, so the result does
 * not depend on the blocking, the thread count or the other rows. The gain is reuse: a key or
 * value vector loaded once serves a whole register tile of query rows instead of one.
 * Without AVX-512 (or a head size not a multiple of 16) each row runs through attn_row. */
#include "core/vision_attn.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/kern.h"
#include "core/ops.h"
#include "core/pool.h"

/* query rows per work item: a multiple of every register tile's row count (12, 8, 6, 4) */
enum { VA_MQ = 24, VA_KC = 64 };	/* KC: keys per pass of P V (a V block in L1) */

struct vattn {
	int T, D, heads, hd, nthreads;
	/* per head: the keys transposed, (hd, T) for attn_row, or for the tiles in panels of 16
	 * keys, (T / 16, hd, 16), so that a tile's keys stream from one block; the values
	 * (T, hd); and the same for the valid tokens only */
	float *kt, *vp, *ktv, *vpv;
	int *rows;		/* valid rows, then invalid rows */
	float *scr;		/* per thread: Q block, O block (VA_MQ x hd), scores (VA_MQ x T) */
	size_t scr_n;
	/* the current call */
	const float *q, *k, *v;
	const uint8_t *valid;
	float *att;
	int nv;
	float scale;
	int simd;
	atomic_int next;
};

struct vattn *
vattn_new(int T, int D, int heads, int n_threads)
{
	struct vattn *A = calloc(1, sizeof(*A));
	size_t TD = (size_t)T * D;

	if (A == NULL)
		return NULL;
	A->T = T, A->D = D, A->heads = heads, A->hd = D / heads, A->nthreads = n_threads;
	A->scr_n = (size_t)VA_MQ * (2 * (size_t)A->hd + (size_t)T);
	size_t TDp = (size_t)(T + 15) / 16 * 16 * D;	/* panels padded to 16 keys */

	A->kt = malloc(TDp * sizeof(float));
	A->vp = malloc(TD * sizeof(float));
	A->ktv = malloc(TDp * sizeof(float));
	A->vpv = malloc(TD * sizeof(float));
	A->rows = malloc((size_t)T * sizeof(int));
	A->scr = malloc((size_t)n_threads * A->scr_n * sizeof(float));
	if (A->kt == NULL || A->vp == NULL || A->ktv == NULL || A->vpv == NULL || A->rows == NULL ||
	    A->scr == NULL) {
		vattn_free(A);
		return NULL;
	}
	return A;
}

void
vattn_free(struct vattn *A)
{
	if (A == NULL)
		return;
	free(A->kt); free(A->vp); free(A->ktv); free(A->vpv); free(A->rows); free(A->scr);
	free(A);
}

/* key j's column c of head h: transposed (hd, n) per head, or in panels (n / 16, hd, 16) */
static inline size_t
kt_at(const struct vattn *A, int n, int h, int j, int c)
{
	if (!A->simd)
		return ((size_t)h * A->hd + c) * n + j;
	size_t np = (size_t)(n + 15) / 16;
	return (((size_t)h * np + j / 16) * A->hd + c) * 16 + j % 16;
}

/* Keys transposed and values per head, for all tokens and for the valid ones; each thread
 * takes a range of tokens (a 16-token block of k rows is read once for all its columns). */
static void
do_pack(void *arg, int ith, int nth)
{
	struct vattn *A = arg;
	int T = A->T, D = A->D, hd = A->hd, nv = A->nv;
	int b0 = (T + 15) / 16 * ith / nth * 16, b1 = (T + 15) / 16 * (ith + 1) / nth * 16;

	for (int j0 = b0; j0 < b1 && j0 < T; j0 += 16) {
		int j1 = j0 + 16 < T ? j0 + 16 : T;
		for (int h = 0; h < A->heads; h++)
			for (int c = 0; c < hd; c++)
				for (int j = j0; j < j1; j++)
					A->kt[kt_at(A, T, h, j, c)] = A->k[(size_t)j * D + h * hd + c];
		for (int j = j0; j < j1; j++)
			for (int h = 0; h < A->heads; h++)
				memcpy(A->vp + ((size_t)h * T + j) * hd, A->v + (size_t)j * D + h * hd,
				    (size_t)hd * sizeof(float));
	}
	if (nv == T)
		return;
	/* rows[0, nv) are the valid tokens: key jv of the packed set is token rows[jv] */
	b0 = nv * ith / nth, b1 = nv * (ith + 1) / nth;
	for (int jv = b0; jv < b1; jv++) {
		const float *kr = A->k + (size_t)A->rows[jv] * D;
		for (int h = 0; h < A->heads; h++)
			for (int c = 0; c < hd; c++)
				A->ktv[kt_at(A, nv, h, jv, c)] = kr[h * hd + c];
		for (int h = 0; h < A->heads; h++)
			memcpy(A->vpv + ((size_t)h * nv + jv) * hd, A->v + (size_t)A->rows[jv] * D + h * hd,
			    (size_t)hd * sizeof(float));
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define T_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

/* S rows [0, 8) x keys [j, j + 48): q (8, hd) packed, kp the keys' panels (n / 16, hd, 16),
 * j a multiple of 48; scores scaled as kern_attn_row_avx512 scales them */
T_AVX512 static void
qk_tile(const float *q, int hd, const float *kp, int j, int n, float scale, float *s,
    int64_t lds)
{
	enum { MR = 8, NB = 3 };
	__mmask16 m[NB];
	__m512 a[MR][NB];

	for (int b = 0; b < NB; b++) {
		int left = n - j - 16 * b;
		m[b] = left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
	}
#pragma GCC unroll 8
	for (int r = 0; r < MR; r++)
#pragma GCC unroll 3
		for (int b = 0; b < NB; b++)
			a[r][b] = _mm512_setzero_ps();
	/* (a masked-off panel past n is never read: masked loads do not fault) */
	const float *k0p = kp + (size_t)(j / 16) * hd * 16, *k1p = k0p + hd * 16, *k2p = k1p + hd * 16;
	for (int i = 0; i < hd; i++) {
		__m512 k0 = _mm512_maskz_loadu_ps(m[0], k0p + i * 16);
		__m512 k1 = _mm512_maskz_loadu_ps(m[1], k1p + i * 16);
		__m512 k2 = _mm512_maskz_loadu_ps(m[2], k2p + i * 16);
#pragma GCC unroll 8
		for (int r = 0; r < MR; r++) {
			__m512 qi = _mm512_set1_ps(q[r * hd + i]);
			a[r][0] = _mm512_fmadd_ps(qi, k0, a[r][0]);
			a[r][1] = _mm512_fmadd_ps(qi, k1, a[r][1]);
			a[r][2] = _mm512_fmadd_ps(qi, k2, a[r][2]);
		}
	}
	__m512 sc = _mm512_set1_ps(scale);
#pragma GCC unroll 8
	for (int r = 0; r < MR; r++)
#pragma GCC unroll 3
		for (int b = 0; b < NB; b++)
			_mm512_mask_storeu_ps(s + r * lds + j + 16 * b, m[b], _mm512_mul_ps(a[r][b], sc));
}

/* O rows [0, MR) x columns [c, c + 16 NV) += P rows x keys [j0, j1) V; o (MR, hd) packed,
 * p (MR, lds), v (n, hd). The accumulators start from O (zeroed before key 0), so every output
 * is one FMA chain over the keys in order. One function per shape: with the sizes as
 * constants of its own (not an inlined parameter) GCC keeps the tile in registers. */
#define PV_TILE(MR, NV)								\
T_AVX512 static void								\
pv_tile_##MR##x##NV(const float *p, int64_t lds, const float *v, int hd, int c, int j0,	\
    int j1, float *o)								\
{										\
	__m512 a[MR][NV];							\
	_Pragma("GCC unroll 12")						\
	for (int r = 0; r < MR; r++)						\
		_Pragma("GCC unroll 5")						\
		for (int b = 0; b < NV; b++)					\
			a[r][b] = _mm512_loadu_ps(o + r * hd + c + 16 * b);	\
	for (int j = j0; j < j1; j++) {						\
		const float *vj = v + (int64_t)j * hd + c;			\
		__m512 vb[NV];							\
		_Pragma("GCC unroll 5")						\
		for (int b = 0; b < NV; b++)					\
			vb[b] = _mm512_loadu_ps(vj + 16 * b);			\
		_Pragma("GCC unroll 12")					\
		for (int r = 0; r < MR; r++) {					\
			__m512 pr = _mm512_set1_ps(p[r * lds + j]);		\
			_Pragma("GCC unroll 5")					\
			for (int b = 0; b < NV; b++)				\
				a[r][b] = _mm512_fmadd_ps(pr, vb[b], a[r][b]);	\
		}								\
	}									\
	_Pragma("GCC unroll 12")						\
	for (int r = 0; r < MR; r++)						\
		_Pragma("GCC unroll 5")						\
		for (int b = 0; b < NV; b++)					\
			_mm512_storeu_ps(o + r * hd + c + 16 * b, a[r][b]);	\
}
PV_TILE(4, 5)
PV_TILE(6, 4)
PV_TILE(8, 3)
PV_TILE(12, 2)
PV_TILE(8, 1)

/* the VA_MQ rows of one block: q (VA_MQ, hd) packed -> o (VA_MQ, hd) */
T_AVX512 static void
block_avx512(const float *q, int hd, const float *kt, const float *v, int n, float scale,
    float *s, int64_t lds, float *o)
{
	for (int j = 0; j < n; j += 48)
		for (int r = 0; r < VA_MQ; r += 8)
			qk_tile(q + r * hd, hd, kt, j, n, scale, s + r * lds, lds);
	for (int r = 0; r < VA_MQ; r++)
		kern_softmax_avx512(s + r * lds, n);
	memset(o, 0, (size_t)VA_MQ * hd * sizeof(float));
	for (int j0 = 0; j0 < n; j0 += VA_KC) {
		int j1 = j0 + VA_KC < n ? j0 + VA_KC : n;
		for (int c = 0; c < hd; ) {
			int nv = (hd - c) / 16 < 5 ? (hd - c) / 16 : 5;
			for (int r = 0; r < VA_MQ; ) {
				const float *p = s + r * lds;
				float *orow = o + r * hd;
				switch (nv) {
				case 5: pv_tile_4x5(p, lds, v, hd, c, j0, j1, orow); r += 4; break;
				case 4: pv_tile_6x4(p, lds, v, hd, c, j0, j1, orow); r += 6; break;
				case 3: pv_tile_8x3(p, lds, v, hd, c, j0, j1, orow); r += 8; break;
				case 2: pv_tile_12x2(p, lds, v, hd, c, j0, j1, orow); r += 12; break;
				default: pv_tile_8x1(p, lds, v, hd, c, j0, j1, orow); r += 8; break;
				}
			}
			c += 16 * nv;
		}
	}
}
#else
static void
block_avx512(const float *q, int hd, const float *kt, const float *v, int n, float scale,
    float *s, int64_t lds, float *o)
{
	(void)q; (void)hd; (void)kt; (void)v; (void)n; (void)scale; (void)s; (void)lds; (void)o;
}
#endif

/* work items: (head, block of VA_MQ rows of one class: valid rows see all T keys, invalid
 * ones the nv valid keys) */
static void
do_attn(void *arg, int ith, int nth)
{
	struct vattn *A = arg;
	int T = A->T, D = A->D, hd = A->hd, nv = A->nv;
	int bv = (nv + VA_MQ - 1) / VA_MQ, bi = (T - nv + VA_MQ - 1) / VA_MQ;
	float *qb = A->scr + (size_t)ith * A->scr_n, *ob = qb + (size_t)VA_MQ * hd;
	float *s = ob + (size_t)VA_MQ * hd;

	(void)nth;
	for (;;) {
		int item = atomic_fetch_add(&A->next, 1);
		if (item >= (bv + bi) * A->heads)
			return;
		int h = item / (bv + bi), b = item % (bv + bi), inv = b >= bv;
		int r0 = inv ? nv + (b - bv) * VA_MQ : b * VA_MQ, end = inv ? T : nv;
		int cnt = end - r0 < VA_MQ ? end - r0 : VA_MQ, n = inv ? nv : T;
		const float *kt = inv ? A->ktv + kt_at(A, nv, h, 0, 0) : A->kt + kt_at(A, T, h, 0, 0);
		const float *v = inv ? A->vpv + (size_t)h * nv * hd : A->vp + (size_t)h * T * hd;
		if (!A->simd) {
			for (int r = 0; r < cnt; r++) {
				int row = A->rows[r0 + r];
				attn_row(A->q + (size_t)row * D + h * hd, kt, n, v, hd, n, hd, A->scale, s,
				    A->att + (size_t)row * D + h * hd);
			}
			continue;
		}
		/* a short block's missing rows are zero queries: computed, never stored */
		for (int r = 0; r < VA_MQ; r++)
			if (r < cnt)
				memcpy(qb + r * hd, A->q + (size_t)A->rows[r0 + r] * D + h * hd,
				    (size_t)hd * sizeof(float));
			else
				memset(qb + r * hd, 0, (size_t)hd * sizeof(float));
		block_avx512(qb, hd, kt, v, n, A->scale, s, T, ob);
		for (int r = 0; r < cnt; r++)
			memcpy(A->att + (size_t)A->rows[r0 + r] * D + h * hd, ob + r * hd,
			    (size_t)hd * sizeof(float));
	}
}

void
vattn_run(struct vattn *A, struct pool *pool, const float *q, const float *k, const float *v,
    const uint8_t *valid, float scale, float *att)
{
	int nv = 0, ni = 0;

	for (int i = 0; i < A->T; i++)
		nv += valid[i] != 0;
	for (int i = 0; i < A->T; i++)
		A->rows[valid[i] ? ni++ : nv + i - ni] = i;
	A->q = q, A->k = k, A->v = v, A->valid = valid, A->att = att, A->nv = nv;
	A->scale = scale;
	A->simd = kern_set() >= KERN_AVX512 && A->hd % 16 == 0;
	pool_run(pool, do_pack, A);
	atomic_store(&A->next, 0);
	pool_run(pool, do_attn, A);
}
