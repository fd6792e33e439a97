/* http_keys.c - bearer keys for the HTTP front's TCP listeners. A presented key is hashed
 * and its digest compared with every key's digest with no early exit: the time taken
 * depends on the number of keys, never on how much of a key was right. */
#include "daemon/http_keys.h"

#include <stdlib.h>
#include <string.h>

#include "util/sha256.h"

struct http_keys {
	int n;
	unsigned char digest[][32];
};

/* the next key of the text from *pos: its bounds, 0 at the end, -1 when it is malformed */
static int
next_key(const char *t, size_t len, size_t *pos, size_t *start, size_t *klen)
{
	while (*pos < len) {
		size_t e = *pos;
		while (e < len && t[e] != '\n')
			e++;
		size_t a = *pos, b = e;
		*pos = e + (e < len);
		while (a < b && (t[a] == ' ' || t[a] == '\t' || t[a] == '\r'))
			a++;
		while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\t' || t[b - 1] == '\r'))
			b--;
		if (a == b || t[a] == '#')
			continue;
		for (size_t i = a; i < b; i++)
			if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
				return -1;
		if (b - a < HTTP_KEY_MIN)
			return -1;
		*start = a;
		*klen = b - a;
		return 1;
	}
	return 0;
}

int
http_keys_count(const char *text, size_t len)
{
	size_t pos = 0, a, n;
	int r, count = 0;

	while ((r = next_key(text, len, &pos, &a, &n)) == 1)
		if (++count > HTTP_KEYS_MAX)
			return -1;
	return r == -1 ? -1 : count;
}

struct http_keys *
http_keys_parse(const char *text, size_t len)
{
	int n = http_keys_count(text, len);
	size_t pos = 0, a, kl;
	struct http_keys *k;

	if (n <= 0 || (k = malloc(sizeof(*k) + (size_t)n * 32)) == NULL)
		return NULL;
	k->n = 0;
	while (k->n < n && next_key(text, len, &pos, &a, &kl) == 1) {
		struct sha256 h;
		sha256_init(&h);
		sha256_update(&h, text + a, kl);
		sha256_final(&h, k->digest[k->n++]);
	}
	return k;
}

int
http_keys_match(const struct http_keys *k, const char *token, size_t n)
{
	unsigned char d[32];
	struct sha256 h;
	unsigned hit = 0;

	if (k == NULL)
		return 0;
	sha256_init(&h);
	sha256_update(&h, token, n);
	sha256_final(&h, d);
	for (int i = 0; i < k->n; i++) {
		unsigned diff = 0;
		for (int j = 0; j < 32; j++)
			diff |= (unsigned)(k->digest[i][j] ^ d[j]);
		/* 1 when diff is 0, computed without a branch on it */
		hit |= 1u & ((diff - 1u) >> 8);
	}
	return (int)hit;
}

void
http_keys_free(struct http_keys *k)
{
	free(k);
}
