/* stop.h - the released text of one answer: token bytes in, complete UTF-8 out (an invalid
 * or never-completed sequence becomes U+FFFD once that is certain), a tail held back while it
 * could still become a stop string, and the text cut before the first stop string. */
#ifndef GUARDD_STOP_H
#define GUARDD_STOP_H

#include <stddef.h>
#include "util/err.h"

#define STOP_MAX_STRINGS 16	/* stop strings per answer */
#define STOP_MAX_LEN 256	/* bytes per stop string */

struct stop;

/* Copies the stop strings (non-empty valid UTF-8, within the limits above; errors name the
 * string by its index). n may be 0. */
struct stop *stop_new(const char *const *strs, size_t n, struct err *e);
void stop_free(struct stop *s);
/* Appends n bytes of decoded tokens. Returns 1 once a stop string has matched (the text is
 * cut before it; later input is ignored), 0 otherwise, -1 when out of memory. */
int stop_feed(struct stop *s, const char *p, size_t n);
/* The end of the answer: an incomplete UTF-8 tail becomes U+FFFD and the held-back tail is
 * released. Returns like stop_feed. */
int stop_flush(struct stop *s);
/* The released text (NUL-terminated); valid until the next feed, flush or free. */
const char *stop_text(const struct stop *s, size_t *len);
int stop_matched(const struct stop *s);

#endif
