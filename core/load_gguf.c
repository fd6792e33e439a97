/* load_gguf.c - a llama.cpp-convention GGUF: llama.* keys, blk.N.* tensors, q/k rows in the
 * interleaved rotary layout, llama3 scaling as rope_freqs.weight. */
#include "core/model_int.h"
#include "core/mllama_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "core/tok.h"
#include "util/mapfile.h"

static int
get_weight(struct model *m, const char *name, int64_t rows, int64_t cols, int optional,
    struct weight *w, struct err *e)
{
	const struct gguf_tensor *t = gguf_tensor_find(m->gguf, name);

	if (t == NULL) {
		if (optional)
			return 1;
		return err_set(e, "%s: missing tensor '%s'", m->path, name);
	}
	if (!matmul_supported((int)t->type))
		return err_set(e, "%s: tensor '%s': type %s is not supported (F32, F16, BF16, Q8_0, "
		    "Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, Q8_K)", m->path, name,
		    ggml_type_name(t->type));
	if (t->n_dims != 2 || (int64_t)t->ne[0] != cols || (int64_t)t->ne[1] != rows)
		return err_set(e, "%s: tensor '%s': shape [%llu, %llu] (%u dims), expected [%lld, %lld]",
		    m->path, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
		    t->n_dims, (long long)cols, (long long)rows);
	w->data = t->data;
	w->type = (int)t->type;
	w->rows = rows;
	w->cols = cols;
	return 0;
}

static float *
get_vec(struct model *m, const char *name, int64_t n, struct err *e)
{
	const struct gguf_tensor *t = gguf_tensor_find(m->gguf, name);
	float *v;

	if (t == NULL) {
		err_set(e, "%s: missing tensor '%s'", m->path, name);
		return NULL;
	}
	if (t->n_dims != 1 || (int64_t)t->ne[0] != n) {
		err_set(e, "%s: tensor '%s': %llu elements (%u dims), expected %lld", m->path, name,
		    (unsigned long long)t->ne[0], t->n_dims, (long long)n);
		return NULL;
	}
	if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16 && t->type != GGML_TYPE_BF16) {
		err_set(e, "%s: tensor '%s': type %s is not supported for vectors", m->path, name,
		    ggml_type_name(t->type));
		return NULL;
	}
	if ((v = vec_to_f32(t->data, (int)t->type, n)) == NULL)
		err_set(e, "out of memory");
	return v;
}

static int
get_int(struct model *m, const char *key, int *out, struct err *e)
{
	uint32_t v;

	if (gguf_get_u32(m->gguf, key, &v, e) == -1)
		return -1;
	if (v > (1u << 30))
		return err_set(e, "%s: %s = %u is out of range", m->path, key, v);
	*out = (int)v;
	return 0;
}

/* Every tensor in the file must be one the forward pass reads: a bias (blk.N.attn_q.bias) or
 * an extra projection would otherwise be dropped without a word. */
static int
known_tensor(const char *nm, int n_layer)
{
	static const char *const top[] = { "token_embd.weight", "output_norm.weight",
		"output.weight", "rope_freqs.weight" };
	static const char *const per_layer[] = { "attn_q.weight", "attn_k.weight", "attn_v.weight",
		"attn_output.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
		"attn_norm.weight", "ffn_norm.weight" };
	char canon[32];
	int l, used = 0;

	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
		if (strcmp(nm, top[i]) == 0)
			return 1;
	if (sscanf(nm, "blk.%d.%n", &l, &used) != 1 || used == 0 || l < 0 || l >= n_layer)
		return 0;
	snprintf(canon, sizeof(canon), "blk.%d.", l);
	if (strncmp(nm, canon, strlen(canon)) != 0)
		return 0;	/* "blk.+1." or "blk.01." name no layer */
	for (size_t i = 0; i < sizeof(per_layer) / sizeof(per_layer[0]); i++)
		if (strcmp(nm + used, per_layer[i]) == 0)
			return 1;
	return 0;
}

/* llama.cpp's general.file_type (enum llama_ftype): the name llama-quantize gave the mix */
static const char *
ftype_name(uint32_t ft)
{
	static const char *const names[] = { "F32", "F16", "Q4_0", "Q4_1", NULL, NULL, NULL,
		"Q8_0", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
		"Q5_K_S", "Q5_K_M", "Q6_K" };

	if (ft < sizeof(names) / sizeof(names[0]))
		return names[ft];
	return ft == 32 ? "BF16" : NULL;
}

/* The weight type as people name a file: one type alone ("Q8_0"), or a mix with its counts
 * over the matrices, after llama.cpp's name for it when the file says it:
 * "Q4_K_M (Q4_K x12, Q6_K x3)". */
struct tally {
	int type[64], count[64], n;
};

static void
tally_add(struct tally *t, const struct weight *w)
{
	int j = 0;

	while (j < t->n && t->type[j] != w->type)
		j++;
	if (j == t->n) {
		if (t->n == 64)
			return;
		t->type[t->n] = w->type;
		t->count[t->n++] = 0;
	}
	t->count[j]++;
}

void
gguf_describe_types(struct model *m)
{
	const struct hparams *h = &m->hp;
	struct tally t = { .n = 0 };
	int *type = t.type, *count = t.count, nt, len = 0;

	tally_add(&t, &m->tok_embd);
	if (!h->tied)
		tally_add(&t, &m->output);
	for (int l = 0; l < h->n_layer; l++) {
		const struct layer *L = &m->layers[l];
		const struct weight *lw[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down };
		for (int i = 0; i < 7; i++)
			tally_add(&t, lw[i]);
	}
	nt = t.n;
	/* most frequent first (a stable insertion sort: ties keep the order of appearance) */
	for (int i = 1; i < nt; i++)
		for (int j = i; j > 0 && count[j] > count[j - 1]; j--) {
			int ty = type[j], c = count[j];
			type[j] = type[j - 1], count[j] = count[j - 1];
			type[j - 1] = ty, count[j - 1] = c;
		}
	m->wtype = type[0];
	if (nt == 1) {
		snprintf(m->wdesc, sizeof(m->wdesc), "%s", ggml_type_name((uint32_t)type[0]));
		return;
	}
	uint32_t ft;
	struct err ig;
	const char *fname = NULL;
	if (gguf_has(m->gguf, "general.file_type") &&
	    gguf_get_u32(m->gguf, "general.file_type", &ft, &ig) == 0)
		fname = ftype_name(ft);
	if (fname != NULL)
		len = snprintf(m->wdesc, sizeof(m->wdesc), "%s (", fname);
	for (int i = 0; i < nt && len >= 0 && (size_t)len < sizeof(m->wdesc); i++)
		len += snprintf(m->wdesc + len, sizeof(m->wdesc) - (size_t)len, "%s%s x%d",
		    i ? ", " : "", ggml_type_name((uint32_t)type[i]), count[i]);
	if (fname != NULL && len >= 0 && (size_t)len < sizeof(m->wdesc))
		snprintf(m->wdesc + len, sizeof(m->wdesc) - (size_t)len, ")");
}

static int
key_is(const struct gguf_str *s, const char *v)
{
	return s->n == strlen(v) && memcmp(s->p, v, s->n) == 0;
}

/* llama.cpp stores Llama 3.1's llama3 rope scaling as the rope_freqs.weight tensor, and reads
 * llama.rope.scaling.factor without a type as linear scaling. Anything this loader would run
 * unscaled (or scaled differently from llama.cpp and transformers) is refused here. */
static int
check_rope_scaling(struct model *m, const char *path, struct err *e)
{
	const struct hparams *h = &m->hp;
	int has_freqs = gguf_tensor_find(m->gguf, "rope_freqs.weight") != NULL;
	struct gguf_str st = { "none", 4 };
	float factor = 1.0f;

	if (gguf_has(m->gguf, "llama.rope.scaling.type") &&
	    gguf_get_str(m->gguf, "llama.rope.scaling.type", &st, e) == -1)
		return -1;
	if (gguf_has(m->gguf, "llama.rope.scaling.factor") &&
	    gguf_get_f32(m->gguf, "llama.rope.scaling.factor", &factor, e) == -1)
		return -1;
	if (key_is(&st, "llama3")) {
		if (!has_freqs)
			return err_set(e, "%s: llama.rope.scaling.type is 'llama3' but the file has no "
			    "rope_freqs.weight tensor holding its frequency factors", path);
		return 0;
	}
	if (!key_is(&st, "none"))
		return err_set(e, "%s: llama.rope.scaling.type '%.*s' is not supported (none, or "
		    "llama3 with rope_freqs.weight)", path, (int)(st.n > 32 ? 32 : st.n), st.p);
	if (factor != 1.0f && factor != 0.0f && !gguf_has(m->gguf, "llama.rope.scaling.type"))
		return err_set(e, "%s: llama.rope.scaling.factor %g without a scaling type means "
		    "linear scaling to llama.cpp, which is not supported", path, (double)factor);
	/* the signature of a Llama 3.1+ checkpoint converted before llama.cpp wrote rope_freqs:
	 * Llama 3.0 has an 8192-token context; 3.1 and later have 131072 and llama3 scaling */
	if (!has_freqs && h->rope_theta == 500000.0f && h->n_ctx_train > 8192)
		return err_set(e, "%s: llama.context_length %d with llama.rope.freq_base 500000 is a "
		    "Llama 3.1+ model, whose llama3 rope scaling must come as the rope_freqs.weight "
		    "tensor, and this file has none (converted by an old llama.cpp?): it would run "
		    "unscaled; reconvert it", path, h->n_ctx_train);
	return 0;
}

/* A pruned head's map (README "Pruned output heads"): guardd.output_token_ids, an array of
 * u32 or i32 holding the token id of each row of output.weight. Required when the head has
 * fewer rows than the vocabulary; refused with a tied head (the embedding's rows are the
 * vocabulary). */
static int
load_head(struct model *m, const char *path, struct err *e)
{
	static const char key[] = "guardd.output_token_ids";
	const void *raw;
	size_t n;
	int is_i32 = 0;
	struct err ig;

	if (!gguf_has(m->gguf, key)) {
		if (m->output.rows < m->hp.n_vocab)
			return err_set(e, "%s: tensor 'output.weight' has %lld rows, fewer than the "
			    "vocabulary's %d: a pruned head needs the metadata key %s (the token id "
			    "of each row), and the file has none", path, (long long)m->output.rows,
			    m->hp.n_vocab, key);
		return 0;
	}
	if (m->hp.tied)
		return err_set(e, "%s: %s is set but the file has no output.weight (the head is "
		    "the embedding matrix, one row per token)", path, key);
	if (gguf_get_arr(m->gguf, key, GGUF_U32, &raw, &n, &ig) == -1) {
		if (gguf_get_arr(m->gguf, key, GGUF_I32, &raw, &n, &ig) == -1)
			return err_set(e, "%s: %s must be an array of u32 or i32", path, key);
		is_i32 = 1;
	}
	int64_t *ids = reallocarray(NULL, n ? n : 1, sizeof(*ids));
	if (ids == NULL)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		int32_t s;
		memcpy(&u, (const char *)raw + 4 * i, 4);	/* GGUF arrays are unaligned */
		memcpy(&s, &u, 4);
		ids[i] = is_i32 ? (int64_t)s : (int64_t)u;
	}
	int64_t off = (int64_t)((const unsigned char *)raw - gguf_map(m->gguf)->data);
	int rc = head_map_set(m, path, key, ids, n, off, e);
	free(ids);
	return rc;
}

int
load_gguf(struct model *m, const char *path, struct err *e)
{
	struct hparams *h = &m->hp;
	struct gguf_str arch;
	char name[96];
	float *freqs = NULL;
	int rc = -1;

	if ((m->gguf = gguf_open(path, e)) == NULL)
		return -1;
	if (gguf_get_str(m->gguf, "general.architecture", &arch, e) == -1)
		return -1;
	if (arch.n == 6 && memcmp(arch.p, "mllama", 6) == 0)
		return load_mllama_file(m, e);	/* Llama 3.2-Vision: core/mllama_gguf.c */
	if (arch.n != 5 || memcmp(arch.p, "llama", 5) != 0)
		return err_set(e, "%s: general.architecture '%.*s' is not supported (llama, mllama)", path,
		    (int)(arch.n > 32 ? 32 : arch.n), arch.p);
	if (get_int(m, "llama.embedding_length", &h->n_embd, e) ||
	    get_int(m, "llama.block_count", &h->n_layer, e) ||
	    get_int(m, "llama.feed_forward_length", &h->n_ff, e) ||
	    get_int(m, "llama.attention.head_count", &h->n_head, e) ||
	    gguf_get_f32(m->gguf, "llama.attention.layer_norm_rms_epsilon", &h->eps, e))
		return -1;
	h->n_head_kv = h->n_head;
	if (gguf_has(m->gguf, "llama.attention.head_count_kv") &&
	    get_int(m, "llama.attention.head_count_kv", &h->n_head_kv, e))
		return -1;
	h->rope_theta = 10000.0f;
	if (gguf_has(m->gguf, "llama.rope.freq_base") &&
	    gguf_get_f32(m->gguf, "llama.rope.freq_base", &h->rope_theta, e))
		return -1;
	h->n_ctx_train = 4096;
	if (gguf_has(m->gguf, "llama.context_length") &&
	    get_int(m, "llama.context_length", &h->n_ctx_train, e))
		return -1;
	if (h->n_head <= 0 || h->n_embd % h->n_head != 0)
		return err_set(e, "%s: embedding_length %d is not a multiple of head_count %d", path,
		    h->n_embd, h->n_head);
	h->head_dim = h->n_embd / h->n_head;
	if (gguf_has(m->gguf, "llama.attention.key_length") &&
	    get_int(m, "llama.attention.key_length", &h->head_dim, e))
		return -1;
	if (check_rope_scaling(m, path, e) == -1)
		return -1;
	if ((m->tok = tok_load_gguf(m->gguf, e)) == NULL)
		return -1;
	h->n_vocab = tok_n_vocab(m->tok);
	h->bos = tok_bos(m->tok);
	h->eos = tok_eos(m->tok);
	h->eot = tok_special(m->tok, "<|eot_id|>");
	if (gguf_has(m->gguf, "tokenizer.ggml.eot_token_id")) {
		uint32_t v;
		if (gguf_get_u32(m->gguf, "tokenizer.ggml.eot_token_id", &v, e) == -1)
			return -1;
		h->eot = v < (uint32_t)h->n_vocab ? (int32_t)v : -1;
	}
	if (h->n_embd <= 0 || h->n_layer <= 0 || h->n_layer > 1024 || h->head_dim <= 0 ||
	    h->n_head_kv <= 0)
		return err_set(e, "%s: inconsistent hyper-parameters", path);
	int64_t q = (int64_t)h->n_head * h->head_dim, kv = (int64_t)h->n_head_kv * h->head_dim;
	if (get_weight(m, "token_embd.weight", h->n_vocab, h->n_embd, 0, &m->tok_embd, e))
		return -1;
	/* a pruned head has fewer rows than the vocabulary: take its own count (load_head) */
	const struct gguf_tensor *ot = gguf_tensor_find(m->gguf, "output.weight");
	int64_t head_rows = ot != NULL && ot->n_dims == 2 && ot->ne[1] > 0 &&
	    ot->ne[1] < (uint64_t)h->n_vocab ? (int64_t)ot->ne[1] : h->n_vocab;
	int r = get_weight(m, "output.weight", head_rows, h->n_embd, 1, &m->output, e);
	if (r == -1)
		return -1;
	h->tied = r == 1;
	if (h->tied)
		m->output = m->tok_embd;
	if (load_head(m, path, e) == -1)
		return -1;
	if ((m->out_norm = get_vec(m, "output_norm.weight", h->n_embd, e)) == NULL)
		return -1;
	if ((m->layers = calloc((size_t)h->n_layer, sizeof(*m->layers))) == NULL)
		return err_set(e, "out of memory");
	for (int l = 0; l < h->n_layer; l++) {
		struct layer *L = &m->layers[l];
#define W(field, nm, rows, cols) do { snprintf(name, sizeof(name), "blk.%d." nm ".weight", l); \
		if (get_weight(m, name, rows, cols, 0, &L->field, e)) return -1; } while (0)
		W(wq, "attn_q", q, h->n_embd);
		W(wk, "attn_k", kv, h->n_embd);
		W(wv, "attn_v", kv, h->n_embd);
		W(wo, "attn_output", h->n_embd, q);
		W(gate, "ffn_gate", h->n_ff, h->n_embd);
		W(up, "ffn_up", h->n_ff, h->n_embd);
		W(down, "ffn_down", h->n_embd, h->n_ff);
#undef W
		snprintf(name, sizeof(name), "blk.%d.attn_norm.weight", l);
		if ((L->attn_norm = get_vec(m, name, h->n_embd, e)) == NULL)
			return -1;
		snprintf(name, sizeof(name), "blk.%d.ffn_norm.weight", l);
		if ((L->ffn_norm = get_vec(m, name, h->n_embd, e)) == NULL)
			return -1;
	}
	for (size_t i = 0; i < gguf_n_tensors(m->gguf); i++) {
		const char *nm = gguf_tensor_at(m->gguf, i)->name;
		if (!known_tensor(nm, h->n_layer))
			return err_set(e, "%s: tensor '%s' is not part of a Llama model this loader "
			    "computes (it would be ignored)", path, nm);
	}
	gguf_describe_types(m);
	m->rope_halves = 0;
	if (gguf_tensor_find(m->gguf, "rope_freqs.weight") != NULL) {
		if ((freqs = get_vec(m, "rope_freqs.weight", h->head_dim / 2, e)) == NULL)
			return -1;
		h->rope_llama3 = 1;
		for (int i = 0; i < h->head_dim / 2; i++)
			if (!(freqs[i] > 0)) {
				free(freqs);
				return err_set(e, "%s: rope_freqs.weight[%d] must be positive", path, i);
			}
	}
	rc = model_finish(m, freqs, e);
	free(freqs);
	return rc;
}
