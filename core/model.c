/* model.c - opening a model in either format, the rope table, and accessors. */
#include "core/model_int.h"
#include "core/mllama_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/gguf.h"
#include "core/half.h"
#include "core/safetensors.h"
#include "core/tok.h"
#include "util/filehash.h"
#include "util/mapfile.h"
#include "util/sha256.h"

float *
vec_to_f32(const void *data, int type, int64_t n)
{
	float *v = n < 0 ? NULL : reallocarray(NULL, (size_t)n, sizeof(float));

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
	if ((m->rope_inv = reallocarray(NULL, (size_t)half, sizeof(float))) == NULL)
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

/* The model hash (model.h): a GGUF file's SHA-256; for a Hugging Face directory, the SHA-256
 * of the text `sha256sum` prints for the files the loader reads (config.json, tokenizer.json
 * when present, else tokenizer.model when present, model.safetensors or
 * model.safetensors.index.json and its shards, and for a vision model
 * preprocessor_config.json when present: its tiling, mean and std change what an image
 * becomes), sorted by name in byte order:
 * "<hex>  <name>\n" per file. Each file's digest is cached in a sidecar
 * beside it (util/filehash.h). */
struct named {
	char name[256];
	char hex[65];
};

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

static int
hash_hf(struct model *m, struct err *e)
{
	static const char *const small[] = { "config.json", "tokenizer.json", "tokenizer.model",
		"model.safetensors.index.json", "preprocessor_config.json" };
	enum { N_SMALL = sizeof(small) / sizeof(small[0]) };
	size_t nf = st_n_files(m->st), n = 0;
	struct named *f = calloc(nf + N_SMALL, sizeof(*f));
	char path[4200];
	int all_cached = 1, c, have_json = 0;

	if (f == NULL)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < N_SMALL; i++) {
		struct mapfile mf;
		struct err ig;
		snprintf(path, sizeof(path), "%s/%s", m->path, small[i]);
		if (access(path, F_OK) != 0 && i > 0)
			continue;	/* optional ones; config.json was read, so it is there */
		if (i == 2 && have_json)
			continue;	/* the loader read tokenizer.json, not tokenizer.model */
		if (i == 4 && m->mm == NULL)
			continue;	/* only a vision model's images are preprocessed by it */
		if (mapfile_open(&mf, path, i == 0 ? e : &ig) == -1) {
			if (i > 0)
				continue;
			free(f);
			return -1;
		}
		if (i == 1)
			have_json = 1;	/* readable, so the loader took it (load_hf.c) */
		snprintf(f[n].name, sizeof(f[n].name), "%s", small[i]);
		filehash_sha256(&mf, f[n++].hex, &c);
		all_cached &= c;
		mapfile_close(&mf);
	}
	for (size_t i = 0; i < nf; i++) {
		const struct mapfile *mf = st_file_map(m->st, i);
		const char *base = strrchr(mf->path, '/');
		snprintf(f[n].name, sizeof(f[n].name), "%s", base ? base + 1 : mf->path);
		filehash_sha256(mf, f[n++].hex, &c);
		all_cached &= c;
	}
	qsort(f, n, sizeof(*f), by_name);
	struct sha256 h;
	unsigned char d[32];
	sha256_init(&h);
	for (size_t i = 0; i < n; i++) {
		sha256_update(&h, f[i].hex, 64);
		sha256_update(&h, "  ", 2);
		sha256_update(&h, f[i].name, strlen(f[i].name));
		sha256_update(&h, "\n", 1);
	}
	sha256_final(&h, d);
	for (int i = 0; i < 32; i++)
		snprintf(m->hash + 2 * i, 3, "%02x", d[i]);
	m->hash_cached = all_cached;
	free(f);
	return 0;
}

static int
compute_hash(struct model *m, struct err *e)
{
	if (m->gguf != NULL) {
		filehash_sha256(gguf_map(m->gguf), m->hash, &m->hash_cached);
		return 0;
	}
	return hash_hf(m, e);
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
	if (compute_hash(m, e) == -1) {
		model_close(m);
		return NULL;
	}
	return m;
}

void
model_close(struct model *m)
{
	if (m == NULL)
		return;
	mllama_free(m);
	if (m->layers != NULL)
		for (int i = 0; i < m->hp.n_layer; i++) {
			free(m->layers[i].attn_norm);
			free(m->layers[i].ffn_norm);
		}
	free(m->layers);
	free(m->out_norm);
	free(m->out_ids);
	free(m->rope_inv);
	free(m->path);
	tok_free(m->tok);
	gguf_close(m->gguf);
	st_close(m->st);
	free(m);
}

const struct hparams *model_hparams(const struct model *m) { return &m->hp; }
const struct tok *model_tok(const struct model *m) { return m->tok; }
const char *
model_weight_type(const struct model *m)
{
	return m->wdesc[0] ? m->wdesc : ggml_type_name((uint32_t)m->wtype);
}
static size_t
matrix_bytes(const struct weight *w)
{
	uint64_t block = 1, bytes = 4;

	ggml_type_size((uint32_t)w->type, &block, &bytes);
	return (size_t)(w->cols / (int64_t)block) * (size_t)bytes * (size_t)w->rows;
}

/* every layer matrix and the head; of the embedding only one row per token */
size_t
model_weight_bytes_per_token(const struct model *m)
{
	size_t n = matrix_bytes(&m->output);

	for (int l = 0; l < m->hp.n_layer; l++) {
		const struct layer *L = &m->layers[l];
		n += matrix_bytes(&L->wq) + matrix_bytes(&L->wk) + matrix_bytes(&L->wv) +
		    matrix_bytes(&L->wo) + matrix_bytes(&L->gate) + matrix_bytes(&L->up) +
		    matrix_bytes(&L->down);
	}
	return n + matrix_bytes(&m->tok_embd) / (size_t)m->tok_embd.rows;
}

int model_matrix_type(const struct model *m) { return m->wtype; }
const char *model_path(const struct model *m) { return m->path; }
const char *model_format(const struct model *m) { return m->format; }
const char *model_hash(const struct model *m) { return m->hash; }
int model_hash_cached(const struct model *m) { return m->hash_cached; }
