/* err.h - error messages that name the place: filled by library code, shown by callers. */
#ifndef GUARDD_ERR_H
#define GUARDD_ERR_H

#include <stddef.h>

struct err {
	char msg[768];
};

/* Formats into e (if non-NULL) and returns -1, so callers can `return err_set(...)`. */
int err_set(struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message with "prefix: " (e.g. the file name). Returns -1. */
int err_prefix(struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
