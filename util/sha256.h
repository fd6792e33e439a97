/* sha256.h - SHA-256 (FIPS 180-4) for content hashes of policies, models and log records. */
#ifndef GUARDD_SHA256_H
#define GUARDD_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	unsigned char block[64];
	size_t fill;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *p, size_t n);
void sha256_final(struct sha256 *s, unsigned char out[32]);
/* Hex digest of one buffer into out (65 bytes with the NUL). */
void sha256_hex(const void *p, size_t n, char out[65]);

/* Tests: 1 makes every digest use the portable code even where the CPU's SHA extensions
 * would run; returns whether those extensions are available. */
int sha256_force_portable(int on);

#endif
