/* gguf.h - a bounds-checked reader of GGUF v2/v3 files (header, metadata, tensor index). */
#ifndef GUARDD_GGUF_H
#define GUARDD_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

/* ggml tensor type ids (ggml.h). */
enum ggml_type {
	GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1, GGML_TYPE_Q4_0 = 2, GGML_TYPE_Q4_1 = 3,
	GGML_TYPE_Q5_0 = 6, GGML_TYPE_Q5_1 = 7, GGML_TYPE_Q8_0 = 8, GGML_TYPE_Q8_1 = 9,
	GGML_TYPE_Q2_K = 10, GGML_TYPE_Q3_K = 11, GGML_TYPE_Q4_K = 12, GGML_TYPE_Q5_K = 13,
	GGML_TYPE_Q6_K = 14, GGML_TYPE_Q8_K = 15, GGML_TYPE_I8 = 24, GGML_TYPE_I16 = 25,
	GGML_TYPE_I32 = 26, GGML_TYPE_I64 = 27, GGML_TYPE_F64 = 28, GGML_TYPE_BF16 = 30,
};

/* GGUF metadata value types. */
enum gguf_vtype {
	GGUF_U8 = 0, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL,
	GGUF_STR, GGUF_ARR, GGUF_U64, GGUF_I64, GGUF_F64, GGUF_NTYPES
};

struct gguf;

struct gguf_str {
	const char *p;		/* not NUL-terminated; points into the mapping */
	size_t n;
};

struct gguf_tensor {
	char *name;
	uint32_t type;		/* enum ggml_type */
	uint32_t n_dims;
	uint64_t ne[4];		/* ne[0] is the contiguous (innermost) dimension */
	uint64_t offset;	/* relative to the data section */
	const void *data;	/* into the mapping; valid until gguf_close */
	size_t nbytes;
};

/* Maps and validates a GGUF file. Every count, length and offset is checked against the file. */
struct gguf *gguf_open(const char *path, struct err *e);
void gguf_close(struct gguf *g);
const char *gguf_path(const struct gguf *g);
struct mapfile;
/* The mapping of the whole file (for its content hash). */
const struct mapfile *gguf_map(const struct gguf *g);
uint32_t gguf_version(const struct gguf *g);

/* Metadata lookups. The _get_ functions fail with a message naming the key when it is
 * missing or of the wrong type; integers of any width are accepted when they fit. */
int gguf_has(const struct gguf *g, const char *key);
int gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out, struct err *e);
int gguf_get_f32(const struct gguf *g, const char *key, float *out, struct err *e);
int gguf_get_bool(const struct gguf *g, const char *key, int *out, struct err *e);
int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out, struct err *e);
/* String array: *out points to n entries, valid until gguf_close. */
int gguf_get_arr_str(const struct gguf *g, const char *key, const struct gguf_str **out,
    size_t *n, struct err *e);
/* Numeric array of exactly elem type `want`: raw little-endian elements. */
int gguf_get_arr(const struct gguf *g, const char *key, enum gguf_vtype want,
    const void **out, size_t *n, struct err *e);

/* The i-th metadata entry (i < gguf_n_kv) in file order: its key, value type and the value's
 * bytes exactly as stored after the type field (for copying it into another file); valid
 * until gguf_close. */
size_t gguf_n_kv(const struct gguf *g);
void gguf_kv_at(const struct gguf *g, size_t i, const char **key, uint32_t *type,
    const void **raw, size_t *n);
size_t gguf_n_tensors(const struct gguf *g);
const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, size_t i);
const struct gguf_tensor *gguf_tensor_find(const struct gguf *g, const char *name);

/* Block size (elements) and bytes per block of a ggml type; 0 when the id is unknown. */
int ggml_type_size(uint32_t type, uint64_t *block, uint64_t *bytes);
const char *ggml_type_name(uint32_t type);

#endif
