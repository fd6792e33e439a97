/* fuzz_conv.c - conversations from JSON, their prompt text and the spoof detector. */
#include <stdint.h>

#include "classifier/conv.h"
#include "classifier/prompt.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conv c;
	struct err e;

	if (conv_parse(&c, (const char *)data, size, &e) == 0) {
		struct buf t = { 0 };
		struct tokvec ids = { 0 };
		const char *reasons[8];
		enum role role;
		prompt_body(&c, NULL, &t, &ids, &role, &e);
		prompt_spoof(&c, reasons, 8);
		buf_free(&t);
		conv_free(&c);
	}
	return 0;
}
