/* mllama_gguf.c - Llama 3.2-Vision ("mllama") as one GGUF file: the names, the metadata, and
 * loading it back. Tensor names and the mllama.* keys follow Ollama's converter
 * (convert/convert_mllama.go: its string replacements, applied the way Go's strings.Replacer
 * applies them); the values are the checkpoint's own, not Ollama's repacking (no tanh of the
 * gates, no q/k row permutation), so the loader takes only files that say so
 * (guardd.mllama.config_json, the checkpoint's config.json verbatim, which is what it reads
 * the configuration from; guardd.mllama.preprocessor_json, preprocessor_config.json verbatim,
 * is what images are preprocessed with: mllama_prep_config). Weights stay memory-mapped in their stored types: quantized text
 * matrices run through the quantized kernels, the vision tower as stored. */
#include "core/mllama_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "core/gguf_write.h"
#include "core/imgprep.h"
#include "core/mllama_image.h"
#include "core/model_export.h"
#include "core/safetensors.h"
#include "core/tok.h"
#include "util/mapfile.h"

/* Ollama's replacements, llama's first, in argument order (the first that matches at a
 * position wins) */
static const char *const repl[][2] = {
	{ "lm_head", "output" }, { "model.embed_tokens", "token_embd" },
	{ "model.norm", "output_norm" }, { "model.layers", "blk" },
	{ "input_layernorm", "attn_norm" }, { "self_attn.q_proj", "attn_q" },
	{ "self_attn.k_proj", "attn_k" }, { "self_attn.v_proj", "attn_v" },
	{ "self_attn.o_proj", "attn_output" }, { "mlp.gate_proj", "ffn_gate" },
	{ "mlp.down_proj", "ffn_down" }, { "mlp.up_proj", "ffn_up" },
	{ "post_attention_layernorm", "ffn_norm" },
	{ "language_model.", "" }, { "gate_attn", "attn_gate" }, { "gate_ffn", "ffn_gate" },
	{ "cross_attn.", "cross_attn_" }, { "vision_model", "v" }, { "class_embedding", "class_embd" },
	{ "patch_embedding", "patch_embd" },
	{ "gated_positional_embedding.tile_embedding", "tile_position_embd" },
	{ "gated_positional_embedding.embedding", "position_embd.weight" },
	{ "gated_positional_embedding", "position_embd" }, { "embedding.weight", "weight" },
	{ "pre_tile_positional_embedding", "pre_tile_position_embd" },
	{ "post_tile_positional_embedding", "post_tile_position_embd" },
	{ "layernorm_pre", "pre_ln" }, { "layernorm_post", "post_ln" },
	{ "global_transformer.layers", "global.blk" }, { "transformer.layers", "blk" },
	{ "mlp.fc1", "ffn_up" }, { "mlp.fc2", "ffn_down" }, { "multi_modal_projector", "mm.0" },
};

int
mllama_gguf_name(const char *hf, char *out, size_t n)
{
	size_t o = 0;

	for (const char *p = hf; *p;) {
		size_t i, k = sizeof(repl) / sizeof(repl[0]);
		for (i = 0; i < k; i++)
			if (strncmp(p, repl[i][0], strlen(repl[i][0])) == 0)
				break;
		const char *add = i < k ? repl[i][1] : p;
		size_t len = i < k ? strlen(add) : 1;
		if (o + len + 1 > n)
			return -1;
		memcpy(out + o, add, len);
		o += len;
		p += i < k ? strlen(repl[i][0]) : 1;
	}
	if (n == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

/* ---- loading -------------------------------------------------------------------------- */

int
load_mllama_file(struct model *m, struct err *e)
{
	struct gguf_str cfg;
	uint32_t v;

	if (!gguf_has(m->gguf, MLLAMA_GGUF_CONFIG))
		return err_set(e, "%s: general.architecture is 'mllama' but the file has no %s: not "
		    "written by guard quantize (Ollama's mllama files store repacked gates and "
		    "permuted rows, which this loader does not read)", m->path, MLLAMA_GGUF_CONFIG);
	if (gguf_get_str(m->gguf, MLLAMA_GGUF_CONFIG, &cfg, e) == -1)
		return -1;
	if ((m->tok = tok_load_gguf(m->gguf, e)) == NULL)
		return -1;
	if (load_mllama_gguf(m, cfg.p, cfg.n, e) == -1)
		return -1;
	/* the keys other tools read must say what the configuration says */
	if (gguf_get_u32(m->gguf, "mllama.block_count", &v, e) == -1)
		return -1;
	if (v != (uint32_t)m->hp.n_layer)
		return err_set(e, "%s: mllama.block_count %u, but %s says %d layers", m->path, v,
		    MLLAMA_GGUF_CONFIG, m->hp.n_layer);
	if (gguf_get_u32(m->gguf, "mllama.embedding_length", &v, e) == -1)
		return -1;
	if (v != (uint32_t)m->hp.n_embd)
		return err_set(e, "%s: mllama.embedding_length %u, but %s says %d", m->path, v,
		    MLLAMA_GGUF_CONFIG, m->hp.n_embd);
	/* a malformed stored preprocessor config refuses the file now, not at its first image */
	struct imgprep_config pc;
	if (mllama_prep_config(m, &pc, NULL, 0, e) == -1)
		return -1;
	gguf_describe_types(m);
	return 0;
}

/* ---- writing (guard quantize) --------------------------------------------------------- */

int
mllama_export_tensors(const struct model *m, struct xtensors *x, struct err *e)
{
	size_t n = st_count(m->st);

	if ((x->t = calloc(n + 1, sizeof(*x->t))) == NULL)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct st_tensor *s = st_at(m->st, i);
		struct xtensor *t = &x->t[x->n++];
		if (mllama_gguf_name(s->name, t->name, sizeof(t->name)) == -1)
			return err_set(e, "%s: tensor '%s': its GGUF name is too long", s->file, s->name);
		if (s->type < 0 || s->n_dims < 1 || s->n_dims > 4)
			return err_set(e, "%s: tensor '%s': dtype %s, %u dims", s->file, s->name,
			    s->dtype, s->n_dims);
		t->type = (uint32_t)s->type;
		t->out_type = s->n_dims == 1 ? GGML_TYPE_F32 : t->type;
		t->n_dims = s->n_dims;
		for (uint32_t d = 0; d < 4; d++)
			t->ne[d] = d < s->n_dims ? s->shape[s->n_dims - 1 - d] : 1;
		t->data = s->data;
	}
	return 0;
}

/* a small file of the checkpoint directory as a string entry (absent: none) */
static int
kv_file(const struct model *m, struct gguf_writer *w, const char *file, const char *key,
    int required, struct err *e)
{
	char path[4200];
	size_t len;
	struct err ig;
	char *text;

	snprintf(path, sizeof(path), "%s/%s", m->path, file);
	if ((text = file_read_all(path, &len, 1 << 20, required ? e : &ig)) == NULL)
		return required ? -1 : 0;
	int rc = gguf_writer_kv_str(w, key, text, len, e);
	free(text);
	return rc;
}

int
mllama_export_meta(const struct model *m, struct gguf_writer *w, struct err *e)
{
	const struct hparams *h = &m->hp;
	const struct mllama *M = m->mm;
	const char *base = strrchr(m->path, '/');
	char name[256];
	int32_t cross[1024], inter[MLLAMA_MAX_INTER];
	size_t nl, nc = 0;

	snprintf(name, sizeof(name), "%s", base && base[1] ? base + 1 : m->path);
	nl = strlen(name);
	while (nl > 0 && name[nl - 1] == '/')
		name[--nl] = '\0';
	for (int l = 0; l < h->n_layer && nc < 1024; l++)
		if (m->layers[l].xa != NULL)
			cross[nc++] = l;
	for (int i = 0; i < M->n_inter; i++)
		inter[i] = M->inter[i];
	if (m->tok == NULL)
		return err_set(e, "%s: no tokenizer.json: a GGUF needs one", m->path);
	if (gguf_writer_kv_str(w, "general.architecture", "mllama", 6, e) ||
	    gguf_writer_kv_str(w, "general.name", name, nl, e) ||
	    gguf_writer_kv_u32(w, "mllama.context_length", (uint32_t)h->n_ctx_train, e) ||
	    gguf_writer_kv_u32(w, "mllama.embedding_length", (uint32_t)h->n_embd, e) ||
	    gguf_writer_kv_u32(w, "mllama.block_count", (uint32_t)h->n_layer, e) ||
	    gguf_writer_kv_u32(w, "mllama.feed_forward_length", (uint32_t)h->n_ff, e) ||
	    gguf_writer_kv_u32(w, "mllama.attention.head_count", (uint32_t)h->n_head, e) ||
	    gguf_writer_kv_u32(w, "mllama.attention.head_count_kv", (uint32_t)h->n_head_kv, e) ||
	    gguf_writer_kv_u32(w, "mllama.rope.dimension_count", (uint32_t)h->head_dim, e) ||
	    gguf_writer_kv_f32(w, "mllama.rope.freq_base", h->rope_theta, e) ||
	    gguf_writer_kv_f32(w, "mllama.attention.layer_norm_rms_epsilon", h->eps, e) ||
	    gguf_writer_kv_u32(w, "mllama.vocab_size", (uint32_t)h->n_vocab, e) ||
	    gguf_writer_kv_arr(w, "mllama.attention.cross_attention_layers", GGUF_I32, cross, nc, e) ||
	    gguf_writer_kv_u32(w, "mllama.vision.block_count", (uint32_t)M->n_local, e) ||
	    gguf_writer_kv_u32(w, "mllama.vision.global.block_count", (uint32_t)M->n_global, e) ||
	    gguf_writer_kv_arr(w, "mllama.vision.intermediate_layers_indices", GGUF_I32, inter,
		(size_t)M->n_inter, e) ||
	    gguf_writer_kv_u32(w, "mllama.vision.embedding_length", (uint32_t)M->dim, e) ||
	    gguf_writer_kv_u32(w, "mllama.vision.feed_forward_length", (uint32_t)M->ff, e) ||
	    gguf_writer_kv_u32(w, "mllama.vision.attention.head_count", (uint32_t)M->heads, e) ||
	    gguf_writer_kv_f32(w, "mllama.vision.attention.layer_norm_epsilon", M->eps, e) ||
	    gguf_writer_kv_u32(w, "mllama.vision.image_size", (uint32_t)M->image, e) ||
	    gguf_writer_kv_u32(w, "mllama.vision.patch_size", (uint32_t)M->patch, e) ||
	    gguf_writer_kv_u32(w, "mllama.vision.max_num_tiles", (uint32_t)M->max_tiles, e) ||
	    gguf_writer_kv_u32(w, "mllama.vision.num_channels", 3, e) ||
	    kv_file(m, w, "config.json", MLLAMA_GGUF_CONFIG, 1, e) ||
	    kv_file(m, w, "preprocessor_config.json", MLLAMA_GGUF_PREPROC, 0, e))
		return -1;
	return gguf_writer_kv_u32(w, "general.file_type", m->wtype == GGML_TYPE_F32 ? 0 :
	    m->wtype == GGML_TYPE_F16 ? 1 : 32, e);
}
