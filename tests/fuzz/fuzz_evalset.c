/* fuzz_evalset.c - guard eval's labelled-set reader (cli/evalset.c): XSTest-style CSV and
 * JSONL (OpenAI samples, generic sets). The first byte picks the format; the rest is the
 * file's text. The reader lives in cli/, which no library archive holds, so this target
 * compiles it in (the Makefile links zlib for it: FUZZ_LIBS_evalset). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/evalset.c"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evalset s;
	struct err e;

	if (size == 0)
		return 0;
	struct buf b = { 0 };
	if (buf_add(&b, data + 1, size - 1) == -1)
		return 0;
	if (evalset_parse("fuzz", data[0] & 1, &b, &s, &e) == 0) {
		/* what it accepted is whole: every item has a label, a conversation, a key */
		for (size_t i = 0; i < s.n; i++)
			if ((s.it[i].label != 0 && s.it[i].label != 1) || s.it[i].cv.n == 0 ||
			    strlen(s.it[i].key) != 64)
				abort();
		evalset_free(&s);
	} else if (e.msg[0] == '\0')
		abort();	/* a refusal always says why */
	buf_free(&b);
	return 0;
}
