/* mapfile.h - read-only memory maps of whole files (model weights stay on disk). */
#ifndef GUARDD_MAPFILE_H
#define GUARDD_MAPFILE_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

struct mapfile {
	const unsigned char *data;
	size_t size;
	char *path;
	/* identity of the mapped file when it was opened (fstat of the mapped descriptor) */
	uint64_t dev, ino, mtime_ns, ctime_ns;
};

/* Maps path read-only. An empty file maps to data == NULL, size 0. */
int mapfile_open(struct mapfile *m, const char *path, struct err *e);
void mapfile_close(struct mapfile *m);

/* Reads a whole (small) file into a NUL-terminated heap buffer; caller frees. */
char *file_read_all(const char *path, size_t *len, size_t max, struct err *e);

#endif
