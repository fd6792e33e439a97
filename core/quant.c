/* quant.c - the portable C side of core/quant.h: ggml's quantized blocks read as integers
 * with per-32 float factors, the int8 activation rows, and the reference matmul over both.
 *
 * Every weight type is first unpacked, 32 elements at a time, into one common form:
 *   int8 w[32], int8 sc[2] (one per 16 elements), float a, b
 * meaning element i is  (a * sc[i/16]) * w[i] + b  exactly as ggml's dequantize_row_* computes
 * it (Q6_K: a = d, sc its 8-bit sub-block scales; the K types with mins: a = d*scale, exact in
 * float, and b = -(dmin*min); Q4_1/Q5_1: a = d, b = m; sc = 1 but for Q6_K). Types without
 * a min (Q8_0, Q4_0, Q5_0, Q6_K, Q8_K) add no b at all, so a -0.0 stays -0.0 as in ggml. The
 * dequantizer and the matmul share this unpacking, so the bit layouts live in one place.
 *
 * The matmul's order, the contract a kernel family may reproduce: per output, per activation
 * block j in increasing order, with I = sc[0]*dot(w[0..16), q[0..16)) + sc[1]*dot(w[16..32),
 * q[16..32)) (exact int32),
 *   acc = acc + d_j * (a * (float)I + b * (float)s_j)       from acc = 0,
 * (acc = acc + d_j * (a * (float)I) for the types without a min)
 * in float32 without fused multiply-adds (-std=c11 keeps GCC from contracting). It depends on
 * k alone, never on m or on the rows around. */
#include "core/quant.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/gguf.h"
#include "core/half.h"

struct qsub {
	float a, b;
	int8_t sc[2];
};

int
quant_supported(int type)
{
	switch (type) {
	case GGML_TYPE_Q8_0: case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0:
	case GGML_TYPE_Q5_1: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K:
	case GGML_TYPE_Q8_K:
		return 1;
	default:
		return 0;
	}
}

static float
half_at(const uint8_t *p)
{
	uint16_t h;

	memcpy(&h, p, 2);
	return f16_to_f32(h);
}

static void
sub_set(struct qsub *s, float a, float b)
{
	s->a = a;
	s->b = b;
	s->sc[0] = s->sc[1] = 1;
}

/* bit i of a byte as 0 or 16, for the fifth bits of Q5_0/Q5_1 (a table: the loops below stay
 * plain byte arithmetic the compiler vectorizes) */
static uint8_t bit16[256][8];

static void
bit16_init(void)
{
	for (int v = 0; v < 256; v++)
		for (int i = 0; i < 8; i++)
			bit16[v][i] = (uint8_t)((v >> i & 1) << 4);
}

static pthread_once_t bit16_once = PTHREAD_ONCE_INIT;

/* Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1: one 32-element block. */
static void
unpack_32(int type, const uint8_t *p, int8_t *w, struct qsub *s)
{
	float d = half_at(p), m = 0;
	const uint8_t *qs;
	uint8_t hb[32];
	int off = 0;

	switch (type) {
	case GGML_TYPE_Q8_0:
		memcpy(w, p + 2, 32);
		sub_set(s, d, 0);
		return;
	case GGML_TYPE_Q4_0: qs = p + 2; off = 8; break;
	case GGML_TYPE_Q4_1: m = half_at(p + 2); qs = p + 4; break;
	case GGML_TYPE_Q5_0: qs = p + 6; off = 16; break;
	default: /* Q5_1 */ m = half_at(p + 2); qs = p + 8; break;
	}
	sub_set(s, d, m);
	if (type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q4_1) {
		for (int j = 0; j < 16; j++) {
			w[j] = (int8_t)((qs[j] & 15) - off);
			w[j + 16] = (int8_t)((qs[j] >> 4) - off);
		}
		return;
	}
	/* qh, the 4 bytes before qs (little-endian): bit j is element j's fifth bit */
	for (int i = 0; i < 4; i++)
		memcpy(hb + 8 * i, bit16[qs[i - 4]], 8);
	for (int j = 0; j < 16; j++) {
		w[j] = (int8_t)(((qs[j] & 15) | hb[j]) - off);
		w[j + 16] = (int8_t)(((qs[j] >> 4) | hb[j + 16]) - off);
	}
}

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block's 12 scale bytes: the first
 * four pairs are the low 6 bits of bytes 0-7; the last four take their low 4 bits from bytes
 * 8-11 and their top 2 bits from the spare top bits of bytes 0-7. */
static void
scale_min_k4(int j, const uint8_t *q, int *sc, int *mn)
{
	if (j < 4) {
		*sc = q[j] & 63;
		*mn = q[j + 4] & 63;
	} else {
		*sc = (q[j + 4] & 15) | (q[j - 4] >> 6) << 4;
		*mn = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
	}
}

/* Q4_K (qh NULL) and Q5_K: one 256-element block, 8 sub-blocks of 32. Each 32 bytes of qs
 * hold two sub-blocks: the low nibbles the first, the high nibbles the second; Q5_K's fifth
 * bit of element l of sub-block j is bit j of qh[l]. */
static void
unpack_k45(const uint8_t *p, int has_qh, int8_t *w, struct qsub *s)
{
	float d = half_at(p), dmin = half_at(p + 2);
	const uint8_t *scales = p + 4, *qh = p + 16;
	const uint8_t *qs = p + (has_qh ? 48 : 16);

	for (int j = 0; j < 8; j++) {
		int sc, mn;
		scale_min_k4(j, scales, &sc, &mn);
		sub_set(&s[j], d * (float)sc, -(dmin * (float)mn));
	}
	for (int j = 0; j < 4; j++, qs += 32, w += 64) {
		for (int l = 0; l < 32; l++) {
			w[l] = (int8_t)(qs[l] & 15);
			w[l + 32] = (int8_t)(qs[l] >> 4);
		}
		uint8_t m0 = (uint8_t)(1u << (2 * j)), m1 = (uint8_t)(2u << (2 * j));
		if (has_qh)
			for (int l = 0; l < 32; l++) {
				w[l] = (int8_t)(w[l] | (qh[l] & m0 ? 16 : 0));
				w[l + 32] = (int8_t)(w[l + 32] | (qh[l] & m1 ? 16 : 0));
			}
	}
}

/* Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], half d. In 128-element
 * half n, element 32g + l (g < 4, l < 32) takes its low 4 bits from ql[64n + l] (g 0: low
 * nibble, g 2: high nibble) or ql[64n + 32 + l] (g 1: low, g 3: high), and its high 2 bits
 * from bits 2g, 2g+1 of qh[32n + l]. Element e's scale is scales[e/16]; the value q6 - 32. */
static void
unpack_q6k(const uint8_t *p, int8_t *w, struct qsub *s)
{
	const uint8_t *ql = p, *qh = p + 128;
	const int8_t *sc = (const int8_t *)(p + 192);
	float d = half_at(p + 208);

	for (int n = 0; n < 2; n++, ql += 64, qh += 32, w += 128)
		for (int l = 0; l < 32; l++) {
			w[l] = (int8_t)(((ql[l] & 15) | (qh[l] & 3) << 4) - 32);
			w[l + 32] = (int8_t)(((ql[l + 32] & 15) | (qh[l] >> 2 & 3) << 4) - 32);
			w[l + 64] = (int8_t)(((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32);
			w[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32);
		}
	for (int j = 0; j < 8; j++) {
		sub_set(&s[j], d, 0);
		s[j].sc[0] = sc[2 * j];
		s[j].sc[1] = sc[2 * j + 1];
	}
}

/* Q8_K: float d, int8 qs[256], int16 bsums[16] (the sums are not needed here). */
static void
unpack_q8k(const uint8_t *p, int8_t *w, struct qsub *s)
{
	float d;

	memcpy(&d, p, 4);
	memcpy(w, p + 4, 256);
	for (int j = 0; j < 8; j++)
		sub_set(&s[j], d, 0);
}

static int
has_min(int type)
{
	return type == GGML_TYPE_Q4_1 || type == GGML_TYPE_Q5_1 || type == GGML_TYPE_Q4_K ||
	    type == GGML_TYPE_Q5_K;
}

static void
type_block(int type, int *block, int *bytes)
{
	uint64_t b = 0, n = 0;

	ggml_type_size((uint32_t)type, &b, &n);
	*block = (int)b;
	*bytes = (int)n;
}

/* nb type blocks at p into w[nb*block] and s[nb*block/32]. */
static void
unpack(int type, const uint8_t *p, int64_t nb, int8_t *w, struct qsub *s)
{
	int block, bytes;

	type_block(type, &block, &bytes);
	pthread_once(&bit16_once, bit16_init);
	for (int64_t i = 0; i < nb; i++, p += bytes, w += block, s += block / 32)
		switch (type) {
		case GGML_TYPE_Q4_K: unpack_k45(p, 0, w, s); break;
		case GGML_TYPE_Q5_K: unpack_k45(p, 1, w, s); break;
		case GGML_TYPE_Q6_K: unpack_q6k(p, w, s); break;
		case GGML_TYPE_Q8_K: unpack_q8k(p, w, s); break;
		default: unpack_32(type, p, w, s); break;
		}
}

/* elements per unpacked slice: a multiple of every block (256) */
enum { SLICE = 2048 };

void
quant_dequant_row(int type, const void *row, float *out, int64_t n)
{
	int8_t w[SLICE];
	struct qsub s[SLICE / 32];
	int block, bytes;

	int mins = has_min(type);

	type_block(type, &block, &bytes);
	for (int64_t e0 = 0; e0 < n; e0 += SLICE) {
		int64_t len = n - e0 < SLICE ? n - e0 : SLICE;
		unpack(type, (const uint8_t *)row + e0 / block * bytes, len / block, w, s);
		for (int64_t i = 0; i < len; i++) {
			const struct qsub *q = &s[i / 32];
			/* ggml's order, (d*sc)*q: the sign of a zero follows d*sc */
			float v = q->a * (float)q->sc[i % 32 / 16] * (float)w[i];
			out[e0 + i] = mins ? v + q->b : v;
		}
	}
}

size_t
qact_row_bytes(int64_t k)
{
	size_t n = (size_t)k + (size_t)(k / QA_BLOCK) * (sizeof(float) + sizeof(int16_t));

	return (n + 63) / 64 * 64;
}

void
qact_quantize_row(const float *x, int64_t k, void *row)
{
	int8_t *q = row;
	size_t used = (size_t)k + (size_t)(k / QA_BLOCK) * 6;

	for (int64_t b = 0; b < k / QA_BLOCK; b++) {
		const float *xb = x + b * QA_BLOCK;
		float amax = 0;
		for (int i = 0; i < QA_BLOCK; i++)
			if (fabsf(xb[i]) > amax)
				amax = fabsf(xb[i]);
		float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
		int sum = 0;
		for (int i = 0; i < QA_BLOCK; i++) {
			float v = nearbyintf(xb[i] * id);
			/* clamped in float first: a NaN or infinity must not reach the int cast */
			int iv = v > 127 ? 127 : v < -127 ? -127 : v == v ? (int)v : 0;
			q[b * QA_BLOCK + i] = (int8_t)iv;
			sum += iv;
		}
		int16_t s16 = (int16_t)sum;
		memcpy((char *)row + k + b * 4, &d, 4);
		memcpy((char *)row + k + k / QA_BLOCK * 4 + b * 2, &s16, 2);
	}
	memset((char *)row + used, 0, qact_row_bytes(k) - used);
}

/* exact int32 dot of one 32-element block, its two 16-element halves scaled */
static inline int32_t
dot32(const int8_t *w, const int8_t *q, const int8_t sc[2])
{
	int32_t lo = 0, hi = 0;

	for (int i = 0; i < 16; i++)
		lo += w[i] * q[i];
	for (int i = 16; i < 32; i++)
		hi += w[i] * q[i];
	return sc[0] * lo + sc[1] * hi;
}

void
quant_matmul_generic(int type, const void *w, int64_t k, int64_t r0, int64_t r1,
    const void *xq, int m, float *y, int64_t ldy)
{
	int8_t wq[SLICE];
	struct qsub s[SLICE / 32];
	int block, bytes, mins = has_min(type);
	size_t xb = qact_row_bytes(k);

	type_block(type, &block, &bytes);
	size_t rb = (size_t)(k / block) * (size_t)bytes;
	for (int64_t r = r0; r < r1; r++) {
		const uint8_t *row = (const uint8_t *)w + (size_t)r * rb;
		/* a slice of the row is unpacked once and used for every token; the running sum
		 * goes through y between slices, in the same order as without slicing */
		for (int64_t e0 = 0; e0 < k; e0 += SLICE) {
			int64_t len = k - e0 < SLICE ? k - e0 : SLICE;
			unpack(type, row + e0 / block * bytes, len / block, wq, s);
			for (int t = 0; t < m; t++) {
				const void *xr = (const char *)xq + (size_t)t * xb;
				const int8_t *q = qact_q(xr) + e0;
				const float *d = qact_d(xr, k) + e0 / QA_BLOCK;
				const int16_t *sm = qact_s(xr, k) + e0 / QA_BLOCK;
				float acc = e0 == 0 ? 0.0f : y[(int64_t)t * ldy + r];
				for (int64_t j = 0; j < len / QA_BLOCK; j++) {
					int32_t I = dot32(wq + 32 * j, q + 32 * j, s[j].sc);
					if (mins)
						acc = acc + d[j] * (s[j].a * (float)I + s[j].b * (float)sm[j]);
					else
						acc = acc + d[j] * (s[j].a * (float)I);
				}
				y[(int64_t)t * ldy + r] = acc;
			}
		}
	}
}
