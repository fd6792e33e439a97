/* http_keys.h - the HTTP front's bearer keys (http.keys_file): one key a line, kept only as
 * SHA-256 digests and matched in constant time, so neither a key's bytes nor its length
 * shows in how long a refusal takes. */
#ifndef GUARDD_HTTP_KEYS_H
#define GUARDD_HTTP_KEYS_H

#include <stddef.h>

#define HTTP_KEY_MIN 16		/* bytes: shorter keys are refused when the file is read */
#define HTTP_KEYS_MAX 1024

struct http_keys;

/* The keys in a keys file's text (blank lines and lines starting with # skipped, white
 * space around a key ignored): how many, or -1 when one is shorter than HTTP_KEY_MIN, has a
 * byte outside printable ASCII, or there are more than HTTP_KEYS_MAX. */
int http_keys_count(const char *text, size_t len);
/* NULL when http_keys_count is not positive. */
struct http_keys *http_keys_parse(const char *text, size_t len);
/* 1 when token (n bytes) is one of the keys. Constant time in the keys' values. */
int http_keys_match(const struct http_keys *k, const char *token, size_t n);
void http_keys_free(struct http_keys *k);

#endif
