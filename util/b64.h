/* b64.h - base64 (RFC 4648, standard alphabet) decoding of untrusted text, as data: URLs
 * carry images: every byte checked, padding optional but only at the end, no whitespace;
 * errors name the offset. Cost linear in the input. */
#ifndef GUARDD_B64_H
#define GUARDD_B64_H

#include <stddef.h>

#include "util/err.h"

/* The decoded size of n characters of base64 (an upper bound when the text is bad). */
size_t b64_decoded_max(size_t n);
/* Decodes s[0..n) into out (room for b64_decoded_max(n) bytes); *len gets the byte count.
 * -1 with e naming the offset of the first bad character, or the bad length. */
int b64_decode(const char *s, size_t n, unsigned char *out, size_t *len, struct err *e);

#endif
