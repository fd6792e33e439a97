/* qref.h - the tests' own dequantizers of ggml's block types, written from the formats
 * (ggml's dequantize_row_* arithmetic: float32, scale times level), independent of core/ so
 * that a test can check the core's quantizers and dequantizers against them. */
#ifndef GUARDD_TESTS_QREF_H
#define GUARDD_TESTS_QREF_H

#include <stdint.h>
#include <string.h>

#include "core/gguf.h"
#include "core/half.h"

static float
qref_h(const unsigned char *p)
{
	return f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

static void
qref_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
	if (j < 4) {
		*d = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*d = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
		*m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
	}
}

/* one block of type at b into y; returns the block's element count, 0 for other types */
static int
qref_block(int type, const unsigned char *b, float *y)
{
	switch (type) {
	case GGML_TYPE_Q8_0: {
		float d = qref_h(b);
		for (int j = 0; j < 32; j++)
			y[j] = (int8_t)b[2 + j] * d;
		return 32;
	}
	case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: {
		int one = type == GGML_TYPE_Q4_1;
		float d = qref_h(b), m = one ? qref_h(b + 2) : 0;
		const unsigned char *qs = b + (one ? 4 : 2);
		for (int j = 0; j < 16; j++) {
			int lo = qs[j] & 15, hi = qs[j] >> 4;
			y[j] = one ? lo * d + m : (lo - 8) * d;
			y[j + 16] = one ? hi * d + m : (hi - 8) * d;
		}
		return 32;
	}
	case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: {
		int one = type == GGML_TYPE_Q5_1;
		float d = qref_h(b), m = one ? qref_h(b + 2) : 0;
		uint32_t qh;
		memcpy(&qh, b + (one ? 4 : 2), 4);
		const unsigned char *qs = b + (one ? 8 : 6);
		for (int j = 0; j < 16; j++) {
			int lo = (qs[j] & 15) | (int)((qh >> j) & 1) << 4;
			int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
			y[j] = one ? lo * d + m : (lo - 16) * d;
			y[j + 16] = one ? hi * d + m : (hi - 16) * d;
		}
		return 32;
	}
	case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: {
		int five = type == GGML_TYPE_Q5_K;
		float d = qref_h(b), dmin = qref_h(b + 2);
		const uint8_t *sc = b + 4, *qh = b + 16, *ql = b + (five ? 48 : 16);
		int is = 0;
		uint8_t u1 = 1, u2 = 2;
		for (int j = 0; j < 256; j += 64) {
			uint8_t s, m;
			qref_k4(is, sc, &s, &m);
			float d1 = d * s, m1 = dmin * m;
			qref_k4(is + 1, sc, &s, &m);
			float d2 = d * s, m2 = dmin * m;
			for (int l = 0; l < 32; l++)
				*y++ = d1 * ((ql[l] & 0xf) + (five && (qh[l] & u1) ? 16 : 0)) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * ((ql[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - m2;
			ql += 32;
			is += 2;
			u1 = (uint8_t)(u1 << 2);
			u2 = (uint8_t)(u2 << 2);
		}
		return 256;
	}
	case GGML_TYPE_Q6_K: {
		float d = qref_h(b + 208);
		const uint8_t *ql = b, *qh = b + 128;
		const int8_t *sc = (const int8_t *)(b + 192);
		for (int n = 0; n < 256; n += 128) {
			for (int l = 0; l < 32; l++) {
				int is = l / 16;
				int q1 = ((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4) - 32;
				int q2 = ((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32;
				int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
				int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
				y[l] = d * sc[is] * q1;
				y[l + 32] = d * sc[is + 2] * q2;
				y[l + 64] = d * sc[is + 4] * q3;
				y[l + 96] = d * sc[is + 6] * q4;
			}
			y += 128;
			ql += 64;
			qh += 32;
			sc += 8;
		}
		return 256;
	}
	case GGML_TYPE_Q8_K: {
		float d;
		memcpy(&d, b, 4);
		for (int j = 0; j < 256; j++)
			y[j] = d * (int8_t)b[4 + j];
		return 256;
	}
	}
	return 0;
}

/* n elements of a row of type at p into y (F32, F16, BF16 too); 0 on an unknown type */
static int
qref_row(int type, const void *p, float *y, int64_t n)
{
	const unsigned char *b = p;
	uint64_t blk, bytes;

	if (type == GGML_TYPE_F32) {
		memcpy(y, p, (size_t)n * 4);
		return 1;
	}
	if (type == GGML_TYPE_F16 || type == GGML_TYPE_BF16) {
		for (int64_t i = 0; i < n; i++) {
			uint16_t v = (uint16_t)(b[2 * i] | b[2 * i + 1] << 8);
			y[i] = type == GGML_TYPE_F16 ? f16_to_f32(v) : bf16_to_f32(v);
		}
		return 1;
	}
	if (!ggml_type_size((uint32_t)type, &blk, &bytes))
		return 0;
	for (int64_t i = 0; i < n; i += (int64_t)blk, b += bytes)
		if (qref_block(type, b, y + i) == 0)
			return 0;
	return 1;
}

#endif
