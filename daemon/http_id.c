/* http_id.c - random ids for OpenAI-shaped answers: one generator for every route. */
#include "daemon/http_id.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "daemon/server.h"

void
http_random_id(char *out, size_t n, const char *prefix)
{
	unsigned char b[12];
	size_t k = (size_t)snprintf(out, n, "%s", prefix);

	if (k >= n)
		return;
	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
		static unsigned long long seq;
		unsigned long long v = ++seq ^ (unsigned long long)(now_ms() * 1e3);
		memcpy(b, &v, sizeof(v));
		memset(b + sizeof(v), 0, sizeof(b) - sizeof(v));
	}
	for (size_t i = 0; i < sizeof(b) && k + 2 < n; i++)
		k += (size_t)snprintf(out + k, n - k, "%02x", b[i]);
}
