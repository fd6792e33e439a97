/* fuzz_config.c - guardd's configuration loader on arbitrary bytes. */
#include <stdint.h>
#include <unistd.h>

#include "daemon/config.h"
#include "memfile.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	struct err e;
	int fd = memfile(data, size, path, sizeof(path));

	if (fd < 0)
		return 0;
	config_free(config_load(path, &e));
	close(fd);
	return 0;
}
