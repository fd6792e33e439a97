/* safetensors.h - a bounds-checked reader of Hugging Face safetensors files and shard sets. */
#ifndef GUARDD_SAFETENSORS_H
#define GUARDD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

struct st_set;

struct st_tensor {
	char *name;
	char dtype[16];		/* as written: "F32", "BF16", ... */
	int type;		/* ggml type id for F32/F16/BF16, -1 for others */
	uint32_t n_dims;
	uint64_t shape[4];	/* row-major: shape[n_dims-1] is contiguous */
	const void *data;	/* into the mapping; valid until st_close */
	size_t nbytes;
	uint64_t offset;	/* data_offsets[0]: from the start of its file's data buffer */
	const char *file;	/* the shard it lives in */
};

/* Opens one .safetensors file. */
struct st_set *st_open_file(const char *path, struct err *e);
/* Opens the weights of a Hugging Face model directory: model.safetensors.index.json and its
 * shards when present, else model.safetensors. */
struct st_set *st_open_dir(const char *dir, struct err *e);
void st_close(struct st_set *s);
const struct st_tensor *st_find(const struct st_set *s, const char *name);
size_t st_count(const struct st_set *s);
struct mapfile;
/* The mapped files (one, or every shard), in the order they were opened. */
size_t st_n_files(const struct st_set *s);
const struct mapfile *st_file_map(const struct st_set *s, size_t i);
const struct st_tensor *st_at(const struct st_set *s, size_t i);

#endif
