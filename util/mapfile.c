/* mapfile.c - mmap of model files and bounded reads of small text files. */
#include "util/mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int
mapfile_open(struct mapfile *m, const char *path, struct err *e)
{
	struct stat st;
	int fd;

	memset(m, 0, sizeof(*m));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return err_set(e, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, "%s: not a regular file", path);
	}
	m->size = (size_t)st.st_size;
	m->dev = (uint64_t)st.st_dev;
	m->ino = (uint64_t)st.st_ino;
	m->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
	m->ctime_ns = (uint64_t)st.st_ctim.tv_sec * 1000000000u + (uint64_t)st.st_ctim.tv_nsec;
	if (m->size > 0) {
		void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			close(fd);
			return err_set(e, "%s: mmap: %s", path, strerror(errno));
		}
		m->data = p;
	}
	close(fd);
	m->path = strdup(path);
	return 0;
}

void
mapfile_close(struct mapfile *m)
{
	if (m->data != NULL)
		munmap((void *)m->data, m->size);
	free(m->path);
	memset(m, 0, sizeof(*m));
}

char *
file_read_all(const char *path, size_t *len, size_t max, struct err *e)
{
	FILE *fp;
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if ((fp = fopen(path, "rb")) == NULL) {
		err_set(e, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (n + 65536 + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 65536 * 2;
			char *nb = realloc(buf, ncap);
			if (nb == NULL) {
				err_set(e, "%s: out of memory", path);
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, fp);
		n += r;
		if (n > max) {
			err_set(e, "%s: larger than %zu bytes", path, max);
			goto fail;
		}
		if (r == 0)
			break;
	}
	if (ferror(fp)) {
		err_set(e, "%s: read error", path);
		goto fail;
	}
	fclose(fp);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
fail:
	fclose(fp);
	free(buf);
	return NULL;
}
