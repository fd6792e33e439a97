/* kern_q_pack.c - repacks a tile of quantized weight rows (GGUF blocks) into the broadcast
 * layout of kern_q_int.h: one unsigned byte per weight, 16 rows' 4-byte steps interleaved,
 * and each 32-block's scale and minimum as float. Portable C working 8 bytes at a time; the
 * SIMD families use it for every type they have no faster packer for. */
#include "core/kern_q_int.h"

#include <string.h>

#include "core/gguf.h"
#include "core/half.h"
#include "core/quant.h"

int
qp_type_get(int type, int flip, struct qp_type *t)
{
	switch (type) {
	case GGML_TYPE_Q8_0: case GGML_TYPE_Q8_K:
		*t = (struct qp_type){ flip ? 128 : 0, 1, 0, 8 };
		return 1;
	case GGML_TYPE_Q4_0: *t = (struct qp_type){ 8, 1, 0, 4 }; return 1;
	case GGML_TYPE_Q5_0: *t = (struct qp_type){ 16, 1, 0, 5 }; return 1;
	case GGML_TYPE_Q4_1: case GGML_TYPE_Q4_K: *t = (struct qp_type){ 0, 1, 1, 4 }; return 1;
	case GGML_TYPE_Q5_1: case GGML_TYPE_Q5_K: *t = (struct qp_type){ 0, 1, 1, 5 }; return 1;
	case GGML_TYPE_Q6_K: *t = (struct qp_type){ 32, 2, 0, 6 }; return 1;
	default: return 0;
	}
}

size_t
qp_row_bytes(int type, int64_t k)
{
	uint64_t block, bytes;

	if (!ggml_type_size((uint32_t)type, &block, &bytes))
		return 0;
	return (size_t)((uint64_t)k / block * bytes);
}

static inline uint64_t
ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline uint32_t
ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

#define LO4 0x0f0f0f0f0f0f0f0full
#define ONES 0x0101010101010101ull

/* bits 0..7 of x to bit 4 of bytes 0..7 (Q5_0/Q5_1 fifth bits) */
static inline uint64_t
spread16(uint32_t x)
{
	uint64_t t = ((uint64_t)(x & 0xff) * ONES) & 0x8040201008040201ull;

	return (((t + 0x7f7f7f7f7f7f7f7full) | t) & 0x8080808080808080ull) >> 3;
}

static inline void
scale_min_k4(int j, const uint8_t *q, int *d, int *m)
{
	if (j < 4) {
		*d = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*d = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
		*m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
	}
}

/* Block b of one row: its 32 values as 4 words of 8 bytes (elements 0-7, ..., 24-31), its
 * group scales ds[sub] and minimum dm. */
static void
vals(int type, int flip, const uint8_t *row, int64_t b, uint64_t v[4], float ds[2], float *dm)
{
	const uint8_t *p;
	int sc, mn;

	*dm = 0;
	switch (type) {
	case GGML_TYPE_Q8_0:
		p = row + b * 34;
		ds[0] = f16_to_f32((uint16_t)(p[0] | p[1] << 8));
		for (int i = 0; i < 4; i++)
			v[i] = ld64(p + 2 + 8 * i) ^ (flip ? 0x8080808080808080ull : 0);
		return;
	case GGML_TYPE_Q8_K: {
		p = row + b / 8 * 292;
		memcpy(&ds[0], p, 4);
		for (int i = 0; i < 4; i++)
			v[i] = ld64(p + 4 + (b % 8) * 32 + 8 * i) ^ (flip ? 0x8080808080808080ull : 0);
		return;
	}
	case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: {
		int sz = type == GGML_TYPE_Q4_0 ? 18 : type == GGML_TYPE_Q4_1 ? 20 :
		    type == GGML_TYPE_Q5_0 ? 22 : 24;
		int hasm = type == GGML_TYPE_Q4_1 || type == GGML_TYPE_Q5_1;
		int five = type == GGML_TYPE_Q5_0 || type == GGML_TYPE_Q5_1;
		p = row + b * sz;
		ds[0] = f16_to_f32((uint16_t)(p[0] | p[1] << 8));
		if (hasm)
			*dm = f16_to_f32((uint16_t)(p[2] | p[3] << 8));
		const uint8_t *qs = p + 2 + 2 * hasm + 4 * five;
		uint64_t a = ld64(qs), c = ld64(qs + 8);
		v[0] = a & LO4;
		v[1] = c & LO4;
		v[2] = (a >> 4) & LO4;
		v[3] = (c >> 4) & LO4;
		if (five) {
			uint32_t qh = ld32(p + 2 + 2 * hasm);
			for (int i = 0; i < 4; i++)
				v[i] |= spread16(qh >> (8 * i));
		}
		return;
	}
	case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: {
		int five = type == GGML_TYPE_Q5_K, j = (int)(b % 8);
		p = row + b / 8 * (five ? 176 : 144);
		float d = f16_to_f32((uint16_t)(p[0] | p[1] << 8));
		float dmin = f16_to_f32((uint16_t)(p[2] | p[3] << 8));
		scale_min_k4(j, p + 4, &sc, &mn);
		ds[0] = d * (float)sc;
		*dm = -(dmin * (float)mn);
		const uint8_t *qs = p + 16 + 32 * five + 32 * (j / 2), *qh = p + 16;
		for (int i = 0; i < 4; i++) {
			v[i] = (ld64(qs + 8 * i) >> (4 * (j & 1))) & LO4;
			if (five)
				v[i] |= ((ld64(qh + 8 * i) >> j) & ONES) << 4;
		}
		return;
	}
	case GGML_TYPE_Q6_K: {
		int n = (int)(b % 8) / 4, s = (int)(b % 4);
		p = row + b / 8 * 210;
		float d = f16_to_f32((uint16_t)(p[208] | p[209] << 8));
		const int8_t *scales = (const int8_t *)(p + 192) + 8 * n + 2 * s;
		ds[0] = d * (float)scales[0];
		ds[1] = d * (float)scales[1];
		const uint8_t *ql = p + 64 * n + 32 * (s & 1), *qh = p + 128 + 32 * n;
		for (int i = 0; i < 4; i++)
			v[i] = ((ld64(ql + 8 * i) >> (4 * (s >> 1))) & LO4) |
			    (((ld64(qh + 8 * i) >> (2 * s)) & 0x0303030303030303ull) << 4);
		return;
	}
	default:
		memset(v, 0, 32);
		ds[0] = ds[1] = 0;
		return;
	}
}

void
qp_pack(int type, int flip, const uint8_t *w, size_t rb, int nrows, int64_t b0, int nb,
    struct qpack *p)
{
	int ng = (nrows + 15) / 16;

	for (int r = 0; r < ng * 16; r++) {
		const uint8_t *row = w + (size_t)(r < nrows ? r : 0) * rb;
		int g = r / 16, i = r % 16;
		for (int b = 0; b < nb; b++) {
			uint64_t v[4];
			float ds[2] = { 0, 0 }, dm;
			vals(type, flip, row, b0 + b, v, ds, &dm);
			uint8_t *q = p->q + ((size_t)b * 8 * ng + g) * 64 + 4 * i;
			for (int s = 0; s < 8; s++) {
				uint32_t x = (uint32_t)(v[s / 2] >> (32 * (s & 1)));
				memcpy(q + (size_t)s * ng * 64, &x, 4);
			}
			p->ds[(b * 2) * QP_ROWS + r] = ds[0];
			p->ds[(b * 2 + 1) * QP_ROWS + r] = ds[1];
			p->dm[b * QP_ROWS + r] = dm;
		}
	}
}

void
qp_prep(const struct qp_type *qt, const uint8_t *xq, size_t ldx, int64_t k, int mt,
    int64_t b0, int nb, struct qprep *tp)
{
	for (int t = 0; t < mt; t++) {
		const uint8_t *row = xq + (size_t)t * ldx;
		const int8_t *q = qact_q(row) + b0 * 32;
		const float *d = qact_d(row, k) + b0;
		const int16_t *s = qact_s(row, k) + b0;
		if (qt->hasmin)
			for (int b = 0; b < nb; b++)
				tp->das[t][b] = d[b] * (float)s[b];
		if (qt->sub == 2)
			for (int b = 0; b < nb * 2; b++) {
				int32_t sum = 0;
				for (int i = 0; i < 16; i++)
					sum += q[16 * b + i];
				tp->corr[t][b] = -qt->off * sum;
			}
		else if (qt->off)
			for (int b = 0; b < nb; b++)
				tp->corr[t][b] = -qt->off * s[b];
	}
}

void
qp_pack_rows(int type, int flip, const uint8_t *w, size_t rb, int nrows, int64_t b0, int nb,
    uint8_t *a, float *ds, float *dm)
{
	int n16 = (nrows + 15) / 16 * 16;

	for (int r = 0; r < n16; r++) {
		const uint8_t *row = w + (size_t)(r < nrows ? r : 0) * rb;
		for (int b = 0; b < nb; b++) {
			uint64_t v[4];
			float d2[2] = { 0, 0 }, m;
			vals(type, flip, row, b0 + b, v, d2, &m);
			memcpy(a + ((size_t)b * QP_ROWS + r) * 32, v, 32);
			ds[b * QP_ROWS + r] = d2[0];
			dm[b * QP_ROWS + r] = m;
		}
	}
}
