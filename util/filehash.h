/* filehash.h - the SHA-256 of a mapped file, cached in a sidecar "<file>.sha256" so a large
 * model is read in full once, not at every start. */
#ifndef GUARDD_FILEHASH_H
#define GUARDD_FILEHASH_H

#include "util/mapfile.h"

/* Fills hex (64 digits + NUL) with the SHA-256 of m's bytes. The sidecar holds the digest
 * with the file's size, mtime and ctime (ns), inode and device; it is used only when all
 * match the mapping, else (absent, stale, corrupt) the hash is computed and the sidecar
 * rewritten (atomically, by rename). A sidecar that cannot be written is not an error.
 * *cached (may be NULL) tells whether the sidecar was used. */
void filehash_sha256(const struct mapfile *m, char hex[65], int *cached);

#endif
