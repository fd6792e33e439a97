/* memfile.h - bytes as a file path, for parsers that open files (GGUF, safetensors). */
#ifndef GUARDD_FUZZ_MEMFILE_H
#define GUARDD_FUZZ_MEMFILE_H

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static inline int
memfile(const void *p, size_t n, char *path, size_t cap)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return fd;
}

/* Runs fn(path) with the bytes as a file; the file disappears afterwards. */
static inline void
with_memfile(const void *p, size_t n, void (*fn)(const char *path))
{
	char path[64];
	int fd = memfile(p, n, path, sizeof(path));

	if (fd >= 0) {
		fn(path);
		close(fd);
	}
}

#endif
