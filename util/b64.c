/* b64.c - bounds-checked base64 decoding (see b64.h). */
#include "util/b64.h"

static int
val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

size_t
b64_decoded_max(size_t n)
{
	return n / 4 * 3 + (n % 4 ? 3 : 0);
}

int
b64_decode(const char *s, size_t n, unsigned char *out, size_t *len, struct err *e)
{
	size_t data = n, o = 0, i;
	unsigned acc = 0;
	int bits = 0;

	*len = 0;
	/* up to two '=' at the very end, and only to complete a group of four */
	while (data > 0 && n - data < 2 && s[data - 1] == '=')
		data--;
	if (data < n && n % 4 != 0)
		return err_set(e, "base64: padding at offset %zu does not end a group of four "
		    "characters", data);
	for (i = 0; i < data; i++) {
		int v = val((unsigned char)s[i]);
		if (v < 0) {
			unsigned char c = (unsigned char)s[i];
			if (c >= 0x20 && c < 0x7f)
				return err_set(e, "base64: invalid character '%c' at offset %zu", c, i);
			return err_set(e, "base64: invalid byte 0x%02x at offset %zu", c, i);
		}
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (data % 4 == 1)
		return err_set(e, "base64: %zu characters: a final group of one character holds no "
		    "byte", data);
	/* the leftover bits of a short group must be zero (canonical encoding) */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return err_set(e, "base64: non-zero padding bits in the last character (offset %zu)",
		    data - 1);
	*len = o;
	return 0;
}
