/* mkquant.h - plain nearest-rounding writers of ggml's 32-element quantized blocks and of
 * Q8_K, for test models of the types llama.cpp's shipped reference files lack (Q4_1, Q5_0,
 * Q5_1, Q8_K; Q8_0 and Q4_0 too). Not llama-quantize's search for the best scale: test files
 * need valid blocks and their exact values, not the smallest error. Each writer also gives
 * the values the blocks stand for, computed here with ggml's dequantization formulas in
 * float (written independently of core/quant.c), so that a test can hold our dequantizer and
 * the forward pass to them. Used by mkmodel only. */
#ifndef GUARDD_MKQUANT_H
#define GUARDD_MKQUANT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/gguf.h"
#include "core/half.h"

static uint16_t
mkq_half(float f, float *back)
{
	uint16_t h = f32_to_f16(f);

	*back = f16_to_f32(h);
	return h;
}

static int
mkq_round(float v, int lo, int hi)
{
	float r = nearbyintf(v);

	return r < lo ? lo : r > hi ? hi : (int)r;
}

/* One block of 32 (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): bytes to o, values to deq. */
static void
mkq_block32(int type, const float *x, uint8_t *o, float *deq)
{
	float amax = 0, mn = x[0], mx = x[0], d, m = 0, id;
	int q[32], bits = type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q4_1 ? 4 : 5;
	int with_min = type == GGML_TYPE_Q4_1 || type == GGML_TYPE_Q5_1;

	for (int i = 0; i < 32; i++) {
		amax = fmaxf(amax, fabsf(x[i]));
		mn = fminf(mn, x[i]);
		mx = fmaxf(mx, x[i]);
	}
	if (type == GGML_TYPE_Q8_0) {
		uint16_t h = mkq_half(amax / 127, &d);
		id = d != 0 ? 1 / d : 0;
		memcpy(o, &h, 2);
		for (int i = 0; i < 32; i++) {
			int8_t v = (int8_t)mkq_round(x[i] * id, -127, 127);
			o[2 + i] = (uint8_t)v;
			deq[i] = (float)v * d;
		}
		return;
	}
	int levels = (1 << bits) - 1, off = with_min ? 0 : 1 << (bits - 1);
	uint16_t hd, hm = 0;
	if (with_min) {
		hd = mkq_half((mx - mn) / (float)levels, &d);
		hm = mkq_half(mn, &m);
	} else
		hd = mkq_half(amax / (float)(off - 1), &d);
	id = d != 0 ? 1 / d : 0;
	for (int i = 0; i < 32; i++)
		q[i] = mkq_round((x[i] - m) * id + (float)off, 0, levels);
	/* header: d, then m (with a min), then qh (5 bits), then 16 bytes of nibble pairs */
	uint8_t *p = o;
	memcpy(p, &hd, 2);
	p += 2;
	if (with_min) {
		memcpy(p, &hm, 2);
		p += 2;
	}
	if (bits == 5) {
		uint32_t qh = 0;
		for (int i = 0; i < 32; i++)
			qh |= (uint32_t)(q[i] >> 4 & 1) << i;
		memcpy(p, &qh, 4);
		p += 4;
	}
	for (int j = 0; j < 16; j++)
		p[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
	for (int i = 0; i < 32; i++)
		deq[i] = with_min ? (float)q[i] * d + m : (float)(q[i] - off) * d;
}

/* One Q8_K block of 256: float d, int8 qs[256], int16 bsums[16]. */
static void
mkq_q8k(const float *x, uint8_t *o, float *deq)
{
	float amax = 0;

	for (int i = 0; i < 256; i++)
		amax = fmaxf(amax, fabsf(x[i]));
	float d = amax / 127, id = d != 0 ? 1 / d : 0;
	memcpy(o, &d, 4);
	for (int g = 0; g < 16; g++) {
		int16_t s = 0;
		for (int i = 16 * g; i < 16 * g + 16; i++) {
			int8_t v = (int8_t)mkq_round(x[i] * id, -127, 127);
			o[4 + i] = (uint8_t)v;
			s = (int16_t)(s + v);
			deq[i] = d * (float)v;
		}
		memcpy(o + 260 + 2 * g, &s, 2);
	}
}

/* n values (a multiple of the type's block) to blocks at o; their values to deq. Returns the
 * bytes written. */
static size_t
mkq_encode(int type, const float *x, size_t n, void *o, float *deq)
{
	uint64_t block = 0, bytes = 0;
	uint8_t *p = o;

	ggml_type_size((uint32_t)type, &block, &bytes);
	for (size_t i = 0; i < n; i += block, p += bytes)
		if (type == GGML_TYPE_Q8_K)
			mkq_q8k(x + i, p, deq + i);
		else
			mkq_block32(type, x + i, p, deq + i);
	return (size_t)(n / block * bytes);
}

/* "q8_0" ... "q8_k" to a ggml type, -1 when it is not one of these */
static int
mkq_type(const char *name)
{
	static const struct { const char *n; int t; } map[] = {
		{ "q8_0", GGML_TYPE_Q8_0 }, { "q4_0", GGML_TYPE_Q4_0 }, { "q4_1", GGML_TYPE_Q4_1 },
		{ "q5_0", GGML_TYPE_Q5_0 }, { "q5_1", GGML_TYPE_Q5_1 }, { "q8_k", GGML_TYPE_Q8_K },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(name, map[i].n, 4) == 0 && (name[4] == '\0' || strcmp(name + 4, "-deq") == 0))
			return map[i].t;
	return -1;
}

#endif
