/* half.h - IEEE binary16 and bfloat16 conversions (exact, round to nearest even). */
#ifndef GUARDD_HALF_H
#define GUARDD_HALF_H

#include <stdint.h>
#include <string.h>

static inline float
bf16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static inline uint16_t
f32_to_bf16(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	if ((u & 0x7fffffffu) > 0x7f800000u)	/* NaN stays NaN */
		return (uint16_t)((u >> 16) | 0x40);
	return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

static inline float
f16_to_f32(uint16_t h)
{
	uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
	float f;

	if (e == 0) {
		if (m == 0)
			u = s;
		else {	/* subnormal: normalise */
			e = 127 - 15 + 1;
			while (!(m & 0x400)) {
				m <<= 1;
				e--;
			}
			u = s | (e << 23) | ((m & 0x3ff) << 13);
		}
	} else if (e == 31)
		u = s | 0x7f800000u | (m << 13);
	else
		u = s | ((e + 127 - 15) << 23) | (m << 13);
	memcpy(&f, &u, 4);
	return f;
}

static inline uint16_t
f32_to_f16(float f)
{
	uint32_t u, s, e, m;

	memcpy(&u, &f, 4);
	s = (u >> 16) & 0x8000;
	e = (u >> 23) & 0xff;
	m = u & 0x7fffff;
	if (e == 0xff)
		return (uint16_t)(s | 0x7c00 | (m ? 0x200 : 0));
	int32_t ne = (int32_t)e - 127 + 15;
	if (ne >= 31)
		return (uint16_t)(s | 0x7c00);
	if (ne <= 0) {	/* subnormal or zero in half */
		if (ne < -10)
			return (uint16_t)s;
		m |= 0x800000;
		uint32_t shift = (uint32_t)(14 - ne);
		uint32_t hm = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
		if (rem > half || (rem == half && (hm & 1)))
			hm++;
		return (uint16_t)(s | hm);
	}
	uint32_t hm = m >> 13, rem = m & 0x1fff;
	uint32_t h = s | ((uint32_t)ne << 10) | hm;
	if (rem > 0x1000 || (rem == 0x1000 && (hm & 1)))
		h++;	/* carries into the exponent correctly */
	return (uint16_t)h;
}

#endif
