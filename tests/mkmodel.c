/* mkmodel.c - writes the hash-noise reference models of ../shared/reference/README.md
 * (bit-identical float32 values) as a Hugging Face directory or a GGUF file, so tests and
 * benchmarks build what they need instead of committing weights.
 *
 *   mkmodel SPEC hf DIR [f32|f16|bf16]
 *   mkmodel SPEC gguf FILE f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q8_k[-deq]
 *   mkmodel rig-gen-l3|rig-gen-safe-l3 chain|chain-ids
 *
 * SPEC: tiny-l3, tiny-l2, lg3-1b (Llama Guard 3 1B shape, untied head, llama3 rope factor 8),
 * rig-l3: a one-layer Llama 3 model whose weights are set by hand (not hash noise) so that it
 * answers a Llama Guard prompt like the real model would: "safe", or "unsafe\nS1" when the
 * word " bomb" (token 13054) occurs anywhere in the conversation; " poison" (21109) is a weak
 * trigger whose score lands in between (about 0.1-0.9, depending on the length). Its attention is uniform
 * (q = k = 0), so the value channel carries the trigger's share of the context into the
 * residual stream; the output head maps a few state tokens to their successor:
 * <|end_header_id|> -> "\n\n" -> safe | unsafe -> "\n" -> "S" -> "1" -> <|eot_id|>.
 *
 * rig-gen-l3: a one-layer Llama 3 model set by hand as a chat model whose answer is known in
 * advance, for the leak tests: after "\n\n" (271, the end of the assistant header) its greedy
 * output is always the chain below, one token at a time, then <|eot_id|> (128009):
 *
 *   "Sure, here is a long and friendly answer about cooking pasta at home with fresh
 *    tomatoes from the garden. First boil water in one big pot; then add olive oil plus
 *    basil until soft: your sauce becomes pure flavor bomb that everyone will love"
 *
 * (one line: single spaces, no newline, no quote), 48 tokens ids 40914 ("Sure") ... 3021
 * (" love"), " bomb" (13054, rig-l3's trigger) the 44th: 43 harmless tokens come first;
 * after <|eot_id|> it says <|eot_id|> again, and after any other token "!" (0).
 * rig-gen-safe-l3 is the same with " magic" (11204) in place of " bomb", for control tests.
 * Attention and MLP are zero (q = k = v = o = 0), so only the current token matters: the
 * embedding puts each chain token (and 271) on a residual channel of its own, and the output
 * head row of its successor reads that channel with a weight no other logit comes near.
 * That map is by current token, so no token occurs twice in a chain. `mkmodel SPEC chain`
 * prints the chain's text, `mkmodel SPEC chain-ids` the ids it generates (ending in 128009).
 *
 * tiny-l3-pruned and rig-l3-pruned: tiny-l3 and rig-l3 with a pruned output head, as Llama
 * Guard 3 1B-INT4 has (README "Pruned output heads"): 20 rows, those of the unpruned model's
 * head (tiny-l3's tied embedding, rig-l3's lm_head) for the tokens of Llama Guard's answers
 * (pruned_ids below, in that order), mapped by config.json's "output_token_ids" and the GGUF
 * key guardd.output_token_ids.
 *
 * The tokenizer comes from ../shared/reference/tokenizers (or $GUARDD_SHARED). */
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "core/gguf.h"
#include "core/half.h"
#include "tests/hashnoise.h"
#include "tests/mkquant.h"

/* one token of a rigged generator's answer: its id and its text (checked against the
 * vocabulary when the model is written) */
struct piece {
	int id;
	const char *text;
};

#define GEN_CHAIN(word, id) { \
	{ 40914, "Sure" }, { 11, "," }, { 1618, " here" }, { 374, " is" }, { 264, " a" }, \
	{ 1317, " long" }, { 323, " and" }, { 11919, " friendly" }, { 4320, " answer" }, \
	{ 922, " about" }, { 17677, " cooking" }, { 37547, " pasta" }, { 520, " at" }, \
	{ 2162, " home" }, { 449, " with" }, { 7878, " fresh" }, { 41613, " tomatoes" }, \
	{ 505, " from" }, { 279, " the" }, { 13863, " garden" }, { 13, "." }, { 5629, " First" }, \
	{ 44790, " boil" }, { 3090, " water" }, { 304, " in" }, { 832, " one" }, { 2466, " big" }, \
	{ 3419, " pot" }, { 26, ";" }, { 1243, " then" }, { 923, " add" }, { 33213, " olive" }, \
	{ 5707, " oil" }, { 5636, " plus" }, { 68186, " basil" }, { 3156, " until" }, \
	{ 8579, " soft" }, { 25, ":" }, { 701, " your" }, { 19737, " sauce" }, { 9221, " becomes" }, \
	{ 10748, " pure" }, { 17615, " flavor" }, { id, word }, { 430, " that" }, { 5127, " everyone" }, \
	{ 690, " will" }, { 3021, " love" }, { 0, NULL } }

static const struct piece chain_bomb[] = GEN_CHAIN(" bomb", 13054);
static const struct piece chain_safe[] = GEN_CHAIN(" magic", 11204);

struct spec {
	const char *name, *family;
	int vocab, hidden, layers, heads, kv_heads, ffn, max_pos;
	double theta, eps;
	int tied;
	double factor;		/* llama3 rope scaling, 0 = none */
	int bos, eos;
	int rig;		/* 1: rig-l3's hand-set weights, 2: a rigged generator (see gen_chain) */
	int pruned;		/* the head keeps the rows of pruned_ids only (tied: the embedding's) */
};

/* The tokens of Llama Guard 3's answers ("safe", "unsafe\nS1,S10", then <|eot_id|>), 20 as in
 * Meta's pruned head, which does not publish its list: safe, unsafe, "\n", "S", "1".."9",
 * "10".."14", ",", <|eot_id|>. Not sorted, so that a row is not its token's rank. */
static const int32_t pruned_ids[] = { 19193, 39257, 198, 50, 16, 17, 18, 19, 20, 21, 22, 23, 24,
	605, 806, 717, 1032, 975, 11, 128009 };
enum { N_PRUNED = sizeof(pruned_ids) / sizeof(pruned_ids[0]) };

static const struct spec specs[] = {
	{ "tiny-l3", "llama3", 128256, 256, 2, 4, 2, 512, 131072, 500000, 1e-5, 1, 32, 128000, 128009, 0, 0 },
	{ "tiny-l2", "llama2", 32000, 256, 2, 4, 4, 512, 4096, 10000, 1e-5, 0, 0, 1, 2, 0, 0 },
	{ "lg3-1b", "llama3", 128256, 2048, 16, 32, 8, 8192, 131072, 500000, 1e-5, 0, 8, 128000, 128009, 0, 0 },
	{ "l32-1b", "llama3", 128256, 2048, 16, 32, 8, 8192, 131072, 500000, 1e-5, 1, 32, 128000, 128009, 0, 0 },
	/* llama3 rope scaling as the real Llama Guard 3 has (its attention is uniform anyway) */
	{ "rig-l3", "llama3", 128256, 64, 1, 1, 1, 64, 131072, 500000, 1e-5, 0, 8, 128000, 128009, 1, 0 },
	/* generators: one residual channel per chain token, so hidden > the chain's length;
	 * llama3 rope scaling as every Llama 3.2 has (attention is zero anyway) */
	{ "rig-gen-l3", "llama3", 128256, 64, 1, 1, 1, 64, 131072, 500000, 1e-5, 0, 8, 128000, 128009, 2, 0 },
	{ "rig-gen-safe-l3", "llama3", 128256, 64, 1, 1, 1, 64, 131072, 500000, 1e-5, 0, 8, 128000, 128009, 2, 0 },
	/* pruned heads: the rows of pruned_ids of tiny-l3's (tied) and rig-l3's heads */
	{ "tiny-l3-pruned", "llama3", 128256, 256, 2, 4, 2, 512, 131072, 500000, 1e-5, 1, 32, 128000, 128009, 0, 1 },
	{ "rig-l3-pruned", "llama3", 128256, 64, 1, 1, 1, 64, 131072, 500000, 1e-5, 0, 8, 128000, 128009, 1, 1 },
};

static const char *shared;

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "mkmodel: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* --- the rigged model: residual dimensions and the token transitions ------------------- */

enum { R_HDR = 1, R_NN, R_SAFE, R_UNSAFE, R_NL, R_S, R_ONE, R_TRIG, R_ATT, R_WEAK };
enum { TK_HDR = 128007, TK_NN = 271, TK_SAFE = 19193, TK_UNSAFE = 39257, TK_NL = 198, TK_S = 50,
	TK_ONE = 16, TK_EOT = 128009, TK_TRIG = 13054, TK_WEAK = 21109 };

static void
rig_values(const char *name, int64_t rows, int64_t cols, float *v)
{
	size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
	size_t len = strlen(name);

	memset(v, 0, n * sizeof(float));
	if (len >= 11 && strcmp(name + len - 11, "norm.weight") == 0) {
		for (size_t i = 0; i < n; i++)
			v[i] = 1.0f;
		return;
	}
#define AT(r, c) v[(size_t)(r) * (size_t)cols + (size_t)(c)]
	if (strcmp(name, "model.embed_tokens.weight") == 0) {
		AT(TK_HDR, R_HDR) = 1; AT(TK_NN, R_NN) = 1; AT(TK_SAFE, R_SAFE) = 1;
		AT(TK_UNSAFE, R_UNSAFE) = 1; AT(TK_NL, R_NL) = 1; AT(TK_S, R_S) = 1;
		AT(TK_ONE, R_ONE) = 1; AT(TK_TRIG, R_TRIG) = 1; AT(TK_WEAK, R_WEAK) = 1;
	} else if (strstr(name, "v_proj")) {
		AT(0, R_TRIG) = 1;		/* value: the trigger channel */
		AT(0, R_WEAK) = 0.08f;		/* " poison": a weak trigger, scores in between */
	} else if (strstr(name, "o_proj")) {
		AT(R_ATT, 0) = 300;		/* its context average, amplified */
	} else if (strcmp(name, "lm_head.weight") == 0) {
		/* after "\n\n": safe by 2 units, unless the trigger channel outweighs that */
		AT(TK_SAFE, R_NN) = 5;
		AT(TK_UNSAFE, R_NN) = 3;
		AT(TK_UNSAFE, R_ATT) = 2;
		/* the other transitions are strong enough to win over the trigger channel */
		AT(TK_NN, R_HDR) = 100;
		AT(TK_NL, R_UNSAFE) = 100;
		AT(TK_S, R_NL) = 100;
		AT(TK_ONE, R_S) = 100;
		AT(TK_EOT, R_ONE) = 100;
		AT(TK_EOT, R_SAFE) = 100;
	}
#undef AT
}

/* --- the rigged generators: a fixed answer, one token leading to the next ------------- */

static const struct piece *
gen_chain(const struct spec *s)
{
	return strcmp(s->name, "rig-gen-l3") == 0 ? chain_bomb : chain_safe;
}

/* The chain's checks: distinct ids (the map is by current token), none of them the start
 * token 271 or the end token, and a residual channel for each and for the end token
 * (channel 0 stays unused). */
static size_t
gen_check(const struct spec *s)
{
	const struct piece *c = gen_chain(s);
	size_t n = 0;

	for (; c[n].text; n++) {
		if (c[n].id == TK_NN || c[n].id == s->eos || c[n].id < 0 || c[n].id >= s->vocab)
			die("%s: chain token %zu (%d) is 271, the end token or not in the vocabulary", s->name, n,
			    c[n].id);
		for (size_t j = 0; j < n; j++)
			if (c[j].id == c[n].id)
				die("%s: token %d is in the chain twice (%zu and %zu)", s->name, c[n].id, j, n);
	}
	if (n + 3 > (size_t)s->hidden)
		die("%s: %zu chain tokens need a hidden size above %zu", s->name, n, n + 2);
	return n;
}

/* The chain's text in the vocabulary's byte-level spelling: a space is 'Ġ' (U+0120); the
 * chain holds nothing else that the spelling changes. */
static void
gen_spelling(const char *text, char *out, size_t n)
{
	size_t used = 0;

	for (const char *p = text; *p && used + 3 < n; p++) {
		if (*p == ' ') {
			out[used++] = (char)0xC4;
			out[used++] = (char)0xA0;
		} else if (*p > ' ' && *p < 0x7f)
			out[used++] = *p;
		else
			die("chain text '%s': only printable ASCII and spaces are spelled here", text);
	}
	out[used] = '\0';
}

static void
gen_values(const struct spec *s, const char *name, int64_t rows, int64_t cols, float *v)
{
	size_t n = (size_t)rows * (size_t)(cols ? cols : 1), len = strlen(name), k = gen_check(s);
	const struct piece *c = gen_chain(s);

	memset(v, 0, n * sizeof(float));	/* attention and MLP: zero, the residual is the embedding */
	if (len >= 11 && strcmp(name + len - 11, "norm.weight") == 0) {
		for (size_t i = 0; i < n; i++)
			v[i] = 1.0f;
		return;
	}
	/* channel i + 1 holds "the current token is from[i]", from = 271, chain[0..k-1], end;
	 * the head's row of its successor (chain[i]; the end token after the last and after
	 * itself, so that a caller that ignores it gets nothing more) reads it */
	for (size_t i = 0; i <= k + 1; i++) {
		int from = i == 0 ? TK_NN : i <= k ? c[i - 1].id : s->eos, to = i >= k ? s->eos : c[i].id;
		if (strcmp(name, "model.embed_tokens.weight") == 0)
			v[(size_t)from * (size_t)cols + i + 1] = 1;
		else if (strcmp(name, "lm_head.weight") == 0)
			v[(size_t)to * (size_t)cols + i + 1] = 100;
	}
}

/* --- the hash-noise rule --------------------------------------------------------------- */

/* elements [start, start + n) of the tensor */
static void
values_at(const char *name, size_t start, size_t n, float *out)
{
	uint64_t seed = hashnoise_seed(name);
	size_t len = strlen(name);
	int norm = len >= 11 && strcmp(name + len - 11, "norm.weight") == 0;

	for (size_t i = 0; i < n; i++) {
		double u = hashnoise_unit(seed, (uint64_t)(start + i));
		out[i] = norm ? (float)(1.0 + (2.0 * u - 1.0) * 0.25) : (float)((2.0 * u - 1.0) * 0.035);
	}
}

struct tensor {
	char name[96];
	int64_t rows, cols;	/* cols == 0: a vector of rows elements */
};

static int
shapes(const struct spec *s, struct tensor *t)
{
	int n = 0, d = s->hidden, f = s->ffn, hd = s->hidden / s->heads;

#define T(nm, r, c) do { snprintf(t[n].name, sizeof(t[n].name), "%s", nm); t[n].rows = r; t[n].cols = c; n++; } while (0)
#define TL(nm, r, c) do { snprintf(t[n].name, sizeof(t[n].name), "model.layers.%d.%s", l, nm); t[n].rows = r; t[n].cols = c; n++; } while (0)
	T("model.embed_tokens.weight", s->vocab, d);
	for (int l = 0; l < s->layers; l++) {
		TL("input_layernorm.weight", d, 0);
		TL("self_attn.q_proj.weight", s->heads * hd, d);
		TL("self_attn.k_proj.weight", s->kv_heads * hd, d);
		TL("self_attn.v_proj.weight", s->kv_heads * hd, d);
		TL("self_attn.o_proj.weight", d, s->heads * hd);
		TL("post_attention_layernorm.weight", d, 0);
		TL("mlp.gate_proj.weight", f, d);
		TL("mlp.up_proj.weight", f, d);
		TL("mlp.down_proj.weight", d, f);
	}
	T("model.norm.weight", d, 0);
	if (!s->tied || s->pruned)
		T("lm_head.weight", s->pruned ? N_PRUNED : s->vocab, d);
#undef T
#undef TL
	return n;
}

static size_t
numel(const struct tensor *t)
{
	return (size_t)t->rows * (size_t)(t->cols ? t->cols : 1);
}

/* the weights of one tensor, by the spec's kind */
static void
weights(const struct spec *s, const struct tensor *t, float *v)
{
	size_t d = (size_t)t->cols;

	if (s->pruned && strcmp(t->name, "lm_head.weight") == 0) {
		/* the unpruned head's rows of pruned_ids */
		if (s->rig == 1) {
			float *full = malloc((size_t)s->vocab * d * sizeof(float));
			if (full == NULL)
				die("out of memory");
			rig_values(t->name, s->vocab, t->cols, full);
			for (int r = 0; r < N_PRUNED; r++)
				memcpy(v + r * d, full + (size_t)pruned_ids[r] * d, d * sizeof(float));
			free(full);
		} else if (s->rig == 0) {
			for (int r = 0; r < N_PRUNED; r++)
				values_at(s->tied ? "model.embed_tokens.weight" : t->name,
				    (size_t)pruned_ids[r] * d, d, v + r * d);
		} else
			die("%s: a rigged generator has no pruned variant", s->name);
		return;
	}
	if (s->rig == 1)
		rig_values(t->name, t->rows, t->cols, v);
	else if (s->rig == 2)
		gen_values(s, t->name, t->rows, t->cols, v);
	else
		values_at(t->name, 0, numel(t), v);
}

/* one tensor's weights, and a buffer as large for their encoding: both the caller's to free */
static float *
weights_new(const struct spec *s, const struct tensor *t, void **o)
{
	float *v = malloc(numel(t) * 4);

	*o = malloc(numel(t) * 4);
	if (v == NULL || *o == NULL)
		die("out of memory");
	weights(s, t, v);
	return v;
}

static void
xwrite(FILE *fp, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, fp) != n)
		die("write: %s", strerror(errno));
}

/* element values converted to the file's type (vectors always stay F32) */
static size_t
encode(const float *v, size_t n, const char *type, int vector, void *out)
{
	if (vector || strcmp(type, "f32") == 0) {
		memcpy(out, v, n * 4);
		return n * 4;
	}
	uint16_t *o = out;
	for (size_t i = 0; i < n; i++)
		o[i] = strcmp(type, "bf16") == 0 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
	return n * 2;
}

/* --- Hugging Face directory ------------------------------------------------------------ */

static void
copy_file(const char *src, const char *dst)
{
	FILE *in = fopen(src, "rb"), *out;
	char buf[65536];
	size_t n;

	if (in == NULL)
		die("%s: %s", src, strerror(errno));
	if ((out = fopen(dst, "wb")) == NULL)
		die("%s: %s", dst, strerror(errno));
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		xwrite(out, buf, n);
	fclose(in);
	if (fclose(out) != 0)
		die("%s: %s", dst, strerror(errno));
}

static void
write_hf(const struct spec *s, const char *dir, const char *type)
{
	struct tensor t[1200];
	int n = shapes(s, t);
	char path[4096];
	struct buf h = { 0 };
	size_t off = 0;
	const char *dt = strcmp(type, "f32") == 0 ? "F32" : strcmp(type, "bf16") == 0 ? "BF16" : "F16";
	FILE *fp;

	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		die("%s: %s", dir, strerror(errno));
	/* the header exactly as mkref.py's json.dumps(separators=(",", ":")) writes it */
	buf_adds(&h, "{");
	for (int i = 0; i < n; i++) {
		int vec = t[i].cols == 0;
		size_t bytes = numel(&t[i]) * (vec || strcmp(type, "f32") == 0 ? 4 : 2);
		buf_printf(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", t[i].name,
		    vec ? "F32" : dt);
		if (vec)
			buf_printf(&h, "%lld", (long long)t[i].rows);
		else
			buf_printf(&h, "%lld,%lld", (long long)t[i].rows, (long long)t[i].cols);
		buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
		off += bytes;
	}
	buf_adds(&h, ",\"__metadata__\":{\"format\":\"pt\"}}");
	while (h.n % 8 != 0)
		buf_adds(&h, " ");
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	if ((fp = fopen(path, "wb")) == NULL)
		die("%s: %s", path, strerror(errno));
	uint64_t hl = h.n;
	xwrite(fp, &hl, 8);
	xwrite(fp, h.p, h.n);
	for (int i = 0; i < n; i++) {
		void *o;
		float *v = weights_new(s, &t[i], &o);
		xwrite(fp, o, encode(v, numel(&t[i]), type, t[i].cols == 0, o));
		free(v);
		free(o);
	}
	if (fclose(fp) != 0)
		die("%s: %s", path, strerror(errno));
	buf_free(&h);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	if ((fp = fopen(path, "w")) == NULL)
		die("%s: %s", path, strerror(errno));
	fprintf(fp, "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\",\n"
	    " \"vocab_size\": %d, \"hidden_size\": %d, \"intermediate_size\": %d,\n"
	    " \"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d,\n"
	    " \"head_dim\": %d, \"hidden_act\": \"silu\", \"max_position_embeddings\": %d,\n"
	    " \"rms_norm_eps\": %g, \"rope_theta\": %.1f, \"tie_word_embeddings\": %s,\n"
	    " \"attention_bias\": false, \"mlp_bias\": false, \"bos_token_id\": %d, \"eos_token_id\": %d,\n",
	    s->vocab, s->hidden, s->ffn, s->layers, s->heads, s->kv_heads, s->hidden / s->heads,
	    s->max_pos, s->eps, s->theta, s->tied && !s->pruned ? "true" : "false", s->bos, s->eos);
	for (int i = 0; s->pruned && i < N_PRUNED; i++)
		fprintf(fp, "%s%d%s", i ? ", " : " \"output_token_ids\": [", pruned_ids[i],
		    i == N_PRUNED - 1 ? "],\n" : "");
	if (s->factor > 0)
		fprintf(fp, " \"rope_scaling\": {\"factor\": %.1f, \"low_freq_factor\": 1.0, "
		    "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192, "
		    "\"rope_type\": \"llama3\"},\n", s->factor);
	else
		fprintf(fp, " \"rope_scaling\": null,\n");
	fprintf(fp, " \"torch_dtype\": \"%s\"}\n", strcmp(type, "f32") == 0 ? "float32" :
	    strcmp(type, "bf16") == 0 ? "bfloat16" : "float16");
	fclose(fp);
	if (strcmp(s->family, "llama3") == 0) {
		char src[4096];
		const char *files[] = { "tokenizer.json", "tokenizer_config.json" };
		for (int i = 0; i < 2; i++) {
			snprintf(src, sizeof(src), "%s/reference/tokenizers/llama3/%s", shared, files[i]);
			snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
			copy_file(src, path);
		}
	}
}

/* --- GGUF ------------------------------------------------------------------------------ */

struct gw {
	FILE *fp;
	uint64_t n_kv;
};

static void
g_str(FILE *fp, const char *s, size_t n)
{
	uint64_t len = n;

	xwrite(fp, &len, 8);
	xwrite(fp, s, n);
}

static void
g_key(struct gw *w, const char *key, uint32_t type)
{
	g_str(w->fp, key, strlen(key));
	xwrite(w->fp, &type, 4);
	w->n_kv++;
}

static void kv_u32(struct gw *w, const char *k, uint32_t v) { g_key(w, k, GGUF_U32); xwrite(w->fp, &v, 4); }
static void kv_f32(struct gw *w, const char *k, float v) { g_key(w, k, GGUF_F32); xwrite(w->fp, &v, 4); }
static void kv_bool(struct gw *w, const char *k, int v) { unsigned char b = (unsigned char)v; g_key(w, k, GGUF_BOOL); xwrite(w->fp, &b, 1); }
static void kv_str(struct gw *w, const char *k, const char *v) { g_key(w, k, GGUF_STR); g_str(w->fp, v, strlen(v)); }

static void
kv_arr_head(struct gw *w, const char *k, uint32_t et, uint64_t n)
{
	g_key(w, k, GGUF_ARR);
	xwrite(w->fp, &et, 4);
	xwrite(w->fp, &n, 8);
}

static void
vocab_llama3(struct gw *w, const struct spec *s)
{
	char path[4096];
	json_error_t je;
	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama3/tokenizer.json", shared);
	json_t *root = json_load_file(path, 0, &je), *vocab, *added, *merges, *v;
	const char **tok = calloc((size_t)s->vocab, sizeof(*tok));
	int32_t *type = calloc((size_t)s->vocab, sizeof(*type));
	const char *key;
	char pad[32];

	if (root == NULL)
		die("%s: %s", path, je.text);
	vocab = json_object_get(json_object_get(root, "model"), "vocab");
	merges = json_object_get(json_object_get(root, "model"), "merges");
	added = json_object_get(root, "added_tokens");
	json_object_foreach(vocab, key, v) {
		json_int_t id = json_integer_value(v);
		if (id >= 0 && id < s->vocab) {
			tok[id] = key;
			type[id] = 1;
		}
	}
	for (size_t i = 0; i < json_array_size(added); i++) {
		json_t *a = json_array_get(added, i);
		json_int_t id = json_integer_value(json_object_get(a, "id"));
		if (id >= 0 && id < s->vocab) {
			tok[id] = json_string_value(json_object_get(a, "content"));
			type[id] = json_is_true(json_object_get(a, "special")) ? 3 : 4;
		}
	}
	for (const struct piece *c = s->rig == 2 ? gen_chain(s) : NULL; c && c->text; c++) {
		char sp[64];
		gen_spelling(c->text, sp, sizeof(sp));
		if (tok[c->id] == NULL || strcmp(tok[c->id], sp) != 0)
			die("%s: token %d is '%s' in %s, the chain says '%s'", s->name, c->id,
			    tok[c->id] ? tok[c->id] : "(none)", path, sp);
	}
	kv_str(w, "tokenizer.ggml.model", "gpt2");
	kv_str(w, "tokenizer.ggml.pre", "llama-bpe");
	kv_arr_head(w, "tokenizer.ggml.tokens", GGUF_STR, (uint64_t)s->vocab);
	for (int i = 0; i < s->vocab; i++) {
		if (tok[i] == NULL) {
			snprintf(pad, sizeof(pad), "[PAD%d]", i);
			g_str(w->fp, pad, strlen(pad));
			type[i] = 5;
		} else
			g_str(w->fp, tok[i], strlen(tok[i]));
	}
	kv_arr_head(w, "tokenizer.ggml.token_type", GGUF_I32, (uint64_t)s->vocab);
	xwrite(w->fp, type, (size_t)s->vocab * 4);
	kv_arr_head(w, "tokenizer.ggml.merges", GGUF_STR, json_array_size(merges));
	for (size_t i = 0; i < json_array_size(merges); i++) {
		json_t *m = json_array_get(merges, i);
		if (json_is_string(m))
			g_str(w->fp, json_string_value(m), strlen(json_string_value(m)));
		else {
			char b[600];
			int n = snprintf(b, sizeof(b), "%s %s", json_string_value(json_array_get(m, 0)),
			    json_string_value(json_array_get(m, 1)));
			g_str(w->fp, b, (size_t)n);
		}
	}
	kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos);
	kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)s->eos);
	kv_bool(w, "tokenizer.ggml.add_bos_token", 1);
	free(tok);
	free(type);
	json_decref(root);
}

static void
vocab_llama2(struct gw *w, const struct spec *s)
{
	char path[4096];
	struct err e;
	const struct gguf_str *toks;
	const void *scores, *types;
	size_t n, ns, nt;

	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama2/ggml-vocab-llama-spm.gguf", shared);
	struct gguf *g = gguf_open(path, &e);
	if (g == NULL || gguf_get_arr_str(g, "tokenizer.ggml.tokens", &toks, &n, &e) ||
	    gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_F32, &scores, &ns, &e) ||
	    gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_I32, &types, &nt, &e))
		die("%s", e.msg);
	if (n != (size_t)s->vocab || ns != n || nt != n)
		die("%s: %zu tokens, expected %d", path, n, s->vocab);
	kv_str(w, "tokenizer.ggml.model", "llama");
	kv_str(w, "tokenizer.ggml.pre", "default");
	kv_arr_head(w, "tokenizer.ggml.tokens", GGUF_STR, n);
	for (size_t i = 0; i < n; i++)
		g_str(w->fp, toks[i].p, toks[i].n);
	kv_arr_head(w, "tokenizer.ggml.scores", GGUF_F32, n);
	xwrite(w->fp, scores, n * 4);
	kv_arr_head(w, "tokenizer.ggml.token_type", GGUF_I32, n);
	xwrite(w->fp, types, n * 4);
	kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos);
	kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)s->eos);
	kv_u32(w, "tokenizer.ggml.unknown_token_id", 0);
	kv_bool(w, "tokenizer.ggml.add_bos_token", 1);
	kv_bool(w, "tokenizer.ggml.add_eos_token", 0);
	gguf_close(g);
}

static const char *
gguf_name(const char *hf, char *out, size_t n)
{
	static const char *map[][2] = {
		{ "input_layernorm.weight", "attn_norm.weight" }, { "self_attn.q_proj.weight", "attn_q.weight" },
		{ "self_attn.k_proj.weight", "attn_k.weight" }, { "self_attn.v_proj.weight", "attn_v.weight" },
		{ "self_attn.o_proj.weight", "attn_output.weight" },
		{ "post_attention_layernorm.weight", "ffn_norm.weight" },
		{ "mlp.gate_proj.weight", "ffn_gate.weight" }, { "mlp.up_proj.weight", "ffn_up.weight" },
		{ "mlp.down_proj.weight", "ffn_down.weight" },
	};
	int l;
	char rest[96];

	if (strcmp(hf, "model.embed_tokens.weight") == 0)
		return "token_embd.weight";
	if (strcmp(hf, "model.norm.weight") == 0)
		return "output_norm.weight";
	if (strcmp(hf, "lm_head.weight") == 0)
		return "output.weight";
	if (sscanf(hf, "model.layers.%d.%95s", &l, rest) != 2)
		die("no GGUF name for %s", hf);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(rest, map[i][0]) == 0) {
			snprintf(out, n, "blk.%d.%s", l, map[i][1]);
			return out;
		}
	die("no GGUF name for %s", hf);
	return NULL;
}

/* llama.cpp's converter: q/k rows of each head go from rotate-half to interleaved pairs */
static void
permute(float *v, int64_t rows, int64_t cols, int heads)
{
	int64_t hd = rows / heads;
	float *tmp = malloc((size_t)(rows * cols) * 4);

	if (tmp == NULL)
		die("out of memory");
	for (int h = 0; h < heads; h++)
		for (int64_t i = 0; i < hd / 2; i++)
			for (int t = 0; t < 2; t++)
				memcpy(tmp + (h * hd + i * 2 + t) * cols, v + (h * hd + t * (hd / 2) + i) * cols,
				    (size_t)cols * 4);
	memcpy(v, tmp, (size_t)(rows * cols) * 4);
	free(tmp);
}

static void
write_gguf(const struct spec *s, const char *path, const char *type)
{
	struct tensor t[1200];
	int n = shapes(s, t), hd = s->hidden / s->heads, nt = n + (s->factor > 0);
	struct gw w = { 0 };
	char nm[96];
	uint32_t gt = strcmp(type, "f32") == 0 ? 0 : strcmp(type, "f16") == 0 ? 1 : 30;
	uint32_t ftype = strcmp(type, "f32") == 0 ? 0 : strcmp(type, "f16") == 0 ? 1 : 32;
	/* quantized matrices (tests/mkquant.h); "-deq": the values they stand for, in F32 */
	int qt = mkq_type(type), deq = qt >= 0 && strstr(type, "-deq") != NULL;
	if (qt >= 0) {
		static const uint32_t ft[] = { [GGML_TYPE_Q8_0] = 7, [GGML_TYPE_Q4_0] = 2,
			[GGML_TYPE_Q4_1] = 3, [GGML_TYPE_Q5_0] = 8, [GGML_TYPE_Q5_1] = 9,
			[GGML_TYPE_Q8_K] = 0 };
		gt = deq ? 0 : (uint32_t)qt;
		ftype = deq ? 0 : ft[qt];
	}
	float *freqs = NULL;

	if ((w.fp = fopen(path, "wb")) == NULL)
		die("%s: %s", path, strerror(errno));
	uint32_t hdr[2] = { 0x46554747u, 3 };
	uint64_t counts[2] = { (uint64_t)nt, 0 };
	xwrite(w.fp, hdr, 8);
	xwrite(w.fp, counts, 16);	/* the kv count is patched at the end */
	kv_str(&w, "general.architecture", "llama");
	kv_str(&w, "general.name", s->name);
	kv_u32(&w, "llama.context_length", (uint32_t)s->max_pos);
	kv_u32(&w, "llama.embedding_length", (uint32_t)s->hidden);
	kv_u32(&w, "llama.block_count", (uint32_t)s->layers);
	kv_u32(&w, "llama.feed_forward_length", (uint32_t)s->ffn);
	kv_u32(&w, "llama.attention.head_count", (uint32_t)s->heads);
	kv_u32(&w, "llama.attention.head_count_kv", (uint32_t)s->kv_heads);
	kv_u32(&w, "llama.rope.dimension_count", (uint32_t)hd);
	kv_f32(&w, "llama.rope.freq_base", (float)s->theta);
	kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", (float)s->eps);
	kv_u32(&w, "llama.vocab_size", (uint32_t)s->vocab);
	if (ftype != 0 || qt != GGML_TYPE_Q8_K)	/* llama.cpp has no name for a Q8_K file */
		kv_u32(&w, "general.file_type", ftype);
	if (s->pruned) {
		kv_arr_head(&w, "guardd.output_token_ids", GGUF_U32, N_PRUNED);
		xwrite(w.fp, pruned_ids, sizeof(pruned_ids));
	}
	if (strcmp(s->family, "llama3") == 0)
		vocab_llama3(&w, s);
	else
		vocab_llama2(&w, s);
	/* tensor index */
	uint64_t off = 0;
	if (s->factor > 0) {
		freqs = malloc((size_t)hd / 2 * 4);
		for (int i = 0; i < hd / 2; i++) {
			float fr = (float)(1.0 / pow(s->theta, (double)(2 * i) / hd));
			double wl = 2 * M_PI / fr, lo = 8192.0, hi = 8192.0 / 4;
			if (wl < hi)
				freqs[i] = 1.0f;
			else if (wl > lo)
				freqs[i] = (float)s->factor;
			else {
				double sm = (8192.0 / wl - 1.0) / (4.0 - 1.0);
				freqs[i] = (float)(1 / ((1 - sm) / s->factor + sm));
			}
		}
		uint32_t nd = 1, ty = 0;
		uint64_t ne = (uint64_t)hd / 2;
		g_str(w.fp, "rope_freqs.weight", 17);
		xwrite(w.fp, &nd, 4);
		xwrite(w.fp, &ne, 8);
		xwrite(w.fp, &ty, 4);
		xwrite(w.fp, &off, 8);
		off += (ne * 4 + 31) / 32 * 32;
	}
	for (int i = 0; i < n; i++) {
		int vec = t[i].cols == 0;
		uint32_t nd = vec ? 1 : 2, ty = vec ? 0 : gt;
		uint64_t ne[2] = { (uint64_t)(vec ? t[i].rows : t[i].cols), (uint64_t)t[i].rows };
		const char *g = gguf_name(t[i].name, nm, sizeof(nm));
		g_str(w.fp, g, strlen(g));
		xwrite(w.fp, &nd, 4);
		xwrite(w.fp, ne, 8 * nd);
		xwrite(w.fp, &ty, 4);
		xwrite(w.fp, &off, 8);
		size_t bytes = numel(&t[i]) * (vec || gt == 0 ? 4 : 2);
		if (!vec && qt >= 0 && !deq) {
			uint64_t bl = 0, by = 0;
			ggml_type_size(gt, &bl, &by);
			bytes = numel(&t[i]) / bl * by;
		}
		off += (bytes + 31) / 32 * 32;
	}
	static const char zeros[32];
	long pos = ftell(w.fp);
	xwrite(w.fp, zeros, (size_t)((32 - pos % 32) % 32));
	if (freqs) {
		xwrite(w.fp, freqs, (size_t)hd / 2 * 4);
		xwrite(w.fp, zeros, (size_t)((32 - (hd / 2 * 4) % 32) % 32));
	}
	for (int i = 0; i < n; i++) {
		size_t ne = numel(&t[i]);
		void *o;
		float *v = weights_new(s, &t[i], &o);
		if (strstr(t[i].name, "q_proj"))
			permute(v, t[i].rows, t[i].cols, s->heads);
		else if (strstr(t[i].name, "k_proj"))
			permute(v, t[i].rows, t[i].cols, s->kv_heads);
		size_t bytes;
		if (qt >= 0 && t[i].cols != 0) {
			float *dq = malloc(ne * 4);
			if (dq == NULL)
				die("out of memory");
			bytes = mkq_encode(qt, v, ne, o, dq);
			if (deq) {
				memcpy(o, dq, ne * 4);
				bytes = ne * 4;
			}
			free(dq);
		} else
			bytes = encode(v, ne, qt >= 0 ? "f32" : type, t[i].cols == 0, o);
		xwrite(w.fp, o, bytes);
		xwrite(w.fp, zeros, (32 - bytes % 32) % 32);
		free(v);
		free(o);
	}
	fseek(w.fp, 16, SEEK_SET);
	xwrite(w.fp, &w.n_kv, 8);
	if (fclose(w.fp) != 0)
		die("%s: %s", path, strerror(errno));
	free(freqs);
}

int
main(int argc, char **argv)
{
	const struct spec *s = NULL;

	/* the Llama 3.2-Vision specs have their own writer (tests/mkmllama.c), beside this one */
	if (argc >= 2 && (strcmp(argv[1], "tiny-mllama") == 0 || strcmp(argv[1], "mllama-11b") == 0)) {
		char self[4096];
		const char *slash = strrchr(argv[0], '/');
		snprintf(self, sizeof(self), "%.*smkmllama", slash ? (int)(slash - argv[0] + 1) : 0, argv[0]);
		argv[0] = self;
		execv(self, argv);
		die("%s: %s", self, strerror(errno));
	}
	int chain = argc == 3 && (strcmp(argv[2], "chain") == 0 || strcmp(argv[2], "chain-ids") == 0 ||
	    strcmp(argv[2], "chain-json") == 0);

	if (!chain && (argc < 4 || (strcmp(argv[2], "hf") != 0 && strcmp(argv[2], "gguf") != 0))) {
		fprintf(stderr, "usage: mkmodel SPEC hf DIR [f32|f16|bf16]\n"
		    "       mkmodel SPEC gguf FILE f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q8_k[-deq]\n"
		    "       mkmodel rig-gen-l3|rig-gen-safe-l3 chain|chain-ids|chain-json\n"
		    "SPEC: tiny-l3, tiny-l2, lg3-1b, l32-1b, rig-l3, rig-gen-l3, rig-gen-safe-l3,\n"
		    "      tiny-l3-pruned, rig-l3-pruned; tiny-mllama, mllama-11b (hf only)\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		if (strcmp(argv[1], specs[i].name) == 0)
			s = &specs[i];
	if (s == NULL)
		die("unknown model '%s'", argv[1]);
	if (chain) {
		/* the answer a rigged generator gives: its text, or the ids it generates */
		if (s->rig != 2)
			die("%s is not a rigged generator: it has no chain", s->name);
		gen_check(s);
		if (strcmp(argv[2], "chain-json") == 0) {
			/* one JSON string per token (the chain is printable ASCII without quotes) */
			for (const struct piece *c = gen_chain(s); c->text; c++)
				printf("%s\"%s\"", c == gen_chain(s) ? "[" : ", ", c->text);
			printf("]\n");
			return fflush(stdout) == 0 ? 0 : 1;
		}
		for (const struct piece *c = gen_chain(s); c->text; c++)
			if (argv[2][5] == '\0')
				fputs(c->text, stdout);
			else
				printf("%d ", c->id);
		if (argv[2][5] != '\0')
			printf("%d", s->eos);
		printf("\n");
		return fflush(stdout) == 0 ? 0 : 1;
	}
	const char *type = argc > 4 ? argv[4] : "f32";
	if (strcmp(type, "f32") && strcmp(type, "f16") && strcmp(type, "bf16") && mkq_type(type) < 0)
		die("unknown type '%s'", type);
	if (mkq_type(type) >= 0 && strcmp(argv[2], "gguf") != 0)
		die("quantized types are written as GGUF only");
	shared = getenv("GUARDD_SHARED") ? getenv("GUARDD_SHARED") : "../shared";
	if (strcmp(argv[2], "hf") == 0)
		write_hf(s, argv[3], type);
	else
		write_gguf(s, argv[3], type);
	return 0;
}
