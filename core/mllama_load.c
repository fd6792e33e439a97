/* mllama_load.c - a Llama 3.2-Vision checkpoint as Meta publishes it on the Hub
 * (MllamaForConditionalGeneration): config.json with nested text_config/vision_config,
 * sharded safetensors under language_model.* / vision_model.* / multi_modal_projector.*,
 * tokenizer.json with <|image|> = 128256. Every tensor of the checkpoint must be read. */
#include "core/mllama_int.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "core/safetensors.h"
#include "core/tok.h"

struct ld {
	struct model *m;
	size_t used;		/* distinct tensors read (each name is read once) */
	const char *cfg;	/* config.json's path, for messages */
	struct st_tensor cur;	/* a GGUF tensor seen as a safetensors one (row-major shape) */
	char gname[96];
	unsigned char *seen;	/* GGUF: per tensor of the file, read */
};

/* The tensor of Hub name `name`: from the safetensors shards, or from an mllama GGUF file
 * under the name mllama_gguf_name gives it (its ne reversed into a row-major shape). */
static const struct st_tensor *
find(struct ld *L, const char *name)
{
	const struct gguf_tensor *g;

	if (L->m->gguf == NULL)
		return st_find(L->m->st, name);
	if (mllama_gguf_name(name, L->gname, sizeof(L->gname)) == -1 ||
	    (g = gguf_tensor_find(L->m->gguf, L->gname)) == NULL || g->n_dims > 4)
		return NULL;
	for (size_t i = 0; L->seen != NULL && i < gguf_n_tensors(L->m->gguf); i++)
		if (gguf_tensor_at(L->m->gguf, i) == g)
			L->seen[i] = 1;
	memset(&L->cur, 0, sizeof(L->cur));
	L->cur.name = g->name;
	snprintf(L->cur.dtype, sizeof(L->cur.dtype), "%s", ggml_type_name(g->type));
	L->cur.type = (int)g->type;
	L->cur.n_dims = g->n_dims;
	for (uint32_t i = 0; i < g->n_dims; i++)
		L->cur.shape[i] = g->ne[g->n_dims - 1 - i];
	L->cur.data = g->data;
	L->cur.nbytes = g->nbytes;
	L->cur.file = L->m->path;
	return &L->cur;
}

static int
jint(json_t *o, const char *where, const char *key, int def, int *out, struct ld *L, struct err *e)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v)) {
		if (def == -1)
			return err_set(e, "%s: %s: missing '%s'", L->cfg, where, key);
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1 << 30))
		return err_set(e, "%s: %s.%s must be a non-negative integer", L->cfg, where, key);
	*out = (int)json_integer_value(v);
	return 0;
}

static int
jnum(json_t *o, const char *where, const char *key, double def, float *out, struct ld *L,
    struct err *e)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v)) {
		if (def < 0)
			return err_set(e, "%s: %s: missing '%s'", L->cfg, where, key);
		*out = (float)def;
		return 0;
	}
	if (!json_is_number(v))
		return err_set(e, "%s: %s.%s must be a number", L->cfg, where, key);
	*out = (float)json_number_value(v);
	return 0;
}

/* a list of small non-negative integers below lim */
static int
jlist(json_t *o, const char *where, const char *key, int *out, int max, int lim, int *n,
    struct ld *L, struct err *e)
{
	json_t *v = json_object_get(o, key), *x;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) > (size_t)max)
		return err_set(e, "%s: %s.%s must be a list of at most %d layer indices", L->cfg,
		    where, key, max);
	json_array_foreach(v, i, x) {
		if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= lim)
			return err_set(e, "%s: %s.%s[%zu] must be a layer index (0 to %d)", L->cfg,
			    where, key, i, lim - 1);
		out[i] = (int)json_integer_value(x);
		for (size_t j = 0; j < i; j++)
			if (out[j] >= out[i])
				return err_set(e, "%s: %s.%s must be strictly increasing", L->cfg, where, key);
	}
	*n = (int)json_array_size(v);
	return 0;
}

int
mllama_config_is(const char *dir)
{
	char path[4200];
	json_t *c;
	int is;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	if ((c = json_load_file(path, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return 0;	/* load_hf reports it */
	const char *mt = json_string_value(json_object_get(c, "model_type"));
	is = mt != NULL && strcmp(mt, "mllama") == 0;
	json_decref(c);
	return is;
}

/* a tensor of exactly this shape (d1 = 0: 1-D; d2 = 0: at most 2-D) in F32/F16/BF16 */
static const struct st_tensor *
tens(struct ld *L, const char *name, int64_t d0, int64_t d1, int64_t d2, int64_t d3, struct err *e)
{
	const struct st_tensor *t = find(L, name);
	int64_t want[4] = { d0, d1, d2, d3 };
	uint32_t nd = d1 == 0 ? 1 : d2 == 0 ? 2 : d3 == 0 ? 3 : 4;

	if (t == NULL) {
		if (L->m->gguf != NULL)
			err_set(e, "%s: missing tensor '%s' (%s)", L->m->path, L->gname, name);
		else
			err_set(e, "%s: missing tensor '%s'", L->m->path, name);
		return NULL;
	}
	int bad = t->n_dims != nd;
	for (uint32_t i = 0; !bad && i < nd; i++)
		bad = (int64_t)t->shape[i] != want[i];
	if (bad) {
		char got[96] = "", exp[96] = "";
		for (uint32_t i = 0; i < t->n_dims && i < 4; i++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%llu", i ? ", " : "",
			    (unsigned long long)t->shape[i]);
		for (uint32_t i = 0; i < nd; i++)
			snprintf(exp + strlen(exp), sizeof(exp) - strlen(exp), "%s%lld", i ? ", " : "",
			    (long long)want[i]);
		err_set(e, "%s: tensor '%s': shape [%s], expected [%s]", t->file, name, got, exp);
		return NULL;
	}
	if (t->type < 0 || !matmul_supported(t->type)) {
		err_set(e, "%s: tensor '%s': dtype %s is not supported (F32, F16, BF16)", t->file,
		    name, t->dtype);
		return NULL;
	}
	L->used++;
	return t;
}

/* vectors, gates and the patch embedding are read as floats: never a quantized type */
static int
is_float(const struct st_tensor *t, struct err *e)
{
	if (t->type == GGML_TYPE_F32 || t->type == GGML_TYPE_F16 || t->type == GGML_TYPE_BF16)
		return 1;
	err_set(e, "%s: tensor '%s': type %s, expected F32, F16 or BF16", t->file, t->name, t->dtype);
	return 0;
}

/* a matrix the vision tower reads row by row or as a whole: stored as F32, F16 or BF16 */
static int
wget_f(struct ld *L, struct weight *w, int64_t rows, int64_t cols, struct err *e, const char *name)
{
	const struct st_tensor *t = tens(L, name, rows, cols, 0, 0, e);

	if (t == NULL || !is_float(t, e))
		return -1;
	*w = (struct weight){ t->data, t->type, rows, cols };
	return 0;
}

static int
wget(struct ld *L, struct weight *w, int64_t rows, int64_t cols, struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int
wget(struct ld *L, struct weight *w, int64_t rows, int64_t cols, struct err *e, const char *fmt, ...)
{
	char name[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	const struct st_tensor *t = tens(L, name, rows, cols, 0, 0, e);
	if (t == NULL)
		return -1;
	*w = (struct weight){ t->data, t->type, rows, cols };
	return 0;
}

/* a small tensor as floats: n elements, 1-D (d1 = 0) or (n / d1, d1) */
static float *
fget(struct ld *L, int64_t n, int64_t d1, struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static float *
fget(struct ld *L, int64_t n, int64_t d1, struct err *e, const char *fmt, ...)
{
	char name[256];
	va_list ap;
	float *v;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	const struct st_tensor *t = tens(L, name, d1 ? n / d1 : n, d1, 0, 0, e);
	if (t == NULL || !is_float(t, e))
		return NULL;
	if ((v = vec_to_f32(t->data, t->type, n)) == NULL)
		err_set(e, "out of memory");
	return v;
}

/* a scalar gate, returned as tanh(gate) (every use takes the tanh) */
static int
gget(struct ld *L, float *out, struct err *e, const char *name)
{
	float *v = fget(L, 1, 0, e, "%s", name);

	if (v == NULL)
		return -1;
	*out = tanhf(v[0]);
	free(v);
	return 0;
}

static int
text_config(struct ld *L, json_t *t, struct err *e)
{
	struct hparams *h = &L->m->hp;
	const char *w = "text_config";
	json_t *rs;

	if (!json_is_object(t))
		return err_set(e, "%s: 'text_config' is missing or not an object", L->cfg);
	if (jint(t, w, "hidden_size", -1, &h->n_embd, L, e) ||
	    jint(t, w, "num_hidden_layers", -1, &h->n_layer, L, e) ||
	    jint(t, w, "num_attention_heads", -1, &h->n_head, L, e) ||
	    jint(t, w, "intermediate_size", -1, &h->n_ff, L, e) ||
	    jint(t, w, "vocab_size", -1, &h->n_vocab, L, e) ||
	    jint(t, w, "num_key_value_heads", h->n_head, &h->n_head_kv, L, e) ||
	    jint(t, w, "max_position_embeddings", 131072, &h->n_ctx_train, L, e) ||
	    jnum(t, w, "rms_norm_eps", 1e-5, &h->eps, L, e) ||
	    jnum(t, w, "rope_theta", 500000.0, &h->rope_theta, L, e))
		return -1;
	if (h->n_head == 0 || h->n_embd % h->n_head != 0 || h->n_head_kv == 0 ||
	    h->n_head % h->n_head_kv != 0 || h->n_layer <= 0 || h->n_layer > 1024)
		return err_set(e, "%s: text_config: inconsistent heads or layers (hidden %d, heads "
		    "%d/%d, layers %d)", L->cfg, h->n_embd, h->n_head, h->n_head_kv, h->n_layer);
	h->head_dim = h->n_embd / h->n_head;
	const char *act = json_string_value(json_object_get(t, "hidden_act"));
	if (act != NULL && strcmp(act, "silu") != 0)
		return err_set(e, "%s: text_config.hidden_act '%s' is not supported (silu)", L->cfg, act);
	h->tied = json_is_true(json_object_get(t, "tie_word_embeddings"));
	json_t *b = json_object_get(t, "bos_token_id"), *eo = json_object_get(t, "eos_token_id");
	h->bos = json_is_integer(b) ? (int32_t)json_integer_value(b) : -1;
	if (json_is_array(eo))
		eo = json_array_get(eo, 0);
	h->eos = json_is_integer(eo) ? (int32_t)json_integer_value(eo) : -1;
	h->eot = -1;
	rs = json_object_get(t, "rope_scaling");
	if (rs != NULL && !json_is_null(rs)) {
		const char *type = json_string_value(json_object_get(rs, "rope_type"));
		if (type == NULL || strcmp(type, "llama3") != 0)
			return err_set(e, "%s: text_config.rope_scaling type '%s' is not supported "
			    "(llama3)", L->cfg, type ? type : "(none)");
		h->rope_llama3 = 1;
		if (jnum(rs, "rope_scaling", "factor", -1, &h->rope_factor, L, e) ||
		    jnum(rs, "rope_scaling", "low_freq_factor", 1.0, &h->rope_low, L, e) ||
		    jnum(rs, "rope_scaling", "high_freq_factor", 4.0, &h->rope_high, L, e) ||
		    jint(rs, "rope_scaling", "original_max_position_embeddings", 8192,
			&h->rope_orig_ctx, L, e))
			return -1;
		if (!(h->rope_factor > 0) || !(h->rope_high > h->rope_low) || h->rope_orig_ctx <= 0)
			return err_set(e, "%s: rope_scaling: factor must be > 0 and high_freq_factor > "
			    "low_freq_factor", L->cfg);
	}
	return 0;
}

static int
vision_config(struct ld *L, json_t *v, struct err *e)
{
	struct mllama *M = L->m->mm;
	const char *w = "vision_config";

	if (!json_is_object(v))
		return err_set(e, "%s: 'vision_config' is missing or not an object", L->cfg);
	if (jint(v, w, "hidden_size", -1, &M->dim, L, e) ||
	    jint(v, w, "attention_heads", -1, &M->heads, L, e) ||
	    jint(v, w, "intermediate_size", -1, &M->ff, L, e) ||
	    jint(v, w, "num_hidden_layers", -1, &M->n_local, L, e) ||
	    jint(v, w, "num_global_layers", -1, &M->n_global, L, e) ||
	    jint(v, w, "image_size", 560, &M->image, L, e) ||
	    jint(v, w, "patch_size", 14, &M->patch, L, e) ||
	    jint(v, w, "max_num_tiles", 4, &M->max_tiles, L, e) ||
	    jint(v, w, "vision_output_dim", -1, &M->out_dim, L, e) ||
	    jnum(v, w, "norm_eps", 1e-5, &M->eps, L, e))
		return -1;
	int nch = 3;
	if (jint(v, w, "num_channels", 3, &nch, L, e))
		return -1;
	if (M->n_local > 256 || M->n_global > 256)
		return err_set(e, "%s: vision_config: %d + %d layers (at most 256 each)", L->cfg,
		    M->n_local, M->n_global);
	if (jlist(v, w, "intermediate_layers_indices", M->inter, MLLAMA_MAX_INTER, M->n_local,
	    &M->n_inter, L, e))
		return -1;
	const char *act = json_string_value(json_object_get(v, "hidden_act"));
	if (act != NULL && strcmp(act, "gelu") != 0)
		return err_set(e, "%s: vision_config.hidden_act '%s' is not supported (gelu)", L->cfg, act);
	json_t *ar = json_object_get(v, "supported_aspect_ratios");
	M->n_ar = json_is_array(ar) ? (int)json_array_size(ar) : 8;
	if (nch != 3 || M->heads <= 0 || M->dim <= 0 || M->dim % M->heads != 0 || M->patch <= 0 ||
	    M->image % M->patch != 0 || M->image / M->patch > 256 || M->max_tiles <= 0 ||
	    M->max_tiles > 16 || M->out_dim != M->dim * (1 + M->n_inter) || M->ff <= 0 ||
	    M->n_ar <= 0 || M->n_ar > 64)
		return err_set(e, "%s: vision_config: inconsistent sizes (hidden %d, heads %d, image "
		    "%d, patch %d, tiles %d, vision_output_dim %d = hidden x (1 + %d intermediate "
		    "layers)?)", L->cfg, M->dim, M->heads, M->image, M->patch, M->max_tiles,
		    M->out_dim, M->n_inter);
	M->grid = M->image / M->patch;
	M->n_patch = M->grid * M->grid;
	M->n_tok = M->n_patch + 1;
	M->n_padded = (M->n_tok + 7) / 8 * 8;
	M->pk = (3 * M->patch * M->patch + 7) / 8 * 8;
	return 0;
}

static int
vision_layer(struct ld *L, struct vlayer *V, const char *stack, int i, int gated, struct err *e)
{
	struct mllama *M = L->m->mm;
	char p[96], g[160];

	snprintf(p, sizeof(p), "vision_model.%s.layers.%d", stack, i);
	if (wget(L, &V->wq, M->dim, M->dim, e, "%s.self_attn.q_proj.weight", p) ||
	    wget(L, &V->wk, M->dim, M->dim, e, "%s.self_attn.k_proj.weight", p) ||
	    wget(L, &V->wv, M->dim, M->dim, e, "%s.self_attn.v_proj.weight", p) ||
	    wget(L, &V->wo, M->dim, M->dim, e, "%s.self_attn.o_proj.weight", p) ||
	    wget(L, &V->fc1, M->ff, M->dim, e, "%s.mlp.fc1.weight", p) ||
	    wget(L, &V->fc2, M->dim, M->ff, e, "%s.mlp.fc2.weight", p))
		return -1;
	if ((V->fc1_b = fget(L, M->ff, 0, e, "%s.mlp.fc1.bias", p)) == NULL ||
	    (V->fc2_b = fget(L, M->dim, 0, e, "%s.mlp.fc2.bias", p)) == NULL ||
	    (V->ln1_w = fget(L, M->dim, 0, e, "%s.input_layernorm.weight", p)) == NULL ||
	    (V->ln1_b = fget(L, M->dim, 0, e, "%s.input_layernorm.bias", p)) == NULL ||
	    (V->ln2_w = fget(L, M->dim, 0, e, "%s.post_attention_layernorm.weight", p)) == NULL ||
	    (V->ln2_b = fget(L, M->dim, 0, e, "%s.post_attention_layernorm.bias", p)) == NULL)
		return -1;
	V->gate_attn = V->gate_ffn = 1;
	if (gated) {
		snprintf(g, sizeof(g), "%s.gate_attn", p);
		if (gget(L, &V->gate_attn, e, g))
			return -1;
		snprintf(g, sizeof(g), "%s.gate_ffn", p);
		if (gget(L, &V->gate_ffn, e, g))
			return -1;
	}
	return 0;
}

static int
vision_weights(struct ld *L, struct err *e)
{
	struct mllama *M = L->m->mm;
	int64_t d = M->dim, k = 3 * (int64_t)M->patch * M->patch;
	const struct st_tensor *t;

	/* Conv2d(3, dim, kernel = stride = patch, no bias) is a matmul over flattened patches
	 * (c, ky, kx); the row is padded to a multiple of 8 for the kernels */
	if ((t = tens(L, "vision_model.patch_embedding.weight", d, 3, M->patch, M->patch, e)) == NULL ||
	    !is_float(t, e))
		return -1;
	float *raw = vec_to_f32(t->data, t->type, d * k);
	if (raw == NULL || (M->patch_f32 = calloc((size_t)(d * M->pk), sizeof(float))) == NULL) {
		free(raw);
		return err_set(e, "out of memory");
	}
	for (int64_t r = 0; r < d; r++)
		memcpy(M->patch_f32 + r * M->pk, raw + r * k, (size_t)k * sizeof(float));
	free(raw);
	M->patch_w = (struct weight){ M->patch_f32, GGML_TYPE_F32, d, M->pk };
	int64_t rows = M->n_ar + 1;
	if ((M->cls = fget(L, d, 0, e, "vision_model.class_embedding")) == NULL ||
	    (M->pos = fget(L, M->n_tok * d, d, e, "vision_model.gated_positional_embedding.embedding")) == NULL ||
	    gget(L, &M->pos_gate, e, "vision_model.gated_positional_embedding.gate") ||
	    wget_f(L, &M->tile_pos, rows, M->max_tiles * M->n_tok * d, e,
		"vision_model.gated_positional_embedding.tile_embedding.weight") ||
	    wget_f(L, &M->pre_tile, rows, M->max_tiles * d, e,
		"vision_model.pre_tile_positional_embedding.embedding.weight") ||
	    gget(L, &M->pre_gate, e, "vision_model.pre_tile_positional_embedding.gate") ||
	    wget_f(L, &M->post_tile, rows, M->max_tiles * d, e,
		"vision_model.post_tile_positional_embedding.embedding.weight") ||
	    gget(L, &M->post_gate, e, "vision_model.post_tile_positional_embedding.gate") ||
	    (M->ln_pre_w = fget(L, d, 0, e, "vision_model.layernorm_pre.weight")) == NULL ||
	    (M->ln_pre_b = fget(L, d, 0, e, "vision_model.layernorm_pre.bias")) == NULL ||
	    (M->ln_post_w = fget(L, d, 0, e, "vision_model.layernorm_post.weight")) == NULL ||
	    (M->ln_post_b = fget(L, d, 0, e, "vision_model.layernorm_post.bias")) == NULL)
		return -1;
	M->local = calloc((size_t)M->n_local + 1, sizeof(*M->local));
	M->global = calloc((size_t)M->n_global + 1, sizeof(*M->global));
	if (M->local == NULL || M->global == NULL)
		return err_set(e, "out of memory");
	for (int i = 0; i < M->n_local; i++)
		if (vision_layer(L, &M->local[i], "transformer", i, 0, e))
			return -1;
	for (int i = 0; i < M->n_global; i++)
		if (vision_layer(L, &M->global[i], "global_transformer", i, 1, e))
			return -1;
	if (wget(L, &M->proj, L->m->hp.n_embd, M->out_dim, e, "multi_modal_projector.weight") ||
	    (M->proj_b = fget(L, L->m->hp.n_embd, 0, e, "multi_modal_projector.bias")) == NULL)
		return -1;
	return 0;
}

static int
text_weights(struct ld *L, const int *cross, int n_cross, struct err *e)
{
	struct model *m = L->m;
	struct hparams *h = &m->hp;
	int64_t q = (int64_t)h->n_head * h->head_dim, kv = (int64_t)h->n_head_kv * h->head_dim;
	const struct st_tensor *t = find(L, "language_model.model.embed_tokens.weight");
	/* embed_tokens has rows beyond the vocabulary (Meta's 8 appended ones; <|image|> is one) */
	int64_t er = t && t->n_dims == 2 && t->shape[0] >= (uint64_t)h->n_vocab &&
	    t->shape[0] <= (uint64_t)h->n_vocab + 64 ? (int64_t)t->shape[0] : h->n_vocab;
	char p[64];

	if (wget(L, &m->tok_embd, er, h->n_embd, e, "language_model.model.embed_tokens.weight") ||
	    wget(L, &m->output, h->n_vocab, h->n_embd, e, "language_model.lm_head.weight") ||
	    (m->out_norm = fget(L, h->n_embd, 0, e, "language_model.model.norm.weight")) == NULL)
		return -1;
	if (h->tied)
		return err_set(e, "%s: text_config.tie_word_embeddings is true: mllama has its own "
		    "lm_head", L->cfg);
	if (m->mm->image_token < h->n_vocab || m->mm->image_token >= er)
		return err_set(e, "%s: image_token_index %d is not one of embed_tokens' rows beyond "
		    "the vocabulary (%d to %lld)", L->cfg, m->mm->image_token, h->n_vocab,
		    (long long)er - 1);
	if ((m->layers = calloc((size_t)h->n_layer, sizeof(*m->layers))) == NULL)
		return err_set(e, "out of memory");
	for (int l = 0, slot = 0; l < h->n_layer; l++) {
		struct layer *Y = &m->layers[l];
		int x = slot < n_cross && cross[slot] == l;
		const char *a = x ? "cross_attn" : "self_attn";
		snprintf(p, sizeof(p), "language_model.model.layers.%d", l);
		if (wget(L, &Y->wq, q, h->n_embd, e, "%s.%s.q_proj.weight", p, a) ||
		    wget(L, &Y->wk, kv, h->n_embd, e, "%s.%s.k_proj.weight", p, a) ||
		    wget(L, &Y->wv, kv, h->n_embd, e, "%s.%s.v_proj.weight", p, a) ||
		    wget(L, &Y->wo, h->n_embd, q, e, "%s.%s.o_proj.weight", p, a) ||
		    wget(L, &Y->gate, h->n_ff, h->n_embd, e, "%s.mlp.gate_proj.weight", p) ||
		    wget(L, &Y->up, h->n_ff, h->n_embd, e, "%s.mlp.up_proj.weight", p) ||
		    wget(L, &Y->down, h->n_embd, h->n_ff, e, "%s.mlp.down_proj.weight", p) ||
		    (Y->attn_norm = fget(L, h->n_embd, 0, e, "%s.input_layernorm.weight", p)) == NULL ||
		    (Y->ffn_norm = fget(L, h->n_embd, 0, e, "%s.post_attention_layernorm.weight", p)) == NULL)
			return -1;
		if (!x)
			continue;
		struct xlayer *X = Y->xa = calloc(1, sizeof(*X));
		char g[128];
		if (X == NULL)
			return err_set(e, "out of memory");
		X->slot = slot++;
		if ((X->q_norm = fget(L, h->head_dim, 0, e, "%s.cross_attn.q_norm.weight", p)) == NULL ||
		    (X->k_norm = fget(L, h->head_dim, 0, e, "%s.cross_attn.k_norm.weight", p)) == NULL)
			return -1;
		snprintf(g, sizeof(g), "%s.cross_attn_attn_gate", p);
		if (gget(L, &X->attn_gate, e, g))
			return -1;
		snprintf(g, sizeof(g), "%s.cross_attn_mlp_gate", p);
		if (gget(L, &X->mlp_gate, e, g))
			return -1;
	}
	return 0;
}

/* config.json's text_config and vision_config, then every weight; L->m's tensor source
 * (shards or GGUF) and tokenizer are open */
static int
build(struct ld *L, json_t *c, struct err *e)
{
	struct model *m = L->m;
	int cross[1024], n_cross = 0;

	if (!json_is_object(c))
		return err_set(e, "%s: not a JSON object", L->cfg);
	if ((m->mm = calloc(1, sizeof(*m->mm))) == NULL)
		return err_set(e, "out of memory");
	json_t *it = json_object_get(c, "image_token_index");
	m->mm->image_token = json_is_integer(it) ? (int)json_integer_value(it) : 128256;
	json_t *tc = json_object_get(c, "text_config");
	if (text_config(L, tc, e) || vision_config(L, json_object_get(c, "vision_config"), e) ||
	    jlist(tc, "text_config", "cross_attention_layers", cross, 1024, m->hp.n_layer,
		&n_cross, L, e))
		return -1;
	m->mm->n_cross = n_cross;
	if (text_weights(L, cross, n_cross, e) || vision_weights(L, e))
		return -1;
	if (m->tok != NULL && tok_n_vocab(m->tok) > m->tok_embd.rows)
		return err_set(e, "%s: %d tokens but embed_tokens has %lld rows", m->path,
		    tok_n_vocab(m->tok), (long long)m->tok_embd.rows);
	if (m->tok != NULL)
		m->hp.eot = tok_special(m->tok, "<|eot_id|>");
	m->wtype = m->layers[0].wq.type;
	/* q/k rows in Hugging Face's rotate-half order in both formats (the GGUF keeps them) */
	m->rope_halves = 1;
	return model_finish(m, NULL, e);
}

int
load_mllama(struct model *m, const char *dir, struct err *e)
{
	char cfg[4200], path[4200];
	struct ld L = { .m = m, .cfg = cfg };
	json_error_t je;
	json_t *c;
	int rc = -1;

	snprintf(cfg, sizeof(cfg), "%s/config.json", dir);
	if ((c = json_load_file(cfg, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return err_set(e, "%s:%d:%d: %s", cfg, je.line, je.column, je.text);
	if ((m->st = st_open_dir(dir, e)) == NULL)
		goto out;
	snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
	FILE *fp = fopen(path, "r");
	if (fp != NULL) {
		fclose(fp);
		if ((m->tok = tok_load_json(path, e)) == NULL)
			goto out;
	}
	if (build(&L, c, e))
		goto out;
	if (L.used != st_count(m->st)) {
		/* name the first tensor nothing read: a part this engine would silently drop */
		for (size_t i = 0; i < st_count(m->st); i++) {
			const char *nm = st_at(m->st, i)->name;
			if (strncmp(nm, "language_model.", 15) != 0 && strncmp(nm, "vision_model.", 13) != 0 &&
			    strncmp(nm, "multi_modal_projector.", 22) != 0) {
				err_set(e, "%s: tensor '%s' is not part of an mllama model this loader "
				    "computes (it would be ignored)", st_at(m->st, i)->file, nm);
				goto out;
			}
		}
		err_set(e, "%s: %zu of the checkpoint's %zu tensors are not part of the mllama model "
		    "this loader computes (they would be ignored)", dir, st_count(m->st) - L.used,
		    st_count(m->st));
		goto out;
	}
	rc = 0;
out:
	json_decref(c);
	return rc;
}

int
load_mllama_gguf(struct model *m, const char *config, size_t n, struct err *e)
{
	char cfg[4200];
	struct ld L = { .m = m, .cfg = cfg };
	size_t nt = gguf_n_tensors(m->gguf);
	json_error_t je;
	json_t *c;
	int rc = -1;

	snprintf(cfg, sizeof(cfg), "%s: %s", m->path, MLLAMA_GGUF_CONFIG);
	if ((c = json_loadb(config, n, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return err_set(e, "%s:%d:%d: %s", cfg, je.line, je.column, je.text);
	if ((L.seen = calloc(nt + 1, 1)) == NULL) {
		err_set(e, "out of memory");
		goto out;
	}
	if (build(&L, c, e))
		goto out;
	for (size_t i = 0; i < nt; i++)
		if (!L.seen[i]) {
			/* a tensor nothing reads: a part this engine would silently drop */
			err_set(e, "%s: tensor '%s' is not part of an mllama model this loader "
			    "computes (it would be ignored)", m->path, gguf_tensor_at(m->gguf, i)->name);
			goto out;
		}
	rc = 0;
out:
	free(L.seen);
	json_decref(c);
	return rc;
}

static void
vlayer_free(struct vlayer *V)
{
	free(V->ln1_w); free(V->ln1_b); free(V->ln2_w); free(V->ln2_b);
	free(V->fc1_b); free(V->fc2_b);
}

void
mllama_free(struct model *m)
{
	struct mllama *M = m->mm;

	if (m->layers != NULL)
		for (int l = 0; l < m->hp.n_layer; l++)
			if (m->layers[l].xa != NULL) {
				free(m->layers[l].xa->q_norm);
				free(m->layers[l].xa->k_norm);
				free(m->layers[l].xa);
			}
	if (M == NULL)
		return;
	for (int i = 0; M->local && i < M->n_local; i++)
		vlayer_free(&M->local[i]);
	for (int i = 0; M->global && i < M->n_global; i++)
		vlayer_free(&M->global[i]);
	free(M->local); free(M->global);
	free(M->patch_f32); free(M->cls); free(M->pos);
	free(M->ln_pre_w); free(M->ln_pre_b); free(M->ln_post_w); free(M->ln_post_b);
	free(M->proj_b);
	free(M);
	m->mm = NULL;
}

int model_image_token(const struct model *m) { return m->mm ? m->mm->image_token : -1; }

int
model_image_size(const struct model *m, int *max_tiles)
{
	if (max_tiles != NULL)
		*max_tiles = m->mm ? m->mm->max_tiles : 0;
	return m->mm ? m->mm->image : 0;
}
