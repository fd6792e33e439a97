/* utext.c - Python str.strip() on UTF-8 text, so prompts trim exactly as the Jinja chat
 * templates do (their trim filter and .strip() both use str.isspace()). */
#include "util/utext.h"

#include <string.h>

size_t
utext_space_at(const char *str, size_t n)
{
	/* the non-ASCII code points with str.isspace(), as UTF-8 */
	static const char *const multi[] = {
		"\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81", "\xe2\x80\x82",
		"\xe2\x80\x83", "\xe2\x80\x84", "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87",
		"\xe2\x80\x88", "\xe2\x80\x89", "\xe2\x80\x8a", "\xe2\x80\xa8", "\xe2\x80\xa9",
		"\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80",
	};
	const unsigned char *s = (const unsigned char *)str;

	if (n == 0)
		return 0;
	if (s[0] == ' ' || (s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x1f))
		return 1;
	if (s[0] < 0xc2)
		return 0;
	for (size_t i = 0; i < sizeof(multi) / sizeof(multi[0]); i++) {
		size_t k = strlen(multi[i]);
		if (n >= k && memcmp(s, multi[i], k) == 0)
			return k;
	}
	return 0;
}

void
utext_trim(const char *s, size_t n, size_t *start, size_t *len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t a = 0, b = n, k;

	while (a < b && (k = utext_space_at(s + a, b - a)) > 0)
		a += k;
	/* from the end: step back over whole UTF-8 characters */
	while (b > a) {
		size_t c = b - 1;
		while (c > a && (p[c] & 0xc0) == 0x80)
			c--;
		if (utext_space_at(s + c, b - c) != b - c)
			break;
		b = c;
	}
	*start = a;
	*len = b - a;
}
