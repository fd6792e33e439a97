/* hashnoise.h - the hash-noise rule the test checkpoints are written with (tests/mkmodel.c,
 * tests/mkmllama.c; ../shared's mkref.py follows the same rule, so the bits must not
 * change): element i of the tensor NAME is drawn from splitmix64(fnv1a64(NAME) + i * the
 * golden ratio). Header-only: each program that uses it is one file. */
#ifndef GUARDD_HASHNOISE_H
#define GUARDD_HASHNOISE_H

#include <stdint.h>

/* splitmix64's finalizer: every input bit reaches every output bit */
static inline uint64_t
hashnoise_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* FNV-1a 64 of a tensor's name: its seed */
static inline uint64_t
hashnoise_seed(const char *s)
{
	uint64_t h = 0xCBF29CE484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001B3ull;
	}
	return h;
}

/* element i of the tensor seeded seed, uniform in [0, 1) with 53 bits */
static inline double
hashnoise_unit(uint64_t seed, uint64_t i)
{
	return (double)(hashnoise_mix(seed + i * 0x9E3779B97F4A7C15ull) >> 11) * 0x1p-53;
}

#endif
