/* load_hf.c - a Hugging Face Llama directory: config.json, safetensors (sharded or not),
 * tokenizer.json or SentencePiece's tokenizer.model. q/k rows are in the rotate-half layout. */
#include "core/model_int.h"
#include "core/mllama_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "core/safetensors.h"
#include "core/tok.h"

static int
cfg_int(json_t *c, const char *path, const char *key, int def, int *out, struct err *e)
{
	json_t *v = json_object_get(c, key);

	if (v == NULL || json_is_null(v)) {
		if (def == -1)
			return err_set(e, "%s: missing '%s'", path, key);
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1 << 30))
		return err_set(e, "%s: '%s' must be a non-negative integer", path, key);
	*out = (int)json_integer_value(v);
	return 0;
}

static int
cfg_num(json_t *c, const char *path, const char *key, double def, float *out, struct err *e)
{
	json_t *v = json_object_get(c, key);

	if (v == NULL || json_is_null(v)) {
		if (def < 0)
			return err_set(e, "%s: missing '%s'", path, key);
		*out = (float)def;
		return 0;
	}
	if (!json_is_number(v))
		return err_set(e, "%s: '%s' must be a number", path, key);
	*out = (float)json_number_value(v);
	return 0;
}

/* eos_token_id may be a list (instruct configs): the first is eos, <|eot_id|> is eot */
static int32_t
cfg_id(json_t *v)
{
	if (json_is_array(v))
		v = json_array_get(v, 0);
	return json_is_integer(v) ? (int32_t)json_integer_value(v) : -1;
}

/* A pruned head's map (README "Pruned output heads"): config.json's "output_token_ids", the
 * token id of each row of lm_head.weight, as an array [id of row 0, id of row 1, ...] or as
 * ExecuTorch's token_map.json object {"0": id, "1": id, ...} (Meta's --output_prune_map
 * file, pasted in). The ids' range and uniqueness are checked once the head's rows are
 * known (head_map_set). */
struct head_ids {
	int64_t *v;
	size_t n;
	int have;
};

/* a row number as ExecuTorch writes it: decimal, no sign, no leading zero */
static int
row_key(const char *k, size_t n, size_t *row)
{
	size_t r = 0;

	if (k[0] == '\0' || (k[0] == '0' && k[1] != '\0'))
		return -1;
	for (; *k; k++) {
		if (*k < '0' || *k > '9' || r > (SIZE_MAX - 9) / 10)
			return -1;
		r = r * 10 + (size_t)(*k - '0');
	}
	if (r >= n)
		return -1;
	*row = r;
	return 0;
}

static int
cfg_head_ids(json_t *c, const char *path, struct head_ids *hi, struct err *e)
{
	static const char key[] = "output_token_ids";
	json_t *v = json_object_get(c, key), *x;
	const char *k;
	size_t n, i, row;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v) && !json_is_object(v))
		return err_set(e, "%s: '%s' must be an array of token ids (one per row of "
		    "lm_head.weight) or an object {\"row\": token id}", path, key);
	n = json_is_array(v) ? json_array_size(v) : json_object_size(v);
	if ((hi->v = reallocarray(NULL, n ? n : 1, sizeof(*hi->v))) == NULL)
		return err_set(e, "out of memory");
	hi->n = n;
	hi->have = 1;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			if (!json_is_integer(x))
				return err_set(e, "%s: %s[%zu] must be an integer token id", path, key, i);
			hi->v[i] = json_integer_value(x);
		}
		return 0;
	}
	/* keys are distinct strings (duplicates are refused on load) and each names a row
	 * below n: n of them cover every row once */
	json_object_foreach(v, k, x) {
		if (row_key(k, n, &row) == -1)
			return err_set(e, "%s: %s: key \"%.32s\" is not a row number (0 to %zu, "
			    "decimal, no leading zero)", path, key, k, n ? n - 1 : 0);
		if (!json_is_integer(x))
			return err_set(e, "%s: %s[\"%s\"] must be an integer token id", path, key, k);
		hi->v[row] = json_integer_value(x);
	}
	return 0;
}

static int
parse_config(struct model *m, const char *dir, struct head_ids *hi, struct err *e)
{
	struct hparams *h = &m->hp;
	char path[4096];
	json_error_t je;
	json_t *c, *rs;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	/* a key given twice has no one meaning: refused, as everywhere else */
	if ((c = json_load_file(path, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return err_set(e, "%s:%d:%d: %s", path, je.line, je.column, je.text);
	const char *mt = json_string_value(json_object_get(c, "model_type"));
	if (mt == NULL || strcmp(mt, "llama") != 0) {
		err_set(e, "%s: model_type '%s' is not supported (llama)", path, mt ? mt : "(none)");
		goto out;
	}
	if (cfg_int(c, path, "hidden_size", -1, &h->n_embd, e) ||
	    cfg_int(c, path, "num_hidden_layers", -1, &h->n_layer, e) ||
	    cfg_int(c, path, "num_attention_heads", -1, &h->n_head, e) ||
	    cfg_int(c, path, "intermediate_size", -1, &h->n_ff, e) ||
	    cfg_int(c, path, "vocab_size", -1, &h->n_vocab, e) ||
	    cfg_int(c, path, "num_key_value_heads", h->n_head, &h->n_head_kv, e) ||
	    cfg_int(c, path, "max_position_embeddings", 4096, &h->n_ctx_train, e) ||
	    cfg_num(c, path, "rms_norm_eps", 1e-6, &h->eps, e) ||
	    cfg_num(c, path, "rope_theta", 10000.0, &h->rope_theta, e))
		goto out;
	if (h->n_head == 0 || h->n_embd % h->n_head != 0) {
		err_set(e, "%s: hidden_size is not a multiple of num_attention_heads", path);
		goto out;
	}
	if (cfg_int(c, path, "head_dim", h->n_embd / h->n_head, &h->head_dim, e))
		goto out;
	/* options of the transformers LlamaConfig that this forward pass does not implement:
	 * refused by name rather than silently computed wrong */
	const char *act = json_string_value(json_object_get(c, "hidden_act"));
	if (json_object_get(c, "hidden_act") != NULL && (act == NULL || strcmp(act, "silu") != 0)) {
		err_set(e, "%s: hidden_act '%s' is not supported (silu)", path, act ? act : "(not a string)");
		goto out;
	}
	static const char *const biases[] = { "attention_bias", "mlp_bias" };
	for (int i = 0; i < 2; i++) {
		json_t *b = json_object_get(c, biases[i]);
		if (b != NULL && !json_is_false(b) && !json_is_null(b)) {
			err_set(e, "%s: '%s' is set: bias terms are not supported", path, biases[i]);
			goto out;
		}
	}
	h->tied = json_is_true(json_object_get(c, "tie_word_embeddings"));
	if (cfg_head_ids(c, path, hi, e) == -1)
		goto out;
	h->bos = cfg_id(json_object_get(c, "bos_token_id"));
	h->eos = cfg_id(json_object_get(c, "eos_token_id"));
	h->eot = -1;
	rs = json_object_get(c, "rope_scaling");
	if (rs != NULL && !json_is_null(rs)) {
		const char *type = json_string_value(json_object_get(rs, "rope_type"));
		if (type == NULL)
			type = json_string_value(json_object_get(rs, "type"));
		if (type == NULL || strcmp(type, "llama3") != 0) {
			err_set(e, "%s: rope_scaling type '%s' is not supported (llama3)", path,
			    type ? type : "(none)");
			goto out;
		}
		h->rope_llama3 = 1;
		if (cfg_num(rs, path, "factor", -1, &h->rope_factor, e) ||
		    cfg_num(rs, path, "low_freq_factor", 1.0, &h->rope_low, e) ||
		    cfg_num(rs, path, "high_freq_factor", 4.0, &h->rope_high, e) ||
		    cfg_int(rs, path, "original_max_position_embeddings", 8192, &h->rope_orig_ctx, e))
			goto out;
		if (!(h->rope_factor > 0) || !(h->rope_high > h->rope_low) || h->rope_orig_ctx <= 0) {
			err_set(e, "%s: rope_scaling: factor must be > 0 and high_freq_factor > "
			    "low_freq_factor", path);
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(c);
	return rc;
}

static int
get_weight(struct model *m, const char *name, int64_t rows, int64_t cols, struct weight *w,
    struct err *e)
{
	const struct st_tensor *t = st_find(m->st, name);

	if (t == NULL)
		return err_set(e, "%s: missing tensor '%s'", m->path, name);
	if (t->n_dims != 2 || (int64_t)t->shape[0] != rows || (int64_t)t->shape[1] != cols)
		return err_set(e, "%s: tensor '%s': shape [%llu, %llu] (%u dims), expected [%lld, %lld]",
		    t->file, name, (unsigned long long)t->shape[0],
		    (unsigned long long)(t->n_dims > 1 ? t->shape[1] : 0), t->n_dims,
		    (long long)rows, (long long)cols);
	if (t->type < 0 || !matmul_supported(t->type))
		return err_set(e, "%s: tensor '%s': dtype %s is not supported (F32, F16, BF16)",
		    t->file, name, t->dtype);
	w->data = t->data;
	w->type = t->type;
	w->rows = rows;
	w->cols = cols;
	return 0;
}

static float *
get_vec(struct model *m, const char *name, int64_t n, struct err *e)
{
	const struct st_tensor *t = st_find(m->st, name);
	float *v;

	if (t == NULL) {
		err_set(e, "%s: missing tensor '%s'", m->path, name);
		return NULL;
	}
	if (t->n_dims != 1 || (int64_t)t->shape[0] != n || t->type < 0) {
		err_set(e, "%s: tensor '%s': expected %lld elements of F32/F16/BF16", t->file, name,
		    (long long)n);
		return NULL;
	}
	if ((v = vec_to_f32(t->data, t->type, n)) == NULL)
		err_set(e, "out of memory");
	return v;
}

/* Every tensor in the checkpoint must be one the forward pass reads: a bias or an extra
 * projection would otherwise be dropped without a word. */
static int
known_tensor(const char *nm, int n_layer)
{
	static const char *const per_layer[] = { "self_attn.q_proj.weight", "self_attn.k_proj.weight",
		"self_attn.v_proj.weight", "self_attn.o_proj.weight", "mlp.gate_proj.weight",
		"mlp.up_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight",
		"post_attention_layernorm.weight",
		"self_attn.rotary_emb.inv_freq" /* a buffer old checkpoints saved; recomputed */ };
	int l, used = 0;

	if (strcmp(nm, "model.embed_tokens.weight") == 0 || strcmp(nm, "model.norm.weight") == 0)
		return 1;
	if (strcmp(nm, "lm_head.weight") == 0)
		return 1;	/* read when untied; a tied checkpoint may still carry the copy */
	if (sscanf(nm, "model.layers.%d.%n", &l, &used) != 1 || used == 0 || l < 0 || l >= n_layer)
		return 0;
	char canon[32];
	snprintf(canon, sizeof(canon), "model.layers.%d.", l);
	if (strncmp(nm, canon, strlen(canon)) != 0)
		return 0;	/* "model.layers.+1." or "01" would name no layer */
	for (size_t i = 0; i < sizeof(per_layer) / sizeof(per_layer[0]); i++)
		if (strcmp(nm + used, per_layer[i]) == 0)
			return 1;
	return 0;
}

/* The head: the embedding when tied; else lm_head.weight, with vocab_size rows or, pruned,
 * fewer and a map naming each row's token */
static int
load_head(struct model *m, const char *dir, const struct head_ids *hi, struct err *e)
{
	const struct hparams *h = &m->hp;
	char where[4200];

	snprintf(where, sizeof(where), "%s/config.json", dir);
	if (h->tied) {
		if (hi->have)
			return err_set(e, "%s: output_token_ids is set but tie_word_embeddings is true "
			    "(the head is the embedding matrix, one row per token)", where);
		m->output = m->tok_embd;
		return 0;
	}
	const struct st_tensor *t = st_find(m->st, "lm_head.weight");
	int64_t rows = t != NULL && t->n_dims == 2 && t->shape[0] > 0 &&
	    t->shape[0] < (uint64_t)h->n_vocab ? (int64_t)t->shape[0] : h->n_vocab;
	if (get_weight(m, "lm_head.weight", rows, h->n_embd, &m->output, e))
		return -1;
	if (hi->have)
		return head_map_set(m, where, "output_token_ids", hi->v, hi->n, -1, e);
	if (rows < h->n_vocab)
		return err_set(e, "%s: tensor 'lm_head.weight' has %lld rows, fewer than vocab_size "
		    "%d: a pruned head needs \"output_token_ids\" in config.json (the token id of "
		    "each row), and it has none", t->file, (long long)rows, h->n_vocab);
	return 0;
}

static int
load_hf_ids(struct model *m, const char *dir, struct head_ids *hi, struct err *e)
{
	struct hparams *h = &m->hp;
	char name[128], path[4096];
	FILE *fp;

	if (parse_config(m, dir, hi, e) == -1)
		return -1;
	/* the layer table is allocated from this count: bound it before (as model_finish does) */
	if (h->n_layer <= 0 || h->n_layer > 1024)
		return err_set(e, "%s/config.json: num_hidden_layers %d is out of range (1 to 1024)",
		    dir, h->n_layer);
	if (h->n_head_kv == 0 || h->n_head % h->n_head_kv != 0)
		return err_set(e, "%s/config.json: num_attention_heads %d is not a multiple of "
		    "num_key_value_heads %d", dir, h->n_head, h->n_head_kv);
	if ((m->st = st_open_dir(dir, e)) == NULL)
		return -1;
	/* tokenizer.json (Llama 3) wins; else SentencePiece's tokenizer.model (Llama 2); the
	 * model hash (model.c) lists the same one */
	snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(path, sizeof(path), "%s/tokenizer.model", dir);
		fp = fopen(path, "r");
	}
	if (fp != NULL) {
		fclose(fp);
		if (strcmp(path + strlen(path) - 5, ".json") == 0)
			m->tok = tok_load_json(path, e);
		else
			m->tok = tok_load_spmodel(path, e);
		if (m->tok == NULL)
			return -1;
		if (tok_n_vocab(m->tok) > h->n_vocab)
			return err_set(e, "%s: %d tokens but vocab_size is %d", path,
			    tok_n_vocab(m->tok), h->n_vocab);
		h->eot = tok_special(m->tok, "<|eot_id|>");
	}
	int64_t q = (int64_t)h->n_head * h->head_dim, kv = (int64_t)h->n_head_kv * h->head_dim;
	if (get_weight(m, "model.embed_tokens.weight", h->n_vocab, h->n_embd, &m->tok_embd, e))
		return -1;
	if (load_head(m, dir, hi, e) == -1)
		return -1;
	if ((m->out_norm = get_vec(m, "model.norm.weight", h->n_embd, e)) == NULL)
		return -1;
	if ((m->layers = calloc((size_t)h->n_layer, sizeof(*m->layers))) == NULL)
		return err_set(e, "out of memory");
	for (int l = 0; l < h->n_layer; l++) {
		struct layer *L = &m->layers[l];
#define W(field, nm, rows, cols) do { snprintf(name, sizeof(name), "model.layers.%d." nm ".weight", l); \
		if (get_weight(m, name, rows, cols, &L->field, e)) return -1; } while (0)
		W(wq, "self_attn.q_proj", q, h->n_embd);
		W(wk, "self_attn.k_proj", kv, h->n_embd);
		W(wv, "self_attn.v_proj", kv, h->n_embd);
		W(wo, "self_attn.o_proj", h->n_embd, q);
		W(gate, "mlp.gate_proj", h->n_ff, h->n_embd);
		W(up, "mlp.up_proj", h->n_ff, h->n_embd);
		W(down, "mlp.down_proj", h->n_embd, h->n_ff);
#undef W
		snprintf(name, sizeof(name), "model.layers.%d.input_layernorm.weight", l);
		if ((L->attn_norm = get_vec(m, name, h->n_embd, e)) == NULL)
			return -1;
		snprintf(name, sizeof(name), "model.layers.%d.post_attention_layernorm.weight", l);
		if ((L->ffn_norm = get_vec(m, name, h->n_embd, e)) == NULL)
			return -1;
	}
	for (size_t i = 0; i < st_count(m->st); i++) {
		const char *nm = st_at(m->st, i)->name;
		if (!known_tensor(nm, h->n_layer))
			return err_set(e, "%s: tensor '%s' is not part of a Llama model this loader "
			    "computes (it would be ignored)", st_at(m->st, i)->file, nm);
	}
	m->wtype = m->layers[0].wq.type;
	m->rope_halves = 1;
	return model_finish(m, NULL, e);
}

int
load_hf(struct model *m, const char *dir, struct err *e)
{
	struct head_ids hi = { NULL, 0, 0 };

	if (mllama_config_is(dir))	/* Llama 3.2-Vision: core/mllama_load.c */
		return load_mllama(m, dir, e);
	int rc = load_hf_ids(m, dir, &hi, e);

	free(hi.v);
	return rc;
}
