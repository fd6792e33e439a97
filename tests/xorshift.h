/* xorshift.h - the 32-bit xorshift generator (13, 17, 5) the kernel tests and benchmarks draw
 * their random blocks from: the same sequence from the same seed on every machine. */
#ifndef GUARDD_XORSHIFT_H
#define GUARDD_XORSHIFT_H

#include <stdint.h>

/* the next value of the state *s (never 0 from a nonzero seed) */
static inline uint32_t
xorshift32(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

#endif
