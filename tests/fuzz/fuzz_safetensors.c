/* fuzz_safetensors.c - the safetensors reader on arbitrary bytes. */
#include <stdint.h>

#include "core/safetensors.h"
#include "memfile.h"

static void
open_st(const char *path)
{
	struct err e;
	struct st_set *s = st_open_file(path, &e);

	for (size_t i = 0; s && i < st_count(s); i++) {
		const struct st_tensor *t = st_at(s, i);
		/* every tensor's last byte must be readable */
		volatile unsigned char sink = t->nbytes ? ((const unsigned char *)t->data)[t->nbytes - 1] : 0;
		(void)sink;
	}
	st_close(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	with_memfile(data, size, open_st);
	return 0;
}
