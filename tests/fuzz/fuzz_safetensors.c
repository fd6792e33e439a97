/* fuzz_safetensors.c - the safetensors reader on arbitrary bytes. */
#include <stdint.h>
#include <unistd.h>

#include "core/safetensors.h"
#include "memfile.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	struct err e;
	int fd = memfile(data, size, path, sizeof(path));

	if (fd < 0)
		return 0;
	struct st_set *s = st_open_file(path, &e);
	for (size_t i = 0; s && i < st_count(s); i++) {
		const struct st_tensor *t = st_at(s, i);
		volatile unsigned char sink = t->nbytes ? ((const unsigned char *)t->data)[t->nbytes - 1] : 0;
		(void)sink;	/* every tensor's last byte must be readable */
	}
	st_close(s);
	close(fd);
	return 0;
}
