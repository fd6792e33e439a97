/* utext.h - Unicode text helpers that chat templates need (Python's str.strip()). */
#ifndef GUARDD_UTEXT_H
#define GUARDD_UTEXT_H

#include <stddef.h>

/* Length of the white space character (Python str.isspace()) at s, 0 if none. */
size_t utext_space_at(const char *s, size_t n);
/* Python str.strip() (Jinja's trim) of UTF-8 text: the kept part is s[*start, *start+*len). */
void utext_trim(const char *s, size_t n, size_t *start, size_t *len);

#endif
