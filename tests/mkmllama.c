/* mkmllama.c - writes hash-noise Llama 3.2-Vision ("mllama") checkpoints in the Hub's layout of
 * meta-llama/Llama-3.2-11B-Vision-Instruct (../shared/reference/README.md, "Llama 3.2-Vision"):
 * config.json with text_config/vision_config, preprocessor_config.json, generation_config.json,
 * chat_template.json, the tokenizer files, sharded safetensors and model.safetensors.index.json.
 *
 *   mkmllama SPEC hf DIR [f32|f16|bf16]     (tests/mkmodel runs this for the mllama specs)
 *
 * SPEC: tiny-mllama (the reference's model: in f32 every file is byte for byte what
 * `mkref.py model tiny-mllama` writes, spec.json included), mllama-11b (the shape of
 * Llama-3.2-11B-Vision: text 40 layers, 8 of them cross-attention, hidden 4096, 32/8 heads,
 * MLP 14336; vision 32 local + 8 global layers of 1280, 16 heads, MLP 5120; 21 GB in BF16,
 * shards of at most 5 GB as on the Hub). Values follow the hash-noise rule, with mkref.py's
 * mllama classes (norms 1 +- 0.25, scalar gates 0.25 + 0.5u, everything else +-0.035); in
 * bf16/f16 every tensor (norms and gates too) is stored in that type, as Meta's are.
 *
 * The JSON files are written as Python's json.dump writes them (indent, key order, float
 * repr), which is what makes tiny-mllama's bytes equal to the reference writer's. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/half.h"
#include "util/buf.h"

#include "tests/hashnoise.h"

struct mspec {
	const char *name;
	int vocab, hidden, layers, heads, kv_heads, ffn, max_pos;
	int cross[16], n_cross;
	double theta, eps, factor;
	/* vision */
	int image, patch, tiles, vhidden, vheads, vinter, vlayers, vglobal;
	int inter[8], n_inter;
	double veps;
	uint64_t shard_max;	/* 0: mkref.py's two shards (text, vision) */
};

static const struct mspec specs[] = {
	{ "tiny-mllama", 128256, 256, 4, 4, 2, 512, 131072, { 1, 3 }, 2, 500000.0, 1e-5, 8.0,
	  560, 14, 4, 64, 2, 128, 4, 2, { 1, 3 }, 2, 1e-5, 0 },
	{ "mllama-11b", 128256, 4096, 40, 32, 8, 14336, 131072, { 3, 8, 13, 18, 23, 28, 33, 38 }, 8,
	  500000.0, 1e-5, 8.0, 560, 14, 4, 1280, 16, 5120, 32, 8, { 3, 7, 15, 23, 30 }, 5, 1e-5,
	  5000000000ull },
};

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "mkmllama: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* --- tensors: names and shapes in mkref.py's mllama_tensor_shapes order ------------------ */

struct tens {
	char name[112];
	int nd;
	int64_t shape[4];
	int shard;		/* 1-based */
	uint64_t off, bytes;	/* in its shard's data */
};

struct tlist {
	struct tens *t;
	int n, cap;
};

static void
add(struct tlist *L, int nd, int64_t a, int64_t b, int64_t c, int64_t d, const char *fmt, ...)
{
	va_list ap;

	if (L->n == L->cap) {
		L->cap = L->cap ? 2 * L->cap : 256;
		if ((L->t = realloc(L->t, (size_t)L->cap * sizeof(*L->t))) == NULL)
			die("out of memory");
	}
	struct tens *t = &L->t[L->n++];
	memset(t, 0, sizeof(*t));
	va_start(ap, fmt);
	vsnprintf(t->name, sizeof(t->name), fmt, ap);
	va_end(ap);
	t->nd = nd;
	t->shape[0] = a, t->shape[1] = b, t->shape[2] = c, t->shape[3] = d;
}

static int
n_ar(int tiles)
{
	int n = 0;

	for (int a = 1; a <= tiles; a++)
		for (int b = 1; b <= tiles; b++)
			n += a * b <= tiles;
	return n;
}

static void
shapes(const struct mspec *s, struct tlist *L)
{
	int d = s->hidden, f = s->ffn, hd = d / s->heads, vd = s->vhidden, vf = s->vinter;
	int64_t np = (int64_t)(s->image / s->patch) * (s->image / s->patch) + 1, nar = n_ar(s->tiles) + 1;
	const char *P = "language_model.model.";

	add(L, 2, s->vocab + 8, d, 0, 0, "%sembed_tokens.weight", P);
	for (int l = 0; l < s->layers; l++) {
		int x = 0;
		for (int i = 0; i < s->n_cross; i++)
			x |= s->cross[i] == l;
		const char *a = x ? "cross_attn" : "self_attn";
		add(L, 2, s->heads * hd, d, 0, 0, "%slayers.%d.%s.q_proj.weight", P, l, a);
		add(L, 2, s->kv_heads * hd, d, 0, 0, "%slayers.%d.%s.k_proj.weight", P, l, a);
		add(L, 2, s->kv_heads * hd, d, 0, 0, "%slayers.%d.%s.v_proj.weight", P, l, a);
		add(L, 2, d, s->heads * hd, 0, 0, "%slayers.%d.%s.o_proj.weight", P, l, a);
		if (x) {
			add(L, 1, hd, 0, 0, 0, "%slayers.%d.cross_attn.q_norm.weight", P, l);
			add(L, 1, hd, 0, 0, 0, "%slayers.%d.cross_attn.k_norm.weight", P, l);
			add(L, 1, 1, 0, 0, 0, "%slayers.%d.cross_attn_attn_gate", P, l);
			add(L, 1, 1, 0, 0, 0, "%slayers.%d.cross_attn_mlp_gate", P, l);
		}
		add(L, 1, d, 0, 0, 0, "%slayers.%d.input_layernorm.weight", P, l);
		add(L, 1, d, 0, 0, 0, "%slayers.%d.post_attention_layernorm.weight", P, l);
		add(L, 2, f, d, 0, 0, "%slayers.%d.mlp.gate_proj.weight", P, l);
		add(L, 2, f, d, 0, 0, "%slayers.%d.mlp.up_proj.weight", P, l);
		add(L, 2, d, f, 0, 0, "%slayers.%d.mlp.down_proj.weight", P, l);
	}
	add(L, 1, d, 0, 0, 0, "%snorm.weight", P);
	add(L, 2, s->vocab, d, 0, 0, "language_model.lm_head.weight");
	const char *V = "vision_model.";
	add(L, 4, vd, 3, s->patch, s->patch, "%spatch_embedding.weight", V);
	add(L, 1, vd, 0, 0, 0, "%sclass_embedding", V);
	add(L, 2, np, vd, 0, 0, "%sgated_positional_embedding.embedding", V);
	add(L, 1, 1, 0, 0, 0, "%sgated_positional_embedding.gate", V);
	add(L, 2, nar, s->tiles * np * vd, 0, 0, "%sgated_positional_embedding.tile_embedding.weight", V);
	add(L, 2, nar, (int64_t)s->tiles * vd, 0, 0, "%spre_tile_positional_embedding.embedding.weight", V);
	add(L, 1, 1, 0, 0, 0, "%spre_tile_positional_embedding.gate", V);
	add(L, 2, nar, (int64_t)s->tiles * vd, 0, 0, "%spost_tile_positional_embedding.embedding.weight", V);
	add(L, 1, 1, 0, 0, 0, "%spost_tile_positional_embedding.gate", V);
	add(L, 1, vd, 0, 0, 0, "%slayernorm_pre.weight", V);
	add(L, 1, vd, 0, 0, 0, "%slayernorm_pre.bias", V);
	add(L, 1, vd, 0, 0, 0, "%slayernorm_post.weight", V);
	add(L, 1, vd, 0, 0, 0, "%slayernorm_post.bias", V);
	for (int g = 0; g < 2; g++) {
		const char *enc = g ? "global_transformer" : "transformer";
		for (int i = 0; i < (g ? s->vglobal : s->vlayers); i++) {
			char p[96];
			snprintf(p, sizeof(p), "%s%s.layers.%d.", V, enc, i);
			add(L, 2, vd, vd, 0, 0, "%sself_attn.q_proj.weight", p);
			add(L, 2, vd, vd, 0, 0, "%sself_attn.k_proj.weight", p);
			add(L, 2, vd, vd, 0, 0, "%sself_attn.v_proj.weight", p);
			add(L, 2, vd, vd, 0, 0, "%sself_attn.o_proj.weight", p);
			add(L, 2, vf, vd, 0, 0, "%smlp.fc1.weight", p);
			add(L, 1, vf, 0, 0, 0, "%smlp.fc1.bias", p);
			add(L, 2, vd, vf, 0, 0, "%smlp.fc2.weight", p);
			add(L, 1, vd, 0, 0, 0, "%smlp.fc2.bias", p);
			add(L, 1, vd, 0, 0, 0, "%sinput_layernorm.weight", p);
			add(L, 1, vd, 0, 0, 0, "%sinput_layernorm.bias", p);
			add(L, 1, vd, 0, 0, 0, "%spost_attention_layernorm.weight", p);
			add(L, 1, vd, 0, 0, 0, "%spost_attention_layernorm.bias", p);
			if (g) {
				add(L, 1, 1, 0, 0, 0, "%sgate_attn", p);
				add(L, 1, 1, 0, 0, 0, "%sgate_ffn", p);
			}
		}
	}
	add(L, 2, d, (int64_t)vd * (1 + s->n_inter), 0, 0, "multi_modal_projector.weight");
	add(L, 1, d, 0, 0, 0, "multi_modal_projector.bias");
}

static uint64_t
numel(const struct tens *t)
{
	uint64_t n = 1;

	for (int i = 0; i < t->nd; i++)
		n *= (uint64_t)t->shape[i];
	return n;
}

/* --- the hash-noise rule with mkref.py's value classes --------------------------------- */

enum vclass { V_MATRIX, V_NORM, V_GATE };

static enum vclass
value_class(const char *name)
{
	static const char *const gates[] = { "gate", "gate_attn", "gate_ffn", "cross_attn_attn_gate",
		"cross_attn_mlp_gate" };
	const char *last = strrchr(name, '.');
	last = last ? last + 1 : name;
	if (strcmp(last, "weight") == 0 && last > name + 1) {
		/* the module name before ".weight" */
		const char *end = last - 1, *b = end;
		while (b > name && b[-1] != '.')
			b--;
		if (memmem(b, (size_t)(end - b), "norm", 4) != NULL)
			return V_NORM;
	}
	for (size_t i = 0; i < sizeof(gates) / sizeof(gates[0]); i++)
		if (strcmp(last, gates[i]) == 0)
			return V_GATE;
	return V_MATRIX;
}

static void
values_at(const char *name, enum vclass vc, uint64_t start, size_t n, float *out)
{
	uint64_t seed = hashnoise_seed(name);

	for (size_t i = 0; i < n; i++) {
		double u = hashnoise_unit(seed, start + i);
		out[i] = vc == V_NORM ? (float)(1.0 + (2.0 * u - 1.0) * 0.25) :
		    vc == V_GATE ? (float)(0.25 + 0.5 * u) : (float)((2.0 * u - 1.0) * 0.035);
	}
}

/* --- Python's json.dump, as far as these files need it ---------------------------------- */

/* float.__repr__: the shortest digits that read back, fixed notation for 1e-4 <= |x| < 1e16 */
static void
py_float(struct buf *b, double x)
{
	char s[40], dig[24];
	int prec, e;

	if (x == 0) {
		buf_adds(b, signbit(x) ? "-0.0" : "0.0");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(s, sizeof(s), "%.*e", prec - 1, x);
		if (strtod(s, NULL) == x)
			break;
	}
	char *p = s, *ep = strchr(s, 'e');
	int nd = 0;
	if (*p == '-') {
		buf_adds(b, "-");
		p++;
	}
	for (; p < ep; p++)
		if (*p != '.')
			dig[nd++] = *p;
	while (nd > 1 && dig[nd - 1] == '0')
		nd--;
	dig[nd] = '\0';
	e = atoi(ep + 1);
	if (e >= -4 && e < 16) {
		if (e < 0) {
			buf_adds(b, "0.");
			for (int i = 0; i < -e - 1; i++)
				buf_adds(b, "0");
			buf_adds(b, dig);
		} else {
			for (int i = 0; i <= e; i++)
				buf_add(b, i < nd ? &dig[i] : "0", 1);
			buf_adds(b, ".");
			buf_adds(b, nd > e + 1 ? dig + e + 1 : "0");
		}
		return;
	}
	buf_add(b, dig, 1);
	if (nd > 1) {
		buf_adds(b, ".");
		buf_adds(b, dig + 1);
	}
	buf_printf(b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
}

/* a string with ensure_ascii=False: only quotes, backslashes and control characters escaped */
static void
py_str(struct buf *b, const char *s, size_t n)
{
	buf_adds(b, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"')
			buf_adds(b, "\\\"");
		else if (c == '\\')
			buf_adds(b, "\\\\");
		else if (c == '\n')
			buf_adds(b, "\\n");
		else if (c == '\r')
			buf_adds(b, "\\r");
		else if (c == '\t')
			buf_adds(b, "\\t");
		else if (c == '\b')
			buf_adds(b, "\\b");
		else if (c == '\f')
			buf_adds(b, "\\f");
		else if (c < 0x20)
			buf_printf(b, "\\u%04x", c);
		else
			buf_add(b, (const char *)&c, 1);
	}
	buf_adds(b, "\"");
}

static int
by_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
py_dump(struct buf *b, json_t *v, int indent, int level, int sort)
{
	size_t i, n;
	json_t *x;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if ((n = json_object_size(v)) == 0) {
			buf_adds(b, "{}");
			return;
		}
		const char **keys = calloc(n, sizeof(*keys));
		const char *k;
		i = 0;
		json_object_foreach(v, k, x)
			keys[i++] = k;
		if (sort)
			qsort(keys, n, sizeof(*keys), by_key);
		buf_adds(b, "{");
		for (i = 0; i < n; i++) {
			buf_printf(b, "%s\n%*s", i ? "," : "", indent * (level + 1), "");
			py_str(b, keys[i], strlen(keys[i]));
			buf_adds(b, ": ");
			py_dump(b, json_object_get(v, keys[i]), indent, level + 1, sort);
		}
		buf_printf(b, "\n%*s}", indent * level, "");
		free(keys);
		return;
	case JSON_ARRAY:
		if (json_array_size(v) == 0) {
			buf_adds(b, "[]");
			return;
		}
		buf_adds(b, "[");
		json_array_foreach(v, i, x) {
			buf_printf(b, "%s\n%*s", i ? "," : "", indent * (level + 1), "");
			py_dump(b, x, indent, level + 1, sort);
		}
		buf_printf(b, "\n%*s]", indent * level, "");
		return;
	case JSON_STRING:
		py_str(b, json_string_value(v), json_string_length(v));
		return;
	case JSON_INTEGER:
		buf_printf(b, "%lld", (long long)json_integer_value(v));
		return;
	case JSON_REAL:
		py_float(b, json_real_value(v));
		return;
	case JSON_TRUE: buf_adds(b, "true"); return;
	case JSON_FALSE: buf_adds(b, "false"); return;
	case JSON_NULL: buf_adds(b, "null"); return;
	}
}

static void
write_buf(const char *dir, const char *name, const struct buf *b)
{
	char path[4200];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL)
		die("%s: %s", path, strerror(errno));
	if ((b->n && fwrite(b->p, 1, b->n, fp) != b->n) || fclose(fp) != 0)
		die("%s: %s", path, strerror(errno));
}

/* json.dump(obj, fp, indent=indent, sort_keys=sort) into dir/name; takes the reference */
static void
dump_file(const char *dir, const char *name, json_t *obj, int indent, int sort)
{
	struct buf b = { 0 };

	py_dump(&b, obj, indent, 0, sort);
	write_buf(dir, name, &b);
	buf_free(&b);
	json_decref(obj);
}

static json_t *
ilist(const int *v, int n)
{
	json_t *a = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_integer(v[i]));
	return a;
}

static json_t *
eos_list(void)
{
	static const int eos[] = { 128001, 128008, 128009 };

	return ilist(eos, 3);
}

static json_t *
rope_scaling(const struct mspec *s)
{
	return json_pack("{s:f, s:f, s:f, s:i, s:s}", "factor", s->factor, "low_freq_factor", 1.0,
	    "high_freq_factor", 4.0, "original_max_position_embeddings", 8192, "rope_type", "llama3");
}

static json_t *
aspect_ratios(const struct mspec *s)
{
	json_t *a = json_array();

	for (int h = 1; h <= s->tiles; h++)
		for (int w = 1; w <= s->tiles; w++)
			if (h * w <= s->tiles)
				json_array_append_new(a, json_pack("[i, i]", h, w));
	return a;
}

static void
write_configs(const struct mspec *s, const char *dir, const char *dtype)
{
	json_t *text = json_pack("{s:i, s:o, s:i, s:o, s:s, s:i, s:f, s:i, s:i, s:s, s:i, s:i, s:i,"
	    " s:i, s:f, s:o, s:f, s:b, s:s, s:b, s:i}",
	    "bos_token_id", 128000, "cross_attention_layers", ilist(s->cross, s->n_cross),
	    "dropout", 0, "eos_token_id", eos_list(), "hidden_act", "silu", "hidden_size", s->hidden,
	    "initializer_range", 0.02, "intermediate_size", s->ffn,
	    "max_position_embeddings", s->max_pos, "model_type", "mllama_text_model",
	    "num_attention_heads", s->heads, "num_hidden_layers", s->layers,
	    "num_key_value_heads", s->kv_heads, "pad_token_id", 128004, "rms_norm_eps", s->eps,
	    "rope_scaling", rope_scaling(s), "rope_theta", s->theta, "tie_word_embeddings", 0,
	    "torch_dtype", dtype, "use_cache", 1, "vocab_size", s->vocab);
	json_t *vision = json_pack("{s:i, s:s, s:i, s:i, s:f, s:o, s:i, s:i, s:s, s:f, s:i, s:i,"
	    " s:i, s:i, s:o, s:s, s:i}",
	    "attention_heads", s->vheads, "hidden_act", "gelu", "hidden_size", s->vhidden,
	    "image_size", s->image, "initializer_range", 0.02,
	    "intermediate_layers_indices", ilist(s->inter, s->n_inter),
	    "intermediate_size", s->vinter, "max_num_tiles", s->tiles,
	    "model_type", "mllama_vision_model", "norm_eps", s->veps, "num_channels", 3,
	    "num_global_layers", s->vglobal, "num_hidden_layers", s->vlayers,
	    "patch_size", s->patch, "supported_aspect_ratios", aspect_ratios(s), "torch_dtype", dtype,
	    "vision_output_dim", s->vhidden * (1 + s->n_inter));
	dump_file(dir, "config.json", json_pack("{s:[s], s:i, s:s, s:o, s:s, s:o}",
	    "architectures", "MllamaForConditionalGeneration", "image_token_index", 128256,
	    "model_type", "mllama", "text_config", text, "torch_dtype", dtype,
	    "vision_config", vision), 2, 1);
	dump_file(dir, "preprocessor_config.json", json_pack("{s:b, s:b, s:b, s:b, s:b, s:[f, f, f],"
	    " s:s, s:[f, f, f], s:i, s:i, s:f, s:{s:i, s:i}}",
	    "do_convert_rgb", 1, "do_normalize", 1, "do_pad", 1, "do_rescale", 1, "do_resize", 1,
	    "image_mean", 0.48145466, 0.4578275, 0.40821073,
	    "image_processor_type", "MllamaImageProcessor",
	    "image_std", 0.26862954, 0.26130258, 0.27577711, "max_image_tiles", s->tiles,
	    "resample", 2, "rescale_factor", 1.0 / 255, "size", "height", s->image, "width",
	    s->image), 2, 1);
	dump_file(dir, "generation_config.json", json_pack("{s:i, s:b, s:o, s:i, s:f, s:f}",
	    "bos_token_id", 128000, "do_sample", 1, "eos_token_id", eos_list(), "pad_token_id", 128004,
	    "temperature", 0.6, "top_p", 0.9), 2, 0);
	/* mkref.py's spec.json: dict(spec=name, **SPECS[name]), indent 1 */
	json_t *rs = rope_scaling(s);
	dump_file(dir, "spec.json", json_pack("{s:s, s:s, s:i, s:i, s:i, s:o, s:i, s:i, s:i, s:f,"
	    " s:f, s:b, s:i, s:o, s:i, s:o, s:i, s:i, s:s, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i,"
	    " s:i, s:o, s:f, s:i}}",
	    "spec", s->name, "family", "mllama", "vocab", s->vocab, "hidden", s->hidden,
	    "layers", s->layers, "cross_layers", ilist(s->cross, s->n_cross), "heads", s->heads,
	    "kv_heads", s->kv_heads, "ffn", s->ffn, "theta", s->theta, "eps", s->eps, "tied", 0,
	    "max_pos", s->max_pos, "rope_scaling", rs, "bos", 128000, "eos", eos_list(),
	    "pad", 128004, "image_token", 128256, "tokenizer", "llama3", "vision",
	    "image_size", s->image, "patch_size", s->patch, "max_num_tiles", s->tiles,
	    "hidden", s->vhidden, "heads", s->vheads, "intermediate", s->vinter,
	    "layers", s->vlayers, "global_layers", s->vglobal,
	    "intermediate_layers_indices", ilist(s->inter, s->n_inter), "norm_eps", s->veps,
	    "channels", 3), 1, 0);
}

/* --- the tokenizer: Llama 3's, with Llama 3.2-Vision's special-token names -------------- */

static void
special_name(int id, char *out, size_t n)
{
	static const char *const first[] = { "<|begin_of_text|>", "<|end_of_text|>",
		"<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
		"<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>",
		"<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>" };
	int i = id - 128000;

	if (id == 128256)
		snprintf(out, n, "<|image|>");
	else if (i >= 0 && i < 11)
		snprintf(out, n, "%s", first[i]);
	else
		snprintf(out, n, "<|reserved_special_token_%d|>", i - 11 + 2);
}

static json_t *
load_json(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);

	if (j == NULL)
		die("%s:%d: %s", path, je.line, je.text);
	return j;
}

/* tokenizer_config.json: its model_max_length (1e30, too big for jansson's integers) is
 * replaced below anyway, so it is read as 0 */
static json_t *
load_json_maxlen(const char *path)
{
	FILE *fp = fopen(path, "rb");
	struct buf b = { 0 };
	char chunk[65536], *k, *p;
	size_t n;
	json_error_t je;

	if (fp == NULL)
		die("%s: %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&b, chunk, n);
	fclose(fp);
	buf_add(&b, "", 1);
	if ((k = strstr(b.p, "\"model_max_length\":")) != NULL) {
		p = k + strlen("\"model_max_length\":");
		while (*p == ' ')
			p++;
		for (int first = 1; *p >= '0' && *p <= '9'; p++, first = 0)
			*p = first ? '0' : ' ';
	}
	json_t *j = json_loadb(b.p, b.n - 1, 0, &je);
	if (j == NULL)
		die("%s:%d: %s", path, je.line, je.text);
	buf_free(&b);
	return j;
}

static void
write_tokenizer(const char *dir, const char *shared)
{
	char path[4200], nm[64];
	json_t *tok, *cfg, *a, *x;
	size_t i;

	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama3/tokenizer.json", shared);
	tok = load_json(path);
	a = json_object_get(tok, "added_tokens");
	json_array_foreach(a, i, x) {
		special_name((int)json_integer_value(json_object_get(x, "id")), nm, sizeof(nm));
		json_object_set_new(x, "content", json_string(nm));
	}
	x = json_deep_copy(json_array_get(a, json_array_size(a) - 1));
	json_object_set_new(x, "id", json_integer(128256));
	json_object_set_new(x, "content", json_string("<|image|>"));
	json_array_append_new(a, x);
	dump_file(dir, "tokenizer.json", tok, 2, 0);

	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama3/tokenizer_config.json", shared);
	cfg = load_json_maxlen(path);
	json_t *dec = json_object_get(cfg, "added_tokens_decoder");
	const char *k;
	json_object_foreach(dec, k, x) {
		special_name(atoi(k), nm, sizeof(nm));
		json_object_set_new(x, "content", json_string(nm));
	}
	x = json_deep_copy(json_object_get(dec, "128255"));
	json_object_set_new(x, "content", json_string("<|image|>"));
	json_object_set_new(dec, "128256", x);
	json_object_del(cfg, "chat_template");
	json_object_set_new(cfg, "bos_token", json_string("<|begin_of_text|>"));
	json_object_set_new(cfg, "eos_token", json_string("<|eot_id|>"));
	json_object_set_new(cfg, "pad_token", json_string("<|finetune_right_pad_id|>"));
	json_object_set_new(cfg, "model_max_length", json_integer(131072));
	dump_file(dir, "tokenizer_config.json", cfg, 2, 0);

	snprintf(path, sizeof(path), "%s/spec/templates/l32v_template.txt", shared);
	FILE *fp = fopen(path, "rb");
	struct buf t = { 0 };
	char chunk[4096];
	size_t n;
	if (fp == NULL)
		die("%s: %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&t, chunk, n);
	fclose(fp);
	dump_file(dir, "chat_template.json", json_pack("{s:s%}", "chat_template", t.p ? t.p : "",
	    t.n), 2, 0);
	buf_free(&t);
}

/* --- safetensors shards and their index ------------------------------------------------- */

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct tens *)a)->name, ((const struct tens *)b)->name);
}

static void
xwrite(FILE *fp, const void *p, size_t n, const char *path)
{
	if (n && fwrite(p, 1, n, fp) != n)
		die("%s: %s", path, strerror(errno));
}

/* One shard, as the safetensors library writes it: tensors sorted by name (one dtype),
 * __metadata__ first, compact JSON, the header padded with spaces to a multiple of 8. */
static void
write_shard(const char *dir, const char *fname, struct tens *t, int n, const char *dt, int esz)
{
	struct buf h = { 0 };
	char path[4200];
	uint64_t off = 0;
	FILE *fp;

	qsort(t, (size_t)n, sizeof(*t), by_name);
	buf_adds(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (int i = 0; i < n; i++) {
		t[i].bytes = numel(&t[i]) * (uint64_t)esz;
		buf_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, dt);
		for (int d = 0; d < t[i].nd; d++)
			buf_printf(&h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
		buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
		    (unsigned long long)(off + t[i].bytes));
		t[i].off = off;
		off += t[i].bytes;
	}
	buf_adds(&h, "}");
	while (h.n % 8 != 0)
		buf_adds(&h, " ");
	snprintf(path, sizeof(path), "%s/%s", dir, fname);
	if ((fp = fopen(path, "wb")) == NULL)
		die("%s: %s", path, strerror(errno));
	uint64_t hl = h.n;
	xwrite(fp, &hl, 8, path);
	xwrite(fp, h.p, h.n, path);
	enum { CHUNK = 1 << 20 };
	float *v = malloc(CHUNK * sizeof(float));
	uint16_t *o = malloc(CHUNK * sizeof(uint16_t));
	if (v == NULL || o == NULL)
		die("out of memory");
	for (int i = 0; i < n; i++) {
		uint64_t ne = numel(&t[i]);
		enum vclass vc = value_class(t[i].name);
		for (uint64_t s0 = 0; s0 < ne; s0 += CHUNK) {
			size_t k = ne - s0 < CHUNK ? (size_t)(ne - s0) : CHUNK;
			values_at(t[i].name, vc, s0, k, v);
			if (esz == 4) {
				xwrite(fp, v, k * 4, path);
				continue;
			}
			for (size_t j = 0; j < k; j++)
				o[j] = strcmp(dt, "BF16") == 0 ? f32_to_bf16(v[j]) : f32_to_f16(v[j]);
			xwrite(fp, o, k * 2, path);
		}
	}
	free(v);
	free(o);
	if (fclose(fp) != 0)
		die("%s: %s", path, strerror(errno));
	buf_free(&h);
}

static void
write_hf(const struct mspec *s, const char *dir, const char *type, const char *shared)
{
	struct tlist L = { 0 };
	const char *dt = strcmp(type, "f32") == 0 ? "F32" : strcmp(type, "bf16") == 0 ? "BF16" : "F16";
	const char *torch = strcmp(type, "f32") == 0 ? "float32" : strcmp(type, "bf16") == 0 ?
	    "bfloat16" : "float16";
	int esz = strcmp(type, "f32") == 0 ? 4 : 2, nshard = 0;
	uint64_t total = 0, cur = 0;

	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		die("%s: %s", dir, strerror(errno));
	write_configs(s, dir, torch);
	write_tokenizer(dir, shared);
	shapes(s, &L);
	/* shards in model order: mkref.py's text/vision split, or the Hub's size-bounded ones */
	for (int i = 0; i < L.n; i++) {
		uint64_t b = numel(&L.t[i]) * (uint64_t)esz;
		if (s->shard_max == 0)
			L.t[i].shard = strncmp(L.t[i].name, "language_model.", 15) == 0 ? 1 : 2;
		else {
			if (nshard == 0 || (cur > 0 && cur + b > s->shard_max)) {
				nshard++;
				cur = 0;
			}
			cur += b;
			L.t[i].shard = nshard;
		}
		nshard = L.t[i].shard > nshard ? L.t[i].shard : nshard;
	}
	json_t *map = json_object();
	for (int k = 1; k <= nshard; k++) {
		char fname[64];
		int lo = L.n, hi = 0;
		snprintf(fname, sizeof(fname), "model-%05d-of-%05d.safetensors", k, nshard);
		/* the shard's tensors are contiguous in model order for both rules */
		for (int i = 0; i < L.n; i++)
			if (L.t[i].shard == k) {
				lo = i < lo ? i : lo;
				hi = i + 1;
			}
		for (int i = lo; i < hi; i++)
			if (L.t[i].shard != k)
				die("shard %d is not contiguous", k);
		write_shard(dir, fname, L.t + lo, hi - lo, dt, esz);
		for (int i = lo; i < hi; i++) {
			total += L.t[i].bytes;
			json_object_set_new(map, L.t[i].name, json_string(fname));
		}
		fprintf(stderr, "mkmllama: %s/%s\n", dir, fname);
	}
	/* weight_map sorted by name, metadata first (json.dump, indent 2, insertion order) */
	json_t *sorted = json_object();
	const char **keys = calloc((size_t)L.n, sizeof(*keys));
	const char *k;
	json_t *x;
	size_t n = 0;
	json_object_foreach(map, k, x)
		keys[n++] = k;
	qsort(keys, n, sizeof(*keys), by_key);
	for (size_t i = 0; i < n; i++)
		json_object_set(sorted, keys[i], json_object_get(map, keys[i]));
	dump_file(dir, "model.safetensors.index.json", json_pack("{s:{s:I}, s:o}", "metadata",
	    "total_size", (json_int_t)total, "weight_map", sorted), 2, 0);
	free(keys);
	json_decref(map);
	free(L.t);
}

int
main(int argc, char **argv)
{
	const struct mspec *s = NULL;

	if (argc < 4 || strcmp(argv[2], "hf") != 0) {
		fprintf(stderr, "usage: mkmllama tiny-mllama|mllama-11b hf DIR [f32|f16|bf16]\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		if (strcmp(argv[1], specs[i].name) == 0)
			s = &specs[i];
	if (s == NULL)
		die("unknown mllama model '%s' (tiny-mllama, mllama-11b)", argv[1]);
	const char *type = argc > 4 ? argv[4] : "f32";
	if (strcmp(type, "f32") && strcmp(type, "f16") && strcmp(type, "bf16"))
		die("unknown type '%s' (f32, f16, bf16)", type);
	const char *shared = getenv("GUARDD_SHARED") ? getenv("GUARDD_SHARED") : "../shared";
	write_hf(s, argv[3], type, shared);
	return 0;
}
