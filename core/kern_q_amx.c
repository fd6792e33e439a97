/* kern_q_amx.c - prefill of quantized weights on AMX int8 tiles, used by kern_q_vnni for
 * batches of 16 tokens or more where kern_amx_on() (cpu.c: the tiles proved to run).
 *
 * One tdpbssd multiplies 16 tokens' activation values of one scale group (tile A, loaded
 * straight from the quantized activation rows; a last group of fewer tokens from a
 * zero-padded copy) by 16 weight rows' values of that group (tile B: the repacked tile of
 * kern_q_int.h, values as signed bytes, which is already the 4-bytes-per-row layout the
 * instruction wants), giving each (token, row) its exact int32 group dot D_g. The C tile
 * goes to memory, and the vector unit adds each D_g into the output's float accumulator
 * exactly as kern_q_int.h defines (fma(D_g, ds_g * da_b, acc), then the minimum term): the
 * accumulators of 16 tokens x 16 rows live in 16 zmm registers over the whole k, and one
 * lane is one row, as in the VNNI tiles. So every output has the same bits as in the VNNI
 * tiles and the decode path, whatever the batch.
 *
 * Cost, measured on this Sapphire Rapids: per C tile the tile side (loads, product, store)
 * and the vector epilogue (3 operations per output and group) take about as long each, and
 * they barely overlap, whatever the order (two or three C tiles in flight, the store before
 * or after the other epilogue, the epilogue split around the product: within 5 %). */
#include "core/kern.h"

#if defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 11
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "core/kern_q_int.h"
#include "core/kern_q_x86.h"
#include "core/quant.h"

#define T_AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,amx-tile,amx-int8")))

struct tilecfg {
	uint8_t palette, start;
	uint8_t pad[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

/* tiles 0, 1: C (16 tokens x 16 rows, int32); 2, 3: A (16 tokens x one group's bytes);
 * 4, 5: B (the group's 4-byte steps x 16 rows). gb: bytes of a scale group (32 or 16). */
T_AMX static void
configure(int gb)
{
	_Alignas(64) struct tilecfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.palette = 1;
	for (int t = 0; t < 6; t++) {
		cfg.rows[t] = (uint8_t)(t < 4 ? 16 : gb / 4);
		cfg.colsb[t] = (uint16_t)(t == 2 || t == 3 ? gb : 64);
	}
	_tile_loadconfig(&cfg);
}

/* One group's D (c: 16 tokens x 16 rows) into the accumulators: acc[t] (16 rows of token t)
 * += D * (ds * da[t]) */
T_AMX static inline __attribute__((always_inline)) void
epilogue(__m512 acc[16], const int32_t *c, __m512 dsv, const float *da)
{
#pragma GCC unroll 16
	for (int t = 0; t < 16; t++)
		acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * t)),
		    _mm512_mul_ps(dsv, _mm512_set1_ps(da[t])), acc[t]);
}

/* the minimum term of a block: acc[t] += dm * das[t] */
T_AMX static inline __attribute__((always_inline)) void
epilogue_min(__m512 acc[16], __m512 dmv, const float *das)
{
#pragma GCC unroll 16
	for (int t = 0; t < 16; t++)
		acc[t] = _mm512_fmadd_ps(dmv, _mm512_set1_ps(das[t]), acc[t]);
}

/* Group u of the chunk (block u / sub, half u % sub) in slot C (tiles C, A, B: the tile
 * numbers must be literals) = A . B, stored to c[C] */
#define ISSUE(C, A, B, u) do {									\
	int b_ = (u) / sub, h_ = (u) % sub;							\
	_tile_loadd(A, xa + b_ * 32 + h_ * gb, (long)ldx);					\
	_tile_loadd(B, pk[b_ / QP_NB].q + (((b_ % QP_NB) * 8 + h_ * (8 / sub)) * ng + g) * 64,	\
	    (long)ng * 64);									\
	_tile_zero(C);										\
	_tile_dpbssd(C, A, B);									\
} while (0)
/* ... and its store: issued after the epilogue before it, whose loads would otherwise wait
 * for this store (and so for its product) */
#define STORE(C) _tile_stored(C, c[C], 64)

/* The epilogue of group u from slot S (and the block's minimum term after its last group) */
#define FINISH(S, u) do {									\
	int b_ = (u) / sub, h_ = (u) % sub;							\
	const struct qpack *p_ = pk + b_ / QP_NB;						\
	epilogue(acc, c[S], _mm512_load_ps(p_->ds + ((b_ % QP_NB) * 2 + h_) * QP_ROWS + 16 * g),	\
	    da + (size_t)b_ * 16);								\
	if (hasmin && h_ == sub - 1)								\
		epilogue_min(acc, _mm512_load_ps(p_->dm + (b_ % QP_NB) * QP_ROWS + 16 * g),	\
		    das + (size_t)b_ * 16);							\
} while (0)

/* Token group xa (16 activation rows ldx bytes apart) x row group g of the packed rows (nb
 * blocks, the whole k, in chunks of QP_NB blocks): the 16 x 16 accumulators stay in
 * registers from 0 to the end, then go to y (mk: the rows that exist; mt: the tokens). */
T_AMX static inline __attribute__((always_inline)) void
group_pass(const struct qpack *pk, int ng, int g, __mmask16 mk, int nb, int sub, int hasmin,
    const uint8_t *xa, size_t ldx, const float *da, const float *das, float *y, int64_t ldy,
    int mt)
{
	_Alignas(64) int32_t c[2][256];
	__m512 acc[16];
	int gb = 32 / sub, nu = nb * sub;

#pragma GCC unroll 16
	for (int t = 0; t < 16; t++)
		acc[t] = _mm512_setzero_ps();
	ISSUE(0, 2, 4, 0);
	STORE(0);
	for (int u = 0; u < nu; u += 2) {
		if (u + 1 < nu)
			ISSUE(1, 3, 5, u + 1);
		FINISH(0, u);
		if (u + 1 < nu) {
			STORE(1);
			if (u + 2 < nu)
				ISSUE(0, 2, 4, u + 2);
			FINISH(1, u + 1);
			if (u + 2 < nu)
				STORE(0);
		}
	}
#pragma GCC unroll 16
	for (int t = 0; t < 16; t++)
		if (t < mt)
			_mm512_mask_storeu_ps(y + t * ldy, mk, acc[t]);
}

/* the two type shapes get their own copies (constant sub and hasmin) */
T_AMX static void
pass_one(const struct qpack *pk, int ng, int g, __mmask16 mk, int nb, const uint8_t *xa,
    size_t ldx, const float *da, const float *das, float *y, int64_t ldy, int mt)
{
	group_pass(pk, ng, g, mk, nb, 1, 0, xa, ldx, da, das, y, ldy, mt);
}

T_AMX static void
pass_min(const struct qpack *pk, int ng, int g, __mmask16 mk, int nb, const uint8_t *xa,
    size_t ldx, const float *da, const float *das, float *y, int64_t ldy, int mt)
{
	group_pass(pk, ng, g, mk, nb, 1, 1, xa, ldx, da, das, y, ldy, mt);
}

T_AMX static void
pass_half(const struct qpack *pk, int ng, int g, __mmask16 mk, int nb, const uint8_t *xa,
    size_t ldx, const float *da, const float *das, float *y, int64_t ldy, int mt)
{
	group_pass(pk, ng, g, mk, nb, 2, 0, xa, ldx, da, das, y, ldy, mt);
}

/* The whole product (m >= 16; returns m), or 0 if not done here (then nothing is written). */
T_AMX int
kern_q_amx(int type, const void *w, int64_t k, int64_t r0, int64_t r1, const void *xq, int m,
    float *y, int64_t ldy)
{
	struct qp_type qt;
	int ntg = (m + 15) / 16, tail = m % 16;
	int64_t nbk = k / 32;
	size_t ldx = qact_row_bytes(k), rb = qp_row_bytes(type, k);

	if (m < 16 || !qp_type_get(type, 1, &qt))
		return 0;
	/* per token group and block, the 16 tokens' da (and da * sa for the minimum term); a
	 * last group of fewer than 16 tokens is copied to a zero-padded group (its padding
	 * tokens fill C rows of their own, never stored) */
	size_t n = (size_t)ntg * (size_t)nbk * 16;
	float *da = aligned_alloc(64, n * sizeof(float) * 2);
	int nch = (int)((nbk + QP_NB - 1) / QP_NB);
	struct qpack *pk = aligned_alloc(64, sizeof(*pk) * (size_t)nch);
	uint8_t *pad = tail ? aligned_alloc(64, 16 * ldx) : NULL;
	if (da == NULL || pk == NULL || (tail && pad == NULL)) {
		free(da);
		free(pk);
		free(pad);
		return 0;
	}
	memset(da, 0, n * sizeof(float) * 2);
	for (int t = 0; t < m; t++) {
		const uint8_t *row = (const uint8_t *)xq + (size_t)t * ldx;
		const float *d = qact_d(row, k);
		const int16_t *s = qact_s(row, k);
		float *o = da + (size_t)(t / 16) * (size_t)nbk * 16 + t % 16;
		for (int64_t b = 0; b < nbk; b++) {
			o[b * 16] = d[b];
			o[n + (size_t)b * 16] = d[b] * (float)s[b];
		}
	}
	if (tail) {
		memcpy(pad, (const uint8_t *)xq + (size_t)(m - tail) * ldx, (size_t)tail * ldx);
		memset(pad + (size_t)tail * ldx, 0, (size_t)(16 - tail) * ldx);
	}
	void (*pass)(const struct qpack *, int, int, __mmask16, int, const uint8_t *, size_t,
	    const float *, const float *, float *, int64_t, int) =
	    qt.sub == 2 ? pass_half : qt.hasmin ? pass_min : pass_one;
	configure(32 / qt.sub);
	for (int64_t r = r0; r < r1; r += QP_ROWS) {
		int nrows = r1 - r < QP_ROWS ? (int)(r1 - r) : QP_ROWS, ng = (nrows + 15) / 16;
		/* the panel's rows over the whole k, so that each output is written once */
		for (int c = 0; c < nch; c++) {
			int64_t b0 = (int64_t)c * QP_NB;
			int nb = nbk - b0 < QP_NB ? (int)(nbk - b0) : QP_NB;
			pack_vnni(type, 1, (const uint8_t *)w + (size_t)r * rb, rb, nrows, b0, nb, pk + c);
		}
		for (int tg = 0; tg < ntg; tg++) {
			int last = tail && tg == ntg - 1;
			const uint8_t *xa = last ? pad : (const uint8_t *)xq + (size_t)tg * 16 * ldx;
			const float *dt = da + (size_t)tg * (size_t)nbk * 16;
			for (int g = 0; g < ng; g++) {
				int left = nrows - 16 * g;
				__mmask16 mk = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
				pass(pk, ng, g, mk, (int)nbk, xa, ldx, dt, dt + n, y + (int64_t)tg * 16 * ldy +
				    r + 16 * g, ldy, last ? tail : 16);
			}
		}
	}
	_tile_release();
	free(da);
	free(pk);
	free(pad);
	return m;
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
