/* t_http_keys.c - the HTTP front's bearer keys (daemon/http_keys.c): the file's format
 * (comments, blank lines, white space, short or unprintable keys refused), and matching:
 * every key, nothing else - not a prefix, not an extension, not another case. */
#include <string.h>

#include "daemon/http_keys.h"
#include "tap.h"

static int
match(const struct http_keys *k, const char *t)
{
	return http_keys_match(k, t, strlen(t));
}

int
main(void)
{
	const char *text = "# the keys\n\n  key-one-0123456789abc \r\n\tkey-two-0123456789abc\n"
	    "# key-commented-out-0123456789\nkey-three-0123456789abc";
	struct http_keys *k;

	ok(http_keys_count(text, strlen(text)) == 3, "three keys: comments and blank lines skipped");
	k = http_keys_parse(text, strlen(text));
	ok(k != NULL, "parsed");
	ok(match(k, "key-one-0123456789abc"), "the first key (white space and CR around it dropped)");
	ok(match(k, "key-two-0123456789abc"), "the second key (a tab before it)");
	ok(match(k, "key-three-0123456789abc"), "the last key, with no newline after it");
	ok(!match(k, "key-commented-out-0123456789"), "a commented-out key is no key");
	ok(!match(k, "key-one-0123456789ab"), "a prefix of a key is refused");
	ok(!match(k, "key-one-0123456789abcd"), "a key with a byte more is refused");
	ok(!match(k, "KEY-ONE-0123456789ABC"), "keys are case-sensitive");
	ok(!match(k, ""), "an empty key is refused");
	ok(!http_keys_match(k, "key-one-0123456789abc\0x", 23), "a NUL and more after a key is refused");
	ok(http_keys_match(k, "key-one-0123456789abc\0x", 21), "the bytes given count, not the NUL");
	http_keys_free(k);

	ok(http_keys_count("# nothing\n\n", 11) == 0, "only comments: no key");
	ok(http_keys_parse("# nothing\n\n", 11) == NULL, "and no key set");
	ok(http_keys_count("short\n", 6) == -1, "a key under 16 bytes is refused");
	ok(http_keys_count("0123456789abcdef\n", 17) == 1, "16 bytes is enough");
	ok(http_keys_count("0123456789 abcdef\n", 18) == -1, "a space inside a key is refused");
	ok(http_keys_count("0123456789abcdef\xc3\xa9\n", 19) == -1, "a byte outside ASCII is refused");
	ok(http_keys_count("0123456789ab\0cdef", 17) == -1, "a NUL byte is refused");
	ok(http_keys_match(NULL, "anything-0123456789", 19) == 0, "no keys: nothing matches");
	return done_testing();
}
