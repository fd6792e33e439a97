/* model.c - opening a model in either format, the rope table, and accessors. */
#include "core/model_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/gguf.h"
#include "core/half.h"
#include "core/safetensors.h"
#include "core/tok.h"

float *
vec_to_f32(const void *data, int type, int64_t n)
{
	float *v = malloc((size_t)n * sizeof(float));

	if (v == NULL)
		return NULL;
	for (int64_t i = 0; i < n; i++) {
		if (type == GGML_TYPE_F32)
			memcpy(&v[i], (const char *)data + 4 * i, 4);
		else if (type == GGML_TYPE_F16)
			v[i] = f16_to_f32(((const uint16_t *)data)[i]);
		else
			v[i] = bf16_to_f32(((const uint16_t *)data)[i]);
	}
	return v;
}

int
model_finish(struct model *m, const float *rope_freqs, struct err *e)
{
	struct hparams *h = &m->hp;
	int half = h->head_dim / 2;

	if (h->n_embd <= 0 || h->n_layer <= 0 || h->n_head <= 0 || h->n_head_kv <= 0 ||
	    h->head_dim <= 0 || h->n_ff <= 0 || h->n_vocab <= 0 || h->n_layer > 1024 ||
	    h->head_dim % 2 != 0 || h->n_head % h->n_head_kv != 0)
		return err_set(e, "%s: inconsistent hyper-parameters (embd %d, layers %d, heads %d/%d, "
		    "head_dim %d, ffn %d, vocab %d)", m->path, h->n_embd, h->n_layer, h->n_head,
		    h->n_head_kv, h->head_dim, h->n_ff, h->n_vocab);
	if (!(h->eps > 0) || !(h->rope_theta > 0))
		return err_set(e, "%s: rms eps and rope theta must be positive", m->path);
	if ((m->rope_inv = malloc((size_t)half * sizeof(float))) == NULL)
		return err_set(e, "out of memory");
	for (int i = 0; i < half; i++) {
		/* as Hugging Face: float32 base^(-2i/d), scaled in float32 */
		float inv = (float)(1.0 / pow((double)h->rope_theta, (double)(2 * i) / h->head_dim));
		if (rope_freqs != NULL)
			inv = inv / rope_freqs[i];
		else if (h->rope_llama3) {
			double wl = 2 * M_PI / inv, lo = h->rope_orig_ctx / h->rope_low,
			    hi = h->rope_orig_ctx / h->rope_high;
			if (wl > lo)
				inv = inv / h->rope_factor;
			else if (wl >= hi) {
				double s = (h->rope_orig_ctx / wl - h->rope_low) / (h->rope_high - h->rope_low);
				inv = (float)((1 - s) * inv / h->rope_factor + s * inv);
			}
		}
		m->rope_inv[i] = inv;
	}
	return 0;
}

static void
compute_hash(struct model *m)
{
	/* FNV-1a over the hyper-parameters and 4 KiB samples of each matrix: cheap at load,
	 * different for different weights in practice, identical for one file */
	uint64_t h = 0xcbf29ce484222325ull;
	const struct weight *ws[4] = { &m->tok_embd, &m->output, &m->layers[0].wq,
		&m->layers[m->hp.n_layer - 1].down };

#define MIX(p, n) for (size_t _i = 0; _i < (n); _i++) { h ^= ((const unsigned char *)(p))[_i]; h *= 0x100000001b3ull; }
	MIX(&m->hp, sizeof(m->hp));
	for (int i = 0; i < 4; i++) {
		size_t bytes = (size_t)ws[i]->rows * (size_t)ws[i]->cols *
		    (ws[i]->type == GGML_TYPE_F32 ? 4 : 2);
		for (size_t off = 0; off < bytes; off += bytes / 16 + 1)
			MIX((const char *)ws[i]->data + off, bytes - off < 4096 ? bytes - off : 4096);
	}
#undef MIX
	snprintf(m->hash, sizeof(m->hash), "%016llx", (unsigned long long)h);
}

struct model *
model_open(const char *path, struct err *e)
{
	struct model *m = calloc(1, sizeof(*m));
	struct stat st;
	int rc;

	if (m == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	m->path = strdup(path);
	if (stat(path, &st) == -1) {
		err_set(e, "%s: no such file or directory", path);
		model_close(m);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		m->format = "hf";
		rc = load_hf(m, path, e);
	} else {
		m->format = "gguf";
		rc = load_gguf(m, path, e);
	}
	if (rc == -1) {
		model_close(m);
		return NULL;
	}
	compute_hash(m);
	return m;
}

void
model_close(struct model *m)
{
	if (m == NULL)
		return;
	if (m->layers != NULL)
		for (int i = 0; i < m->hp.n_layer; i++) {
			free(m->layers[i].attn_norm);
			free(m->layers[i].ffn_norm);
		}
	free(m->layers);
	free(m->out_norm);
	free(m->rope_inv);
	free(m->path);
	tok_free(m->tok);
	gguf_close(m->gguf);
	st_close(m->st);
	free(m);
}

const struct hparams *model_hparams(const struct model *m) { return &m->hp; }
const struct tok *model_tok(const struct model *m) { return m->tok; }
const char *model_weight_type(const struct model *m) { return ggml_type_name((uint32_t)m->wtype); }
const char *model_path(const struct model *m) { return m->path; }
const char *model_format(const struct model *m) { return m->format; }
const char *model_hash(const struct model *m) { return m->hash; }
