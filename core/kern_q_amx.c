/* kern_q_amx.c - prefill of quantized weights on AMX int8 tiles, used by kern_q_vnni for
 * whole groups of 16 tokens where kern_cpu_amx() proved the tiles run (cpu.c).
 *
 * One tdpbusd multiplies 16 weight rows x 32 bytes (tile A: one block of each row, values
 * unsigned as kern_q_int.h stores them) by 16 tokens' same block (tile B, the tokens' dwords
 * interleaved as the instruction wants), giving each (row, token) its exact int32 block dot.
 * The float steps after it are kern_q_int.h's, element by element, so every output has the
 * same bits as in the VNNI tiles and the decode path. Types with one scale group per block. */
#include "core/kern.h"

#if defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 11
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "core/kern_q_int.h"
#include "core/quant.h"

#define T_AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,amx-tile,amx-int8")))

struct tilecfg {
	uint8_t palette, start;
	uint8_t pad[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

/* the activation side of a call, built once: per group of 16 tokens and block, tile B
 * (8 rows: dword kk of the 16 tokens), the tokens' scales, offset terms and da * sa */
struct aside {
	uint8_t *b;
	float *da, *das;
	int32_t *corr;
};

T_AMX static int
aside_build(const struct qp_type *qt, const uint8_t *xq, size_t ldx, int64_t k, int ntg,
    struct aside *s)
{
	int64_t nbk = k / 32;
	size_t n = (size_t)ntg * (size_t)nbk;

	s->b = aligned_alloc(64, n * 512);
	s->da = aligned_alloc(64, n * 64);
	s->das = aligned_alloc(64, n * 64);
	s->corr = aligned_alloc(64, n * 64);
	if (s->b == NULL || s->da == NULL || s->das == NULL || s->corr == NULL)
		return -1;
	__m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
	    12, 13, 14, 15), _mm512_set1_epi32((int)ldx));
	for (int tg = 0; tg < ntg; tg++) {
		const uint8_t *x0 = xq + (size_t)tg * 16 * ldx;
		for (int64_t b = 0; b < nbk; b++) {
			size_t i = (size_t)tg * (size_t)nbk + (size_t)b;
			for (int kk = 0; kk < 8; kk++)
				_mm512_store_si512(s->b + i * 512 + kk * 64,
				    _mm512_i32gather_epi32(idx, x0 + b * 32 + 4 * kk, 1));
			__m512 da = _mm512_i32gather_ps(idx, qact_d(x0, k) + b, 1);
			/* 4 bytes ending with each token's sum (the row may end right after it) */
			__m512i sa = _mm512_srai_epi32(_mm512_i32gather_epi32(idx, qact_s(x0, k) + b - 1, 1), 16);
			_mm512_store_ps(s->da + i * 16, da);
			_mm512_store_ps(s->das + i * 16, _mm512_mul_ps(da, _mm512_cvtepi32_ps(sa)));
			_mm512_store_si512(s->corr + i * 16, _mm512_mullo_epi32(sa, _mm512_set1_epi32(-qt->off)));
		}
	}
	return 0;
}

static void
aside_free(struct aside *s)
{
	free(s->b);
	free(s->da);
	free(s->das);
	free(s->corr);
}

/* C tile g of (b, tg): the float steps for its 16 rows x 16 tokens into acc[row][token] */
T_AMX static inline __attribute__((always_inline)) void
epilogue(const int32_t *c, const float *ds, const float *dm, const float *da, const float *das,
    const int32_t *corr, int hasmin, int off, float *acc)
{
	__m512 vda = _mm512_load_ps(da), vdas = _mm512_load_ps(das);
	__m512i vc = _mm512_load_si512(corr);

	for (int i = 0; i < 16; i++) {
		__m512i d = _mm512_load_si512(c + 16 * i);
		if (off)
			d = _mm512_add_epi32(d, vc);
		__m512 a = _mm512_load_ps(acc + 16 * i);
		a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(_mm512_set1_ps(ds[i]), vda), a);
		if (hasmin)
			a = _mm512_fmadd_ps(_mm512_set1_ps(dm[i]), vdas, a);
		_mm512_store_ps(acc + 16 * i, a);
	}
}

/* Tokens [0, m / 16 * 16) of the product; returns how many it did (0: not here). */
T_AMX int
kern_q_amx(int type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq, int m,
    float *y, int64_t ldy)
{
	struct qp_type qt;
	struct aside as;
	int ntg = m / 16;
	int64_t nbk = k / 32;
	size_t ldx = qact_row_bytes(k), rb = qp_row_bytes(type, k);

	if (ntg == 0 || !qp_type_get(type, 1, &qt) || qt.sub != 1)
		return 0;
	if (aside_build(&qt, xq, ldx, k, ntg, &as) != 0) {
		aside_free(&as);
		return 0;
	}
	float *acc = aligned_alloc(64, (size_t)ntg * QP_ROWS * 16 * sizeof(float));
	uint8_t *a = aligned_alloc(64, (size_t)QP_NB * QP_ROWS * 32);
	float *ds = aligned_alloc(64, QP_NB * QP_ROWS * sizeof(float));
	float *dm = aligned_alloc(64, QP_NB * QP_ROWS * sizeof(float));
	if (acc == NULL || a == NULL || ds == NULL || dm == NULL) {
		free(acc), free(a), free(ds), free(dm);
		aside_free(&as);
		return 0;
	}
	/* two token groups per step (4 C tiles), C tiles stored to alternating buffers so the
	 * tiles of one step run while the vector unit finishes the step before */
	_Alignas(64) int32_t c[2][4][256];
	_Alignas(64) struct tilecfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.palette = 1;
	for (int t = 0; t < 4; t++) {	/* C tiles 0-3: 16 rows x 16 int32 */
		cfg.rows[t] = 16;
		cfg.colsb[t] = 64;
	}
	for (int t = 4; t < 6; t++) {	/* A tiles 4, 5: 16 rows x 32 bytes */
		cfg.rows[t] = 16;
		cfg.colsb[t] = 32;
	}
	for (int t = 6; t < 8; t++) {	/* B tiles 6, 7: 8 rows x 64 bytes */
		cfg.rows[t] = 8;
		cfg.colsb[t] = 64;
	}
	_tile_loadconfig(&cfg);
	for (int64_t r = r0; r < r1; r += QP_ROWS) {
		int nrows = r1 - r < QP_ROWS ? (int)(r1 - r) : QP_ROWS, ng = (nrows + 15) / 16;
		memset(acc, 0, (size_t)ntg * QP_ROWS * 16 * sizeof(float));
		for (int64_t b0 = 0; b0 < nbk; b0 += QP_NB) {
			int nb = nbk - b0 < QP_NB ? (int)(nbk - b0) : QP_NB;
			qp_pack_rows(type, 1, (const uint8_t *)w + (size_t)r * rb, rb, nrows, b0, nb, a, ds, dm);
			int step = 0;
			for (int tg = 0; tg < ntg; tg += 2) {
				int two = tg + 1 < ntg;
				for (int bb = 0; bb < nb; bb++, step ^= 1) {
					size_t i0 = (size_t)tg * (size_t)nbk + (size_t)(b0 + bb);
					size_t i1 = i0 + (size_t)nbk;
					const uint8_t *a0 = a + (size_t)bb * QP_ROWS * 32;
					int32_t (*cs)[256] = c[step];
					_tile_loadd(4, a0, 32);
					_tile_loadd(6, as.b + i0 * 512, 64);
					_tile_zero(0);
					_tile_dpbusd(0, 4, 6);
					_tile_stored(0, cs[0], 64);
					if (ng > 1) {
						_tile_loadd(5, a0 + 16 * 32, 32);
						_tile_zero(1);
						_tile_dpbusd(1, 5, 6);
						_tile_stored(1, cs[1], 64);
					}
					if (two) {
						_tile_loadd(7, as.b + i1 * 512, 64);
						_tile_zero(2);
						_tile_dpbusd(2, 4, 7);
						_tile_stored(2, cs[2], 64);
						if (ng > 1) {
							_tile_zero(3);
							_tile_dpbusd(3, 5, 7);
							_tile_stored(3, cs[3], 64);
						}
					}
					for (int u = 0; u <= two; u++) {
						size_t i = u ? i1 : i0;
						for (int g = 0; g < ng; g++)
							epilogue(cs[2 * u + g], ds + bb * QP_ROWS + 16 * g,
							    dm + bb * QP_ROWS + 16 * g, as.da + i * 16, as.das + i * 16,
							    as.corr + i * 16, qt.hasmin, qt.off,
							    acc + ((size_t)(tg + u) * QP_ROWS + 16 * g) * 16);
					}
				}
			}
		}
		for (int tg = 0; tg < ntg; tg++)
			for (int row = 0; row < nrows; row++)
				for (int n = 0; n < 16; n++)
					y[(int64_t)(tg * 16 + n) * ldy + r + row] =
					    acc[((size_t)tg * QP_ROWS + row) * 16 + n];
	}
	_tile_release();
	free(acc), free(a), free(ds), free(dm);
	aside_free(&as);
	return ntg * 16;
}

#else

int
kern_q_amx(int type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq, int m,
    float *y, int64_t ldy)
{
	(void)type, (void)w, (void)k, (void)r0, (void)r1, (void)xq, (void)m, (void)y, (void)ldy;
	return 0;
}

#endif
