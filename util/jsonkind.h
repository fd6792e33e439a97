/* jsonkind.h - a JSON value's kind in words, for errors ("expected a string, got an array"). */
#ifndef GUARDD_JSONKIND_H
#define GUARDD_JSONKIND_H

struct json_t;

/* "an object", "an array", "a string", "a number", "a boolean" or "null" */
const char *json_kind(const struct json_t *v);

#endif
