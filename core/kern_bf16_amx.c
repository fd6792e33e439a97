/* kern_bf16_amx.c - BF16 weights on AMX BF16 tiles (tdpbf16ps), for every BF16 matmul where
 * kern_bf16_amx_on() (cpu.c: the tiles proved to run, GUARD_AMX is not 0), prefill and
 * decode alike.
 *
 * C (16 weight rows x 16 tokens, float32) += A (16 rows x 32 BF16 values, loaded straight
 * from the mmapped matrix) . B (the 16 tokens' same 32 values, packed once per matmul by
 * kern_pack_bf16_amx as tdpbf16ps wants them: row p holds each token's pair 2p, 2p+1).
 * Each output is one float accumulator updated by one tdpbf16ps per 32-value step, in k
 * order; between k chunks the C tiles are stored and reloaded exactly. An output's bits
 * therefore depend on its row and its token alone, never on the rows or tokens beside it in
 * a tile or on the batch (padding tokens are zero and only fill lanes of their own). They do
 * differ from the AVX-512 vdpbf16ps kernel's, so on a host with tiles every BF16 matmul,
 * decode included, runs here, and every path agrees. */
#include "core/kern.h"

#if defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 11
#include <immintrin.h>
#include <string.h>

#define T_AMXB __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")))

/* Blocking: RB weight rows x TB tokens of float accumulators (64 KiB, on the stack) per
 * super-block; KC values of k per pass, so the pass's activations (TB x KC BF16) and
 * weights (RB x KC) stay in L2 while every 32 x 32 block of the super-block runs over them. */
enum { RB = 128, TB = 128, KC = 512 };

struct tilecfg {
	uint8_t palette, start;
	uint8_t pad[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

/* tiles 0-3: C (A0.B0, A1.B0, A0.B1, A1.B1); 4, 5: A (weights); 6, 7: B (tokens). n0, n1:
 * rows of weight groups 0 and 1 (a matrix whose rows are not a multiple of 16 ends short) */
T_AMXB static void
configure(int n0, int n1)
{
	_Alignas(64) struct tilecfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.palette = 1;
	int rows[8] = { n0, n1, n0, n1, n0, n1, 16, 16 };
	for (int t = 0; t < 8; t++) {
		cfg.rows[t] = (uint8_t)(rows[t] > 0 ? rows[t] : 1);
		cfg.colsb[t] = 64;
	}
	_tile_loadconfig(&cfg);
}

T_AMXB void
kern_pack_bf16_amx(const float *x, int m, int64_t k, int tg0, int tg1, uint16_t *xp)
{
	int64_t nkk = k / 32;
	const __m512i idx = _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176,
	    192, 208, 224, 240);

	for (int tg = tg0; tg < tg1; tg++)
		for (int64_t kk = 0; kk < nkk; kk++) {
			uint32_t *tile = (uint32_t *)(xp + ((size_t)tg * (size_t)nkk + (size_t)kk) * 512);
			for (int t = 0; t < 16; t++) {
				int tok = tg * 16 + t;
				__m512i v = _mm512_setzero_si512();
				if (tok < m) {
					const float *s = x + (int64_t)tok * k + kk * 32;
					v = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + 16),
					    _mm512_loadu_ps(s));
				}
				/* dword p of the token (values 2p, 2p+1) to row p, column t */
				_mm512_i32scatter_epi32(tile + t, idx, v, 4);
			}
		}
}

T_AMXB void
kern_bf16_amx(const uint16_t *w, int64_t k, int64_t r0, int64_t r1, const uint16_t *xp, int m,
    float *y, int64_t ldy)
{
	_Alignas(64) float acc[RB * TB];	/* [32-row block][token group][2][16 rows][16 tokens] */
	int64_t nkk = k / 32, ldw = k * 2;
	int ntg = (m + 15) / 16, cfg0 = -1, cfg1 = -1;
	/* decode-sized batches (up to 32 tokens) are memory-bound: whole rows per pass, and the
	 * next 32 rows prefetched a block ahead (a row of 2048 BF16 is one 4 KiB page, where
	 * the hardware prefetcher stops) */
	int small = ntg <= 2;
	int64_t kcs = small ? nkk : KC / 32;

	for (int64_t R0 = r0; R0 < r1; R0 += RB) {
		int rn = r1 - R0 < RB ? (int)(r1 - R0) : RB;
		for (int T0 = 0; T0 < ntg; T0 += TB / 16) {
			int tgn = ntg - T0 < TB / 16 ? ntg - T0 : TB / 16;
			for (int64_t kc = 0; kc < nkk; kc += kcs) {
				int64_t kn = nkk - kc < kcs ? nkk - kc : kcs;
				for (int rb = 0; rb < rn; rb += 32) {
					int n0 = rn - rb >= 16 ? 16 : rn - rb;
					int n1 = rn - rb - 16 >= 16 ? 16 : rn - rb - 16 > 0 ? rn - rb - 16 : 0;
					if (n0 != cfg0 || n1 != cfg1) {
						configure(n0, n1);
						cfg0 = n0, cfg1 = n1;
					}
					const uint16_t *a0 = w + (R0 + rb) * k, *a1 = a0 + 16 * k;
					/* rows of the next block that exist */
					int pfn = small ? (int)(r1 - R0 - rb - 32 < 32 ? r1 - R0 - rb - 32 : 32) : 0;
					for (int tg = 0; tg < tgn; tg += 2) {
						int two = tg + 1 < tgn;
						float *c0 = acc + ((size_t)(rb / 32) * (TB / 16) + (size_t)tg) * 512;
						float *c1 = c0 + 512;	/* the next token group */
						if (kc == 0) {
							_tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
						} else {
							_tile_loadd(0, c0, 64);
							if (n1)
								_tile_loadd(1, c0 + 256, 64);
							if (two) {
								_tile_loadd(2, c1, 64);
								if (n1)
									_tile_loadd(3, c1 + 256, 64);
							}
						}
						const uint16_t *b0 = xp + ((size_t)(T0 + tg) * (size_t)nkk) * 512;
						const uint16_t *b1 = b0 + (size_t)nkk * 512;
						for (int64_t kk = kc; kk < kc + kn; kk++) {
							if (tg == 0)
								for (int i = 0; i < pfn; i++)
									_mm_prefetch((const char *)(a0 + (32 + i) * k + kk * 32),
									    _MM_HINT_T1);
							_tile_loadd(4, a0 + kk * 32, ldw);
							_tile_loadd(6, b0 + kk * 512, 64);
							_tile_dpbf16ps(0, 4, 6);
							if (n1) {
								_tile_loadd(5, a1 + kk * 32, ldw);
								_tile_dpbf16ps(1, 5, 6);
							}
							if (two) {
								_tile_loadd(7, b1 + kk * 512, 64);
								_tile_dpbf16ps(2, 4, 7);
								if (n1)
									_tile_dpbf16ps(3, 5, 7);
							}
						}
						_tile_stored(0, c0, 64);
						if (n1)
							_tile_stored(1, c0 + 256, 64);
						if (two) {
							_tile_stored(2, c1, 64);
							if (n1)
								_tile_stored(3, c1 + 256, 64);
						}
					}
				}
			}
			/* accumulators [row][token] to y [token][row] */
			for (int rb = 0; rb < rn; rb += 32)
				for (int tg = 0; tg < tgn; tg++) {
					const float *c = acc + ((size_t)(rb / 32) * (TB / 16) + (size_t)tg) * 512;
					int tn = m - (T0 + tg) * 16 < 16 ? m - (T0 + tg) * 16 : 16;
					for (int g = 0; g < 2 && rb + 16 * g < rn; g++) {
						int gn = rn - rb - 16 * g < 16 ? rn - rb - 16 * g : 16;
						for (int t = 0; t < tn; t++) {
							float *yt = y + (int64_t)((T0 + tg) * 16 + t) * ldy + R0 + rb + 16 * g;
							for (int i = 0; i < gn; i++)
								yt[i] = c[g * 256 + i * 16 + t];
						}
					}
				}
		}
	}
	_tile_release();
}

#else

void
kern_pack_bf16_amx(const float *x, int m, int64_t k, int tg0, int tg1, uint16_t *xp)
{
	(void)x, (void)m, (void)k, (void)tg0, (void)tg1, (void)xp;
}

void
kern_bf16_amx(const uint16_t *w, int64_t k, int64_t r0, int64_t r1, const uint16_t *xp, int m,
    float *y, int64_t ldy)
{
	(void)w, (void)k, (void)r0, (void)r1, (void)xp, (void)m, (void)y, (void)ldy;
}

#endif
