/* http_id.h - the ids of OpenAI-shaped answers ("chatcmpl-...", "modr-..."). */
#ifndef GUARDD_HTTP_ID_H
#define GUARDD_HTTP_ID_H

#include <stddef.h>

/* prefix and 24 hex digits of random bytes (a counter mixed with the clock when the kernel
 * has no entropy to give without blocking), as OpenAI's ids look; cut to fit n. */
void http_random_id(char *out, size_t n, const char *prefix);

#endif
