/* fuzz_gguf.c - the GGUF reader and the model loader on arbitrary bytes. */
#include <stdint.h>
#include <unistd.h>

#include "core/gguf.h"
#include "core/model.h"
#include "memfile.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	struct err e;
	int fd = memfile(data, size, path, sizeof(path));

	if (fd < 0)
		return 0;
	struct gguf *g = gguf_open(path, &e);
	gguf_close(g);
	struct model *m = model_open(path, &e);
	model_close(m);
	close(fd);
	return 0;
}
