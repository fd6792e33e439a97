/* model_export.c - a model's tensors and metadata under llama.cpp's GGUF conventions (see
 * model_export.h): a GGUF source as it is, a Hugging Face directory converted the way
 * convert_hf_to_gguf.py converts a Llama. */
#include "core/model_export.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "core/gguf_write.h"
#include "core/half.h"
#include "core/model_int.h"
#include "core/mllama_int.h"
#include "core/safetensors.h"
#include "core/tok_int.h"
#include "util/buf.h"

static int
layer_of(const char *name)
{
	int l = -1;

	if (sscanf(name, "blk.%d.", &l) != 1)
		l = -1;
	return l;
}

/* llama.cpp's weights_map order: layer (-1 for the others) then name */
static int
by_layer_name(const void *pa, const void *pb)
{
	const struct xtensor *a = pa, *b = pb;
	int la = layer_of(a->name), lb = layer_of(b->name);

	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int
from_gguf(const struct model *m, struct xtensors *x, struct err *e)
{
	size_t n = gguf_n_tensors(m->gguf);

	if ((x->t = calloc(n ? n : 1, sizeof(*x->t))) == NULL)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct gguf_tensor *g = gguf_tensor_at(m->gguf, i);
		struct xtensor *t = &x->t[x->n];
		if (strlen(g->name) >= sizeof(t->name))
			return err_set(e, "%s: tensor name '%s' is too long", m->path, g->name);
		snprintf(t->name, sizeof(t->name), "%s", g->name);
		t->type = t->out_type = g->type;
		t->n_dims = g->n_dims;
		memcpy(t->ne, g->ne, sizeof(t->ne));
		t->data = g->data;
		x->n++;
	}
	return 0;
}

/* Hugging Face names to GGUF names (load_hf.c accepts exactly these) */
static const struct {
	const char *hf, *gguf;
} layer_names[] = {
	{ "self_attn.q_proj.weight", "attn_q.weight" }, { "self_attn.k_proj.weight", "attn_k.weight" },
	{ "self_attn.v_proj.weight", "attn_v.weight" },
	{ "self_attn.o_proj.weight", "attn_output.weight" },
	{ "mlp.gate_proj.weight", "ffn_gate.weight" }, { "mlp.up_proj.weight", "ffn_up.weight" },
	{ "mlp.down_proj.weight", "ffn_down.weight" },
	{ "input_layernorm.weight", "attn_norm.weight" },
	{ "post_attention_layernorm.weight", "ffn_norm.weight" },
};

/* llama3 rope factors as convert_hf_to_gguf.py defines them: 1 for short wavelengths, factor
 * for long, the smooth blend between. The frequencies are float32 (base^(2i/d) by powf), the
 * rest double, as the reference files' converter (../shared/reference/mkref.py, numpy)
 * computes them: so an HF directory gives the bytes of the GGUF llama-quantize was given. */
static float *
rope_factors(const struct hparams *h)
{
	int half = h->head_dim / 2;
	float *f = reallocarray(NULL, (size_t)(half ? half : 1), sizeof(float));

	if (f == NULL)
		return NULL;
	double lo_wl = h->rope_orig_ctx / h->rope_low, hi_wl = h->rope_orig_ctx / h->rope_high;
	for (int i = 0; i < half; i++) {
		float freq = 1.0f / powf(h->rope_theta, (float)(2 * i) / (float)h->head_dim);
		double wl = 2 * M_PI / freq;
		if (wl < hi_wl)
			f[i] = 1;
		else if (wl > lo_wl)
			f[i] = h->rope_factor;
		else {
			double s = (h->rope_orig_ctx / wl - h->rope_low) / (h->rope_high - h->rope_low);
			f[i] = (float)(1 / ((1 - s) / h->rope_factor + s));
		}
	}
	return f;
}

static int
from_hf(const struct model *m, struct xtensors *x, struct err *e)
{
	const struct hparams *h = &m->hp;
	size_t n = st_count(m->st);

	if (m->mm != NULL)	/* Llama 3.2-Vision: core/mllama_gguf.c */
		return mllama_export_tensors(m, x, e);
	if ((x->t = calloc(n + 1, sizeof(*x->t))) == NULL)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct st_tensor *s = st_at(m->st, i);
		struct xtensor *t = &x->t[x->n];
		const char *nm = s->name;
		int l, used = 0;

		t->name[0] = '\0';
		if (strcmp(nm, "model.embed_tokens.weight") == 0)
			snprintf(t->name, sizeof(t->name), "token_embd.weight");
		else if (strcmp(nm, "model.norm.weight") == 0)
			snprintf(t->name, sizeof(t->name), "output_norm.weight");
		else if (strcmp(nm, "lm_head.weight") == 0) {
			if (h->tied)
				continue;	/* a copy of the embedding; the GGUF has none */
			snprintf(t->name, sizeof(t->name), "output.weight");
		} else if (sscanf(nm, "model.layers.%d.%n", &l, &used) == 1 && used > 0) {
			for (size_t k = 0; k < sizeof(layer_names) / sizeof(layer_names[0]); k++)
				if (strcmp(nm + used, layer_names[k].hf) == 0)
					snprintf(t->name, sizeof(t->name), "blk.%d.%s", l,
					    layer_names[k].gguf);
			if (strcmp(nm + used, "self_attn.q_proj.weight") == 0)
				t->permute_heads = h->n_head;
			else if (strcmp(nm + used, "self_attn.k_proj.weight") == 0)
				t->permute_heads = h->n_head_kv;
		}
		if (t->name[0] == '\0')
			continue;	/* rotary_emb.inv_freq: recomputed by every loader */
		if (s->type < 0 || s->n_dims < 1 || s->n_dims > 2)
			return err_set(e, "%s: tensor '%s': dtype %s, %u dims", s->file, nm, s->dtype,
			    s->n_dims);
		t->type = (uint32_t)s->type;
		t->out_type = s->n_dims == 1 ? GGML_TYPE_F32 : t->type;
		t->n_dims = s->n_dims;
		t->ne[0] = s->shape[s->n_dims - 1];
		t->ne[1] = s->n_dims == 2 ? s->shape[0] : 1;
		t->ne[2] = t->ne[3] = 1;
		t->data = s->data;
		x->n++;
	}
	if (h->rope_llama3) {
		struct xtensor *t = &x->t[x->n++];
		if ((x->own = rope_factors(h)) == NULL)
			return err_set(e, "out of memory");
		snprintf(t->name, sizeof(t->name), "rope_freqs.weight");
		t->type = t->out_type = GGML_TYPE_F32;
		t->n_dims = 1;
		t->ne[0] = (uint64_t)(h->head_dim / 2);
		t->ne[1] = t->ne[2] = t->ne[3] = 1;
		t->data = x->own;
	}
	return 0;
}

int
model_export_tensors(const struct model *m, struct xtensors *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	if ((m->gguf != NULL ? from_gguf(m, out, e) : from_hf(m, out, e)) == -1) {
		model_export_free(out);
		return -1;
	}
	qsort(out->t, out->n, sizeof(*out->t), by_layer_name);
	return 0;
}

void
model_export_free(struct xtensors *x)
{
	free(x->t);
	free(x->own);
	memset(x, 0, sizeof(*x));
}

void
model_export_row(const struct xtensor *t, uint64_t r, float *out)
{
	uint64_t n = t->ne[0], src = r;

	if (t->permute_heads > 0 && t->n_dims == 2) {
		/* GGUF row h*hd + 2i + j holds HF row h*hd + j*hd/2 + i (the rotate-half halves
		 * interleaved, as convert_hf_to_gguf.py's permute) */
		uint64_t hd = t->ne[1] / (uint64_t)t->permute_heads, h = r / hd, k = r % hd;
		src = h * hd + (k % 2) * (hd / 2) + k / 2;
	}
	const char *p = (const char *)t->data;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t at = src * n + i;
		if (t->type == GGML_TYPE_F32)
			memcpy(&out[i], p + 4 * at, 4);
		else {
			uint16_t v;
			memcpy(&v, p + 2 * at, 2);
			out[i] = t->type == GGML_TYPE_F16 ? f16_to_f32(v) : bf16_to_f32(v);
		}
	}
}

/* ---- metadata ------------------------------------------------------------------------ */

static int
copy_gguf_meta(const struct model *m, struct gguf_writer *w, struct err *e)
{
	for (size_t i = 0; i < gguf_n_kv(m->gguf); i++) {
		const char *key;
		uint32_t type;
		const void *raw;
		size_t n;
		gguf_kv_at(m->gguf, i, &key, &type, &raw, &n);
		if (gguf_writer_kv_raw(w, key, type, raw, n, e) == -1)
			return -1;
	}
	return 0;
}

/* a BPE token as GGUF spells it: normal tokens in GPT-2's byte-to-character mapping */
static int
bpe_spelling(const struct tok *t, int32_t id, struct buf *b)
{
	if (t->type[id] != TT_NORMAL)
		return buf_add(b, t->text[id], t->len[id]);
	for (uint32_t i = 0; i < t->len[id]; i++) {
		char c[2];
		int k = bytelevel_encode_byte((unsigned char)t->text[id][i], c);
		if (buf_add(b, c, (size_t)k) == -1)
			return -1;
	}
	return 0;
}

/* The vocabulary padded to the model's vocab_size as convert_hf_to_gguf.py pads it: ids the
 * tokenizer lacks become "[PAD<id>]", type unused (score -1000 for SentencePiece). */
static int
tok_meta(const struct model *m, struct gguf_writer *w, struct err *e)
{
	const struct tok *t = m->tok;
	const struct hparams *h = &m->hp;
	int nt = t->n_vocab, n = h->n_vocab > nt ? h->n_vocab : nt, rc = -1;
	struct buf *sp = calloc((size_t)n, sizeof(*sp));
	const char **s = calloc((size_t)n, sizeof(*s));
	size_t *len = calloc((size_t)n, sizeof(*len));
	float *score = calloc((size_t)n, sizeof(*score));
	int32_t *type = calloc((size_t)n, sizeof(*type));
	struct buf *mg = NULL;
	const char **ms = NULL;
	size_t *ml = NULL, nm = 0;

	if (sp == NULL || s == NULL || len == NULL || score == NULL || type == NULL)
		goto oom;
	for (int i = 0; i < n; i++) {
		if (i >= nt) {
			if (buf_printf(&sp[i], "[PAD%d]", i) == -1)
				goto oom;
			score[i] = -1000.0f;
			type[i] = TT_UNUSED;
		} else if (t->kind == TOK_BPE) {
			if (bpe_spelling(t, i, &sp[i]) == -1)
				goto oom;
		} else if (buf_add(&sp[i], t->text[i], t->len[i]) == -1)
			goto oom;
		if (i < nt) {
			score[i] = t->score[i];
			type[i] = t->type[i];
		}
		s[i] = sp[i].p ? sp[i].p : "";
		len[i] = sp[i].n;
	}
	if (gguf_writer_kv_str(w, "tokenizer.ggml.model", t->kind == TOK_BPE ? "gpt2" : "llama",
	    t->kind == TOK_BPE ? 4 : 5, e) == -1)
		goto out;
	const char *pre = t->kind == TOK_BPE ? "llama-bpe" : "default";
	if (gguf_writer_kv_str(w, "tokenizer.ggml.pre", pre, strlen(pre), e) == -1 ||
	    gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", s, len, (size_t)n, e) == -1)
		goto out;
	if (t->kind == TOK_SPM &&
	    gguf_writer_kv_arr(w, "tokenizer.ggml.scores", GGUF_F32, score, (size_t)n, e) == -1)
		goto out;
	if (gguf_writer_kv_arr(w, "tokenizer.ggml.token_type", GGUF_I32, type, (size_t)n, e))
		goto out;
	if (t->kind == TOK_BPE) {
		/* the merges by rank, from the pair table */
		size_t cap = t->merges.n;
		if ((mg = calloc(cap ? cap : 1, sizeof(*mg))) == NULL ||
		    (ms = calloc(cap ? cap : 1, sizeof(*ms))) == NULL ||
		    (ml = calloc(cap ? cap : 1, sizeof(*ml))) == NULL)
			goto oom;
		for (size_t i = 0; i < t->merges.cap; i++) {
			const struct pairmap_slot *sl = &t->merges.slots[i];
			if (sl->key == 0)
				continue;
			uint64_t k = sl->key - 1;
			int32_t a = (int32_t)(k >> 32), b = (int32_t)(k & 0xffffffffu);
			if (sl->rank < 0 || (size_t)sl->rank >= cap || a < 0 || a >= nt || b < 0 || b >= nt)
				continue;
			struct buf *o = &mg[sl->rank];
			if (bpe_spelling(t, a, o) == -1 || buf_add(o, " ", 1) == -1 ||
			    bpe_spelling(t, b, o) == -1)
				goto oom;
		}
		for (size_t i = 0; i < cap; i++)
			if (mg[i].p != NULL) {
				ms[nm] = mg[i].p;
				ml[nm++] = mg[i].n;
			}
		if (gguf_writer_kv_arr_str(w, "tokenizer.ggml.merges", ms, ml, nm, e) == -1)
			goto out;
	}
	int32_t bos = h->bos >= 0 && h->bos < n ? h->bos : t->bos;
	int32_t eos = h->eos >= 0 && h->eos < n ? h->eos : t->eos;
	if (bos >= 0 && gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos, e))
		goto out;
	if (eos >= 0 && gguf_writer_kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos, e))
		goto out;
	if (t->kind == TOK_SPM && t->unk >= 0 &&
	    gguf_writer_kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk, e))
		goto out;
	if (gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", 1, e) == -1)
		goto out;
	if (t->kind == TOK_SPM && gguf_writer_kv_bool(w, "tokenizer.ggml.add_eos_token", 0, e))
		goto out;
	rc = 0;
	goto out;
oom:
	err_set(e, "out of memory");
out:
	for (int i = 0; sp != NULL && i < n; i++)
		buf_free(&sp[i]);
	for (size_t i = 0; mg != NULL && i < t->merges.n; i++)
		buf_free(&mg[i]);
	free(sp);
	free(s);
	free(len);
	free(score);
	free(type);
	free(mg);
	free(ms);
	free(ml);
	return rc;
}

static int
hf_meta(const struct model *m, struct gguf_writer *w, struct err *e)
{
	const struct hparams *h = &m->hp;
	const char *base = strrchr(m->path, '/');
	char name[256];
	size_t nl;

	snprintf(name, sizeof(name), "%s", base && base[1] ? base + 1 : m->path);
	nl = strlen(name);
	while (nl > 0 && name[nl - 1] == '/')
		name[--nl] = '\0';
	if (m->tok == NULL)
		return err_set(e, "%s: no tokenizer (tokenizer.json or tokenizer.model): a GGUF "
		    "needs one", m->path);
	if (m->mm != NULL)	/* Llama 3.2-Vision: core/mllama_gguf.c */
		return mllama_export_meta(m, w, e) == -1 ? -1 : tok_meta(m, w, e);
	if (gguf_writer_kv_str(w, "general.architecture", "llama", 5, e) ||
	    gguf_writer_kv_str(w, "general.name", name, nl, e) ||
	    gguf_writer_kv_u32(w, "llama.context_length", (uint32_t)h->n_ctx_train, e) ||
	    gguf_writer_kv_u32(w, "llama.embedding_length", (uint32_t)h->n_embd, e) ||
	    gguf_writer_kv_u32(w, "llama.block_count", (uint32_t)h->n_layer, e) ||
	    gguf_writer_kv_u32(w, "llama.feed_forward_length", (uint32_t)h->n_ff, e) ||
	    gguf_writer_kv_u32(w, "llama.attention.head_count", (uint32_t)h->n_head, e) ||
	    gguf_writer_kv_u32(w, "llama.attention.head_count_kv", (uint32_t)h->n_head_kv, e) ||
	    gguf_writer_kv_u32(w, "llama.rope.dimension_count", (uint32_t)h->head_dim, e) ||
	    gguf_writer_kv_f32(w, "llama.rope.freq_base", h->rope_theta, e) ||
	    gguf_writer_kv_f32(w, "llama.attention.layer_norm_rms_epsilon", h->eps, e))
		return -1;
	if (h->head_dim != h->n_embd / h->n_head &&
	    (gguf_writer_kv_u32(w, "llama.attention.key_length", (uint32_t)h->head_dim, e) ||
	    gguf_writer_kv_u32(w, "llama.attention.value_length", (uint32_t)h->head_dim, e)))
		return -1;
	if (gguf_writer_kv_u32(w, "llama.vocab_size", (uint32_t)h->n_vocab, e) ||
	    gguf_writer_kv_u32(w, "general.file_type", m->wtype == GGML_TYPE_F32 ? 0 :
	    m->wtype == GGML_TYPE_F16 ? 1 : 32, e))
		return -1;
	return tok_meta(m, w, e);
}

int
model_export_meta(const struct model *m, struct gguf_writer *w, struct err *e)
{
	return m->gguf != NULL ? copy_gguf_meta(m, w, e) : hf_meta(m, w, e);
}
