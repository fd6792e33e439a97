/* model_export.h - a model's weights and metadata as llama.cpp's GGUF files hold them, for
 * writing a model out again (guard quantize): from a GGUF source, its own tensors and
 * metadata entries; from a Hugging Face directory, what llama.cpp's convert_hf_to_gguf.py
 * would write (GGUF tensor names, q/k rows in the interleaved rotary order, norms as F32,
 * llama3 rope scaling as rope_freqs.weight, the tokenizer as tokenizer.ggml.* arrays). */
#ifndef GUARDD_MODEL_EXPORT_H
#define GUARDD_MODEL_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/model.h"
#include "util/err.h"

struct gguf_writer;

struct xtensor {
	char name[64];		/* GGUF name, e.g. "blk.0.attn_q.weight" */
	uint32_t type;		/* stored type of data (F32, F16, BF16, or any GGUF type) */
	uint32_t out_type;	/* the type a plain copy has in GGUF (HF 1-D tensors: F32) */
	uint32_t n_dims;
	uint64_t ne[4];		/* ne[0] innermost */
	const void *data;	/* valid until model_close (or model_export_free) */
	int permute_heads;	/* > 0: HF q/k rows, reordered per head on reading */
};

struct xtensors {
	struct xtensor *t;
	size_t n;
	float *own;		/* data made here (rope_freqs of an HF source) */
};

/* The model's tensors in llama-quantize's order (non-layer tensors first, then by layer,
 * each group sorted by name). */
int model_export_tensors(const struct model *m, struct xtensors *out, struct err *e);
void model_export_free(struct xtensors *x);

/* Row r of a 2-D tensor (or the whole of a 1-D one) as float32, rows in GGUF order; t->type
 * must be F32, F16 or BF16. */
void model_export_row(const struct xtensor *t, uint64_t r, float *out);

/* Adds the model's metadata to w: a GGUF source's entries as stored, an HF directory's as
 * convert_hf_to_gguf.py writes them. */
int model_export_meta(const struct model *m, struct gguf_writer *w, struct err *e);

#endif
