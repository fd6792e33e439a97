/* fuzz_config.c - guardd's configuration loader on arbitrary bytes. */
#include <stdint.h>

#include "daemon/config.h"
#include "memfile.h"

static void
load(const char *path)
{
	struct err e;

	config_free(config_load(path, &e));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	with_memfile(data, size, load);
	return 0;
}
