/* gguf_write.h - writes a GGUF v3 file: metadata, tensor index, aligned data (32 bytes, or
 * what a general.alignment entry says), streamed tensor by tensor into a temporary file
 * beside the target and renamed over it on success (a failed or interrupted write never
 * leaves a half file under the final name). */
#ifndef GUARDD_GGUF_WRITE_H
#define GUARDD_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include "core/gguf.h"
#include "util/err.h"

struct gguf_writer;

/* A writer for path; nothing touches the disk before gguf_writer_begin. */
struct gguf_writer *gguf_writer_new(const char *path, struct err *e);
/* Removes the temporary file unless gguf_writer_finish succeeded. */
void gguf_writer_free(struct gguf_writer *w);

/* Metadata, in the order given. Setting a key that is already there removes the old entry
 * and appends the new one (as ggml's gguf_set_val_* do). raw: the value bytes as GGUF stores
 * them after the type field (gguf_kv_at). */
int gguf_writer_kv_raw(struct gguf_writer *w, const char *key, uint32_t type, const void *raw,
    size_t n, struct err *e);
int gguf_writer_kv_u32(struct gguf_writer *w, const char *key, uint32_t v, struct err *e);
int gguf_writer_kv_i32(struct gguf_writer *w, const char *key, int32_t v, struct err *e);
int gguf_writer_kv_f32(struct gguf_writer *w, const char *key, float v, struct err *e);
int gguf_writer_kv_bool(struct gguf_writer *w, const char *key, int v, struct err *e);
int gguf_writer_kv_str(struct gguf_writer *w, const char *key, const char *s, size_t n,
    struct err *e);
/* An array of n strings (s[i], len[i] bytes each). */
int gguf_writer_kv_arr_str(struct gguf_writer *w, const char *key, const char *const *s,
    const size_t *len, size_t n, struct err *e);
/* An array of n numbers of element type et (little-endian, as in memory on this host). */
int gguf_writer_kv_arr(struct gguf_writer *w, const char *key, enum gguf_vtype et,
    const void *data, size_t n, struct err *e);

/* Declares the next tensor (ne[0] innermost; ne[0] a multiple of the type's block). */
int gguf_writer_tensor(struct gguf_writer *w, const char *name, uint32_t type,
    uint32_t n_dims, const uint64_t ne[4], struct err *e);
/* Bytes of the declared tensor i. */
size_t gguf_writer_tensor_bytes(const struct gguf_writer *w, size_t i);

/* Creates the temporary file and writes the header, metadata and tensor index. */
int gguf_writer_begin(struct gguf_writer *w, struct err *e);
/* Appends tensor data in declaration order, in pieces of any size; the padding after each
 * tensor is written when its last byte is. */
int gguf_writer_write(struct gguf_writer *w, const void *p, size_t n, struct err *e);
/* Checks that every tensor is complete, flushes to disk and renames onto the target. */
int gguf_writer_finish(struct gguf_writer *w, struct err *e);

#endif
