/* fuzz_gguf.c - the GGUF reader and the model loader on arbitrary bytes. */
#include <stdint.h>

#include "core/gguf.h"
#include "core/model.h"
#include "memfile.h"

static void
open_all(const char *path)
{
	struct err e;

	gguf_close(gguf_open(path, &e));
	model_close(model_open(path, &e));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	with_memfile(data, size, open_all);
	return 0;
}
