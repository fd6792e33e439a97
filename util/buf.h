/* buf.h - growable byte buffers and id vectors. */
#ifndef GUARDD_BUF_H
#define GUARDD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	char *p;		/* always NUL-terminated when non-NULL */
	size_t n, cap;
};

int buf_add(struct buf *b, const void *p, size_t n);
int buf_adds(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);

struct tokvec {
	int32_t *v;
	size_t n, cap;
};

int tokvec_push(struct tokvec *t, int32_t id);
int tokvec_append(struct tokvec *t, const int32_t *ids, size_t n);
void tokvec_free(struct tokvec *t);

/* Returns the length of the longest valid UTF-8 prefix of p (== n when all of it is valid). */
size_t utf8_valid_prefix(const char *p, size_t n);
/* Length of the UTF-8 sequence starting with byte c (1 for invalid lead bytes). */
int utf8_len(unsigned char c);

#endif
