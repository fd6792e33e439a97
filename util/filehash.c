/* filehash.c - SHA-256 of a mapped file with a sidecar cache. Trusting the sidecar is no
 * weaker than trusting the file: whoever can write beside the model can replace it. */
#include "util/filehash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/sha256.h"

#define SIDECAR_MAX 512

static void
line_for(const struct mapfile *m, const char *hex, char *out, size_t n)
{
	snprintf(out, n, "sha256 %s size %llu mtime_ns %llu ctime_ns %llu ino %llu dev %llu\n",
	    hex, (unsigned long long)m->size, (unsigned long long)m->mtime_ns,
	    (unsigned long long)m->ctime_ns, (unsigned long long)m->ino,
	    (unsigned long long)m->dev);
}

/* The sidecar's digest when its line is exactly the one this file would get. */
static int
read_sidecar(const struct mapfile *m, const char *side, char hex[65])
{
	char buf[SIDECAR_MAX + 1], want[SIDECAR_MAX];
	FILE *fp = fopen(side, "rb");
	size_t n;

	if (fp == NULL)
		return 0;
	n = fread(buf, 1, SIDECAR_MAX, fp);
	fclose(fp);
	buf[n] = '\0';
	if (n < 7 + 64 || memcmp(buf, "sha256 ", 7) != 0 ||
	    strspn(buf + 7, "0123456789abcdef") != 64)
		return 0;
	memcpy(hex, buf + 7, 64);
	hex[64] = '\0';
	line_for(m, hex, want, sizeof(want));
	return strlen(want) == n && memcmp(want, buf, n) == 0;
}

static void
write_sidecar(const struct mapfile *m, const char *side, const char *hex)
{
	char tmp[4300], line[SIDECAR_MAX];
	FILE *fp;

	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", side, (long)getpid()) >= (int)sizeof(tmp))
		return;
	line_for(m, hex, line, sizeof(line));
	if ((fp = fopen(tmp, "wbx")) == NULL)
		return;
	int bad = fputs(line, fp) == EOF;
	bad |= fclose(fp) != 0;
	if (bad || rename(tmp, side) != 0)
		unlink(tmp);
}

void
filehash_sha256(const struct mapfile *m, char hex[65], int *cached)
{
	char side[4200];
	int hit = 0;

	/* a path too long for the sidecar's name: no cache, never a truncated name */
	int room = m->path != NULL && strlen(m->path) + 32 < sizeof(side);
	if (room) {
		snprintf(side, sizeof(side), "%s.sha256", m->path);
		hit = read_sidecar(m, side, hex);
	}
	if (!hit) {
		sha256_hex(m->data ? (const void *)m->data : "", m->size, hex);
		if (room)
			write_sidecar(m, side, hex);
	}
	if (cached != NULL)
		*cached = hit;
}
