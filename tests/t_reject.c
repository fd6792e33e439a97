/* t_reject.c - broken model files, one per failure mode, each refused with a message that
 * names the problem (and no crash: this also runs under ASan/UBSan). The files are made
 * here: a valid miniature Llama GGUF and safetensors directory, then damaged copies. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "core/gguf.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "util/strmap.h"
#include "tap.h"

static char dir[256];

/* --- a miniature GGUF writer ------------------------------------------------------------ */

struct g {
	struct buf b;
	uint64_t n_kv, n_t;
};

static void put(struct buf *b, const void *p, size_t n) { buf_add(b, p, n); }
static void put_u32(struct buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(struct buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(struct buf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }

enum { D = 16, FF = 32, V = 8, H = 2 };	/* embd, ffn, vocab, heads (kv heads 1) */

struct spec_t {
	const char *name;
	uint64_t ne0, ne1;	/* ne1 == 0: a vector */
};

/* opts: which damage to make */
struct opts {
	int skip_key;		/* leave out llama.block_count */
	int bad_shape;		/* attn_q one column short */
	int bad_type;		/* attn_k of type 99 */
	int past_end;		/* ffn_down's offset beyond the data */
	int bad_align;		/* general.alignment = 3 */
	int qtype_v;		/* attn_v stored in this ggml type, rows of 256 (0: F32) */
	int q8_down;		/* ffn_down stored as Q8_0 (its rows of 32 are one block) */
	int q8_v16;		/* attn_v as Q8_0 with its rows of 16: half a block */
	int overlap;		/* attn_k's data starts where attn_q's does */
	int huge;		/* attn_q of 2^40 x 2^40 elements: the count overflows 64 bits */
	int bias;		/* an extra blk.0.attn_q.bias tensor */
	int l31;		/* Llama 3.1 context and rope base ... */
	int freqs;		/* ... with the rope_freqs.weight tensor */
	const char *rope_type;	/* llama.rope.scaling.type */
	float rope_factor;	/* llama.rope.scaling.factor (0: absent) */
};

static size_t
mini_gguf(struct buf *out, const struct opts *o)
{
	struct buf kv = { 0 }, ti = { 0 };
	uint64_t n_kv = 0, off = 0;
	struct spec_t t[] = {
		{ "token_embd.weight", D, V }, { "output_norm.weight", D, 0 },
		{ "blk.0.attn_norm.weight", D, 0 }, { "blk.0.ffn_norm.weight", D, 0 },
		{ "blk.0.attn_q.weight", D, D }, { "blk.0.attn_k.weight", D, D / H },
		{ "blk.0.attn_v.weight", D, D / H }, { "blk.0.attn_output.weight", D, D },
		{ "blk.0.ffn_gate.weight", D, FF }, { "blk.0.ffn_up.weight", D, FF },
		{ "blk.0.ffn_down.weight", FF, D },
	};
	size_t nt = sizeof(t) / sizeof(t[0]);
	struct spec_t extra[2];
	size_t n_extra = 0;

	if (o->bias)
		extra[n_extra++] = (struct spec_t){ "blk.0.attn_q.bias", D, 0 };
	if (o->freqs)
		extra[n_extra++] = (struct spec_t){ "rope_freqs.weight", D / H / 2, 0 };

#define KSTR(k, v) do { put_str(&kv, k); put_u32(&kv, GGUF_STR); put_str(&kv, v); n_kv++; } while (0)
#define KU32(k, v) do { put_str(&kv, k); put_u32(&kv, GGUF_U32); put_u32(&kv, v); n_kv++; } while (0)
	KSTR("general.architecture", "llama");
	KU32("llama.embedding_length", D);
	if (!o->skip_key)
		KU32("llama.block_count", 1);
	KU32("llama.feed_forward_length", FF);
	KU32("llama.attention.head_count", H);
	KU32("llama.attention.head_count_kv", 1);
	if (o->bad_align)
		KU32("general.alignment", 3);
	if (o->l31) {
		KU32("llama.context_length", 131072);
		put_str(&kv, "llama.rope.freq_base");
		put_u32(&kv, GGUF_F32);
		float base = 500000.0f;
		put(&kv, &base, 4);
		n_kv++;
	}
	if (o->rope_type)
		KSTR("llama.rope.scaling.type", o->rope_type);
	if (o->rope_factor != 0) {
		put_str(&kv, "llama.rope.scaling.factor");
		put_u32(&kv, GGUF_F32);
		put(&kv, &o->rope_factor, 4);
		n_kv++;
	}
	put_str(&kv, "llama.attention.layer_norm_rms_epsilon");
	put_u32(&kv, GGUF_F32);
	float eps = 1e-5f;
	put(&kv, &eps, 4);
	n_kv++;
	KSTR("tokenizer.ggml.model", "llama");
	put_str(&kv, "tokenizer.ggml.tokens");
	put_u32(&kv, GGUF_ARR);
	put_u32(&kv, GGUF_STR);
	put_u64(&kv, V);
	const char *toks[V] = { "<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab" };
	for (int i = 0; i < V; i++)
		put_str(&kv, toks[i]);
	n_kv++;
#undef KSTR
#undef KU32
	uint64_t q_off = 0;
	for (size_t j = 0; j < nt + n_extra; j++) {
		const struct spec_t *tp = j < nt ? &t[j] : &extra[j - nt];
		uint32_t type = 0;
		uint64_t ne0 = tp->ne0, at = off, block = 1, bsize = 4;
		if (o->bad_shape && strcmp(tp->name, "blk.0.attn_q.weight") == 0)
			ne0--;
		if (o->bad_type && strcmp(tp->name, "blk.0.attn_k.weight") == 0)
			type = 99;
		if (o->qtype_v && strcmp(tp->name, "blk.0.attn_v.weight") == 0) {
			type = (uint32_t)o->qtype_v;
			ne0 = 256;
		}
		if (o->q8_v16 && strcmp(tp->name, "blk.0.attn_v.weight") == 0)
			type = GGML_TYPE_Q8_0;
		if (o->q8_down && strcmp(tp->name, "blk.0.ffn_down.weight") == 0)
			type = GGML_TYPE_Q8_0;
		ggml_type_size(type, &block, &bsize);
		if (strcmp(tp->name, "blk.0.attn_q.weight") == 0)
			q_off = off;
		uint64_t ne1 = tp->ne1;
		if (o->huge && strcmp(tp->name, "blk.0.attn_q.weight") == 0)
			ne0 = ne1 = 1ull << 40;
		if (o->past_end && strcmp(tp->name, "blk.0.ffn_down.weight") == 0)
			at = off + 4096;
		if (o->overlap && strcmp(tp->name, "blk.0.attn_k.weight") == 0)
			at = q_off;
		put_str(&ti, tp->name);
		put_u32(&ti, tp->ne1 ? 2 : 1);
		put_u64(&ti, ne0);
		if (tp->ne1)
			put_u64(&ti, ne1);
		put_u32(&ti, type);
		put_u64(&ti, at);
		uint64_t bytes = ne1 == 1ull << 40 ? 0 :
		    (ne0 + block - 1) / block * bsize * (tp->ne1 ? tp->ne1 : 1);
		off += (bytes + 31) / 32 * 32;
	}
	memset(out, 0, sizeof(*out));
	put_u32(out, 0x46554747u);
	put_u32(out, 3);
	put_u64(out, nt + n_extra);
	put_u64(out, n_kv);
	put(out, kv.p, kv.n);
	put(out, ti.p, ti.n);
	size_t header = out->n;
	while (out->n % 32)
		put(out, "", 1);
	for (uint64_t i = 0; i < off / 4; i++) {
		float f = 0.01f * (float)(1 + i % 7);	/* positive: rope_freqs must be */
		put(out, &f, 4);
	}
	buf_free(&kv);
	buf_free(&ti);
	return header;
}

static const char *
write_file(const char *name, const void *p, size_t n)
{
	static char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	if (fp == NULL || (n && fwrite(p, 1, n, fp) != n) || fclose(fp) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
	return path;
}

/* opening path must fail with a message containing want */
static void
expect_model(const char *what, const char *path, const char *want)
{
	struct err e = { "" };
	struct model *m = model_open(path, &e);

	ok(m == NULL && strstr(e.msg, want) != NULL, "%s: refused with '%s' (%s)", what, want, e.msg);
	model_close(m);
}

static void
gguf_cases(void)
{
	struct buf b;
	struct opts o = { 0 };
	struct err e;

	size_t header = mini_gguf(&b, &o);
	const char *good = write_file("good.gguf", b.p, b.n);
	struct model *m = model_open(good, &e);
	if (!ok(m != NULL, "the miniature GGUF model opens"))
		diag("%s", e.msg);
	model_close(m);

	/* truncation at many points: header, metadata, tensor index, data */
	size_t cuts[] = { 0, 3, 10, 20, 30, header / 2, header - 5, header + 8, b.n - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "cut%zu.gguf", i);
		const char *p = write_file(name, b.p, cuts[i]);
		struct model *mm = model_open(p, &e);
		ok(mm == NULL && strstr(e.msg, name) != NULL, "truncated at byte %zu: refused, naming the file (%s)",
		    cuts[i], mm ? "opened!" : e.msg);
		model_close(mm);
	}
	/* bytes flipped in the header */
	char *c = malloc(b.n);
	memcpy(c, b.p, b.n);
	c[0] = 'X';
	expect_model("bad magic", write_file("magic.gguf", c, b.n), "bad magic");
	memcpy(c, b.p, b.n);
	c[4] = 9;
	expect_model("version 9", write_file("version.gguf", c, b.n), "unsupported GGUF version 9");
	memcpy(c, b.p, b.n);
	uint64_t huge = 1ull << 60;
	memcpy(c + 16, &huge, 8);
	expect_model("absurd key count", write_file("nkv.gguf", c, b.n), "cannot fit");
	memcpy(c, b.p, b.n);
	memcpy(c + 24, &huge, 8);	/* length of the first key */
	expect_model("string length past the end", write_file("strlen.gguf", c, b.n), "past end of file");
	memcpy(c, b.p, b.n);
	uint32_t badtype = 77;
	memcpy(c + 24 + 8 + strlen("general.architecture"), &badtype, 4);
	expect_model("unknown value type", write_file("vtype.gguf", c, b.n), "unknown value type 77");
	free(c);
	buf_free(&b);

	struct { struct opts o; const char *what, *want; } cases[] = {
		{ { .skip_key = 1 }, "missing key", "missing key 'llama.block_count'" },
		{ { .bad_shape = 1 }, "wrong shape", "blk.0.attn_q.weight': shape [15, 16]" },
		{ { .bad_type = 1 }, "unknown tensor type", "unknown type 99" },
		{ { .past_end = 1 }, "offset past the end", "past end of data section" },
		{ { .bad_align = 1 }, "alignment not a power of two", "general.alignment" },
		{ { .qtype_v = GGML_TYPE_Q2_K }, "unsupported tensor type",
		    "blk.0.attn_v.weight': type Q2_K is not supported (F32, F16, BF16, Q8_0," },
		{ { .qtype_v = 17 }, "unsupported i-quant", "'blk.0.attn_v.weight': type IQ2_XS is not "
		    "supported" },
		{ { .qtype_v = GGML_TYPE_Q8_1 }, "Q8_1 (an activation type)", "type Q8_1 is not supported" },
		{ { .qtype_v = GGML_TYPE_Q4_K }, "a Q4_K row longer than the model's",
		    "'blk.0.attn_v.weight': shape [256, 8]" },
		{ { .q8_v16 = 1 }, "a quantized row of half a block", "tensor 'blk.0.attn_v.weight': "
		    "row of 16 elements is not a multiple of the Q8_0 block (32)" },
		{ { .overlap = 1 }, "overlapping tensors", "tensors 'blk.0.attn_q.weight' [704, 1728) "
		    "and 'blk.0.attn_k.weight' [704, 1216) overlap" },
		{ { .huge = 1 }, "element count past 64 bits", "blk.0.attn_q.weight': element count overflows" },
		{ { .bias = 1 }, "a bias tensor", "tensor 'blk.0.attn_q.bias' is not part of a Llama "
		    "model" },
		{ { .rope_type = "llama3" }, "llama3 scaling without rope_freqs",
		    "llama.rope.scaling.type is 'llama3' but the file has no rope_freqs.weight" },
		{ { .rope_type = "yarn" }, "yarn scaling", "llama.rope.scaling.type 'yarn' is not supported" },
		{ { .rope_factor = 8 }, "a scaling factor without a type",
		    "llama.rope.scaling.factor 8 without a scaling type" },
		{ { .l31 = 1 }, "Llama 3.1 without rope_freqs",
		    "llama.context_length 131072 with llama.rope.freq_base 500000 is a Llama 3.1+ model" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[64];
		mini_gguf(&b, &cases[i].o);
		snprintf(name, sizeof(name), "case%zu.gguf", i);
		expect_model(cases[i].what, write_file(name, b.p, b.n), cases[i].want);
		buf_free(&b);
	}
	/* the same Llama 3.1 signature with its rope_freqs tensor, with or without the type */
	struct opts fine[] = { { .l31 = 1, .freqs = 1 }, { .l31 = 1, .freqs = 1, .rope_type = "llama3" },
		{ .rope_type = "none" } };
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		char name[64];
		mini_gguf(&b, &fine[i]);
		snprintf(name, sizeof(name), "fine%zu.gguf", i);
		struct model *mm = model_open(write_file(name, b.p, b.n), &e);
		ok(mm != NULL && model_hparams(mm)->rope_llama3 == (fine[i].freqs != 0),
		    "rope variant %zu opens (llama3 scaling %s) %s", i, fine[i].freqs ? "on" : "off",
		    mm ? "" : e.msg);
		model_close(mm);
		buf_free(&b);
	}
	/* a quantized matrix: it opens, and cut anywhere in its blocks it is refused */
	struct opts q8 = { .q8_down = 1 };
	mini_gguf(&b, &q8);
	struct model *mq = model_open(write_file("q8.gguf", b.p, b.n), &e);
	ok(mq != NULL && strcmp(model_weight_type(mq), "F32 x7, Q8_0 x1") == 0,
	    "a Q8_0 ffn_down opens: weight type '%s'", mq ? model_weight_type(mq) : e.msg);
	model_close(mq);
	/* ffn_down is the last tensor: 16 rows of one 34-byte block, then 32-byte padding */
	size_t qcuts[] = { 1, 30, 33, 34 * 8 + 17, 34 * 16 - 1 };
	for (size_t i = 0; i < sizeof(qcuts) / sizeof(qcuts[0]); i++) {
		char name[64];
		size_t pad = (34 * 16 + 31) / 32 * 32 - 34 * 16;
		snprintf(name, sizeof(name), "q8cut%zu.gguf", i);
		expect_model("Q8_0 tensor data cut short", write_file(name, b.p, b.n - pad - qcuts[i]),
		    "tensor 'blk.0.ffn_down.weight': data [");
	}
	buf_free(&b);
	expect_model("empty file", write_file("empty.gguf", "", 0), "magic");
	expect_model("missing file", "/nonexistent/model.gguf", "no such file");
}

/* --- safetensors ------------------------------------------------------------------------ */

static const char *
st_file(const char *name, const char *header, size_t data_bytes)
{
	struct buf b = { 0 };
	uint64_t hl = strlen(header);

	put(&b, &hl, 8);
	put(&b, header, hl);
	for (size_t i = 0; i < data_bytes; i++)
		put(&b, "", 1);
	const char *p = write_file(name, b.p, b.n);
	buf_free(&b);
	return p;
}

static void
expect_st(const char *what, const char *path, const char *want)
{
	struct err e = { "" };
	struct st_set *s = st_open_file(path, &e);

	ok(s == NULL && strstr(e.msg, want) != NULL, "safetensors %s: refused with '%s' (%s)", what,
	    want, s ? "opened!" : e.msg);
	st_close(s);
}

static void
safetensors_cases(void)
{
	struct err e;
	char good[512];
	snprintf(good, sizeof(good), "%s", st_file("good.safetensors",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16));
	struct st_set *s = st_open_file(good, &e);
	ok(s != NULL && st_find(s, "a") != NULL && st_find(s, "a")->nbytes == 16, "a valid safetensors file opens");
	st_close(s);
	expect_st("data past the end", st_file("past.safetensors",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 8), "outside the 8-byte data buffer");
	expect_st("size not matching shape", st_file("size.safetensors",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", 16), "16 bytes for 6 elements");
	expect_st("unknown dtype", st_file("dtype.safetensors",
	    "{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2), "unknown dtype 'Q9'");
	expect_st("bad JSON", st_file("json.safetensors", "{\"a\":{\"dtype\":", 0), "header JSON");
	expect_st("negative shape", st_file("neg.safetensors",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4), "shape[0]");
	expect_st("duplicate name", st_file("dup.safetensors",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "duplicate");
	expect_st("element count past 64 bits", st_file("huge.safetensors",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
	    "\"data_offsets\":[0,4]}}", 4), "tensor 'a': element count overflows");
	expect_st("overlapping tensors", st_file("overlap.safetensors",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	    "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
	    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
	    "tensors 'a' [0, 8) and 'b' [4, 12) overlap");
	uint64_t hl = 1ull << 40;
	char raw[16];
	memcpy(raw, &hl, 8);
	memcpy(raw + 8, "{}      ", 8);
	expect_st("header length past the end", write_file("hl.safetensors", raw, 16), "past end of file");
	expect_st("too short", write_file("short.safetensors", raw, 5), "too short");

	/* a model directory whose config.json lacks a key, or whose tensors are missing */
	char d[512], path[600];
	snprintf(d, sizeof(d), "%s/hfdir", dir);
	mkdir(d, 0755);
	snprintf(path, sizeof(path), "%s/config.json", d);
	FILE *fp = fopen(path, "w");
	fprintf(fp, "{\"model_type\": \"llama\", \"hidden_size\": 16, \"num_attention_heads\": 2}");
	fclose(fp);
	expect_model("config.json without num_hidden_layers", d, "missing 'num_hidden_layers'");
	fp = fopen(path, "w");
	fprintf(fp, "{\"model_type\": \"llama\", \"hidden_size\": 16, \"num_attention_heads\": 2, "
	    "\"num_hidden_layers\": 1, \"intermediate_size\": 32, \"vocab_size\": 8}");
	fclose(fp);
	snprintf(path, sizeof(path), "%s/model.safetensors", d);
	rename(good, path);
	expect_model("safetensors without the embedding", d, "missing tensor 'model.embed_tokens.weight'");
	fp = fopen(path, "w");
	fprintf(fp, "{\"model_type\": ");
	fclose(fp);
	snprintf(path, sizeof(path), "%s/config.json", d);
	fp = fopen(path, "w");
	fprintf(fp, "{\"model_type\": \"gpt2\"}");
	fclose(fp);
	expect_model("another architecture", d, "model_type 'gpt2' is not supported");
	static const struct { const char *extra, *want; } opt[] = {
		{ "\"num_hidden_layers\": 1073741824", "num_hidden_layers 1073741824 is out of range" },
		{ "\"num_hidden_layers\": 1, \"hidden_act\": \"gelu\"", "hidden_act 'gelu' is not supported" },
		{ "\"num_hidden_layers\": 1, \"hidden_act\": 7", "hidden_act '(not a string)' is not supported" },
		{ "\"num_hidden_layers\": 1, \"attention_bias\": true", "'attention_bias' is set: bias terms are not supported" },
		{ "\"num_hidden_layers\": 1, \"mlp_bias\": true", "'mlp_bias' is set: bias terms are not supported" },
		{ "\"num_hidden_layers\": 1, \"num_hidden_layers\": 2", "duplicate object key" },
	};
	for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) {
		fp = fopen(path, "w");
		fprintf(fp, "{\"model_type\": \"llama\", \"hidden_size\": 16, \"num_attention_heads\": 2, "
		    "\"intermediate_size\": 32, \"vocab_size\": 8, %s}",
		    opt[i].extra);
		fclose(fp);
		expect_model(opt[i].extra, d, opt[i].want);
	}

	/* a sharded set where the second shard repeats a tensor of the first */
	snprintf(d, sizeof(d), "%s/shards", dir);
	mkdir(d, 0755);
	st_file("shards/s1.safetensors",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
	st_file("shards/s2.safetensors",
	    "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", d);
	fp = fopen(path, "w");
	fprintf(fp, "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}}");
	fclose(fp);
	s = st_open_dir(d, &e);
	ok(s == NULL && strstr(e.msg, "s2.safetensors: tensor 'a' appears twice") != NULL,
	    "a tensor in two shards: refused (%s)", s ? "opened!" : e.msg);
	st_close(s);
}

/* --- cost: duplicate and overlap checks must be linear (n log n), not pairwise ---------- */

static const char *
many_gguf(const char *name, uint64_t n)
{
	struct buf b = { 0 };
	char k[32];

	put_u32(&b, 0x46554747u);
	put_u32(&b, 3);
	put_u64(&b, n);
	put_u64(&b, n);
	for (uint64_t i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "key.%08llu", (unsigned long long)i);
		put_str(&b, k);
		put_u32(&b, GGUF_U8);
		put(&b, "", 1);
	}
	for (uint64_t i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "t.%08llu", (unsigned long long)i);
		put_str(&b, k);
		put_u32(&b, 1);
		put_u64(&b, 1);
		put_u32(&b, GGML_TYPE_F32);
		put_u64(&b, 32 * (n - 1 - i));	/* reverse order: the sort has work to do */
	}
	while (b.n % 32)
		put(&b, "", 1);
	for (uint64_t i = 0; i < n; i++)
		put(&b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 32);
	const char *p = write_file(name, b.p, b.n);
	buf_free(&b);
	return p;
}

static void
cost_cases(void)
{
	/* the duplicate checks go through the hash set (one insert and one lookup per key and
	 * per tensor) and it stays ~1 slot per operation on sequential names, where a weak hash
	 * clusters them into long runs. (A CPU-time ratio was tried: the cache makes it
	 * superlinear on this hardware even for the hash set.) */
	const char *p = many_gguf("many.gguf", 40000);
	const unsigned long long ops = 2 * 2 * 40000ull;
	struct err e;
	unsigned long long before = strmap_probes();
	struct gguf *g = gguf_open(p, &e);
	unsigned long long used = strmap_probes() - before;
	ok(g != NULL && used >= ops && used < 2 * ops, "40000 keys and 40000 tensors: %llu slots "
	    "visited for %llu inserts and lookups (%.2f each, pairwise would be %.0f)", used, ops,
	    (double)used / (double)ops, 2 * 40000.0 * 39999.0 / 2 / ops);
	gguf_close(g);
	unlink(p);
}

/* --- the model hash: a real SHA-256, cached in a sidecar ------------------------------- */

static void
shell_hash(const char *cmd, char out[65])
{
	FILE *fp = popen(cmd, "r");

	out[0] = '\0';
	if (fp != NULL) {
		if (fscanf(fp, "%64s", out) != 1)
			out[0] = '\0';
		pclose(fp);
	}
}

/* opens path; returns its hash in h and whether the sidecar served it */
static int
open_hash(const char *path, char h[65], int *cached)
{
	struct err e;
	struct model *m = model_open(path, &e);

	if (m == NULL) {
		diag("%s", e.msg);
		h[0] = '\0';
		*cached = -1;
		return -1;
	}
	snprintf(h, 65, "%s", model_hash(m));
	*cached = model_hash_cached(m);
	model_close(m);
	return 0;
}

static void
hash_cases(const char *models)
{
	struct buf b;
	struct opts o = { 0 };
	char want[65], h[65], h2[65], cmd[1200], side[600];
	int cached;

	mini_gguf(&b, &o);
	const char *p0 = write_file("hash.gguf", b.p, b.n);
	char path[512];
	snprintf(path, sizeof(path), "%s", p0);
	snprintf(side, sizeof(side), "%s.sha256", path);
	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	shell_hash(cmd, want);
	open_hash(path, h, &cached);
	ok(strlen(want) == 64 && strcmp(h, want) == 0 && cached == 0,
	    "GGUF: model_hash is sha256sum's digest (%.16s...), computed", h);
	ok(access(side, F_OK) == 0, "a sidecar %s.sha256 is written", "hash.gguf");
	open_hash(path, h, &cached);
	ok(strcmp(h, want) == 0 && cached == 1, "a second open takes it from the sidecar");

	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	utimensat(AT_FDCWD, path, ts, 0);
	open_hash(path, h, &cached);
	ok(strcmp(h, want) == 0 && cached == 0, "touched (new mtime): rehashed, same digest");
	open_hash(path, h, &cached);
	ok(cached == 1, "and cached again");

	/* new content, mtime put back: the ctime still tells */
	((unsigned char *)b.p)[b.n - 1] ^= 1;
	FILE *fp = fopen(path, "r+b");
	fseek(fp, (long)b.n - 1, SEEK_SET);
	fputc(((unsigned char *)b.p)[b.n - 1], fp);
	fclose(fp);
	utimensat(AT_FDCWD, path, ts, 0);
	shell_hash(cmd, h2);
	open_hash(path, h, &cached);
	ok(strcmp(h, h2) == 0 && strcmp(h, want) != 0 && cached == 0,
	    "one byte changed, mtime restored: rehashed to the new sha256sum (%.16s...)", h);

	fp = fopen(side, "w");
	fputs("sha256 not-a-digest\n", fp);
	fclose(fp);
	open_hash(path, h, &cached);
	ok(strcmp(h, h2) == 0 && cached == 0, "a corrupt sidecar is ignored");
	open_hash(path, h, &cached);
	ok(strcmp(h, h2) == 0 && cached == 1, "and rewritten");

	/* a sidecar that cannot be written (its name is taken by a directory) */
	unlink(side);
	mkdir(side, 0755);
	int r1 = open_hash(path, h, &cached);
	int c1 = cached;
	open_hash(path, h, &cached);
	ok(r1 == 0 && strcmp(h, h2) == 0 && c1 == 0 && cached == 0,
	    "sidecar not writable: the model opens, hashed each time");
	rmdir(side);
	buf_free(&b);

	/* Hugging Face directories: sha256 over `sha256sum` of the files read, sorted by name */
	static const char *const dirs[] = { "tiny-l3", "tiny-l3-sharded" };
	for (int i = 0; i < 2; i++) {
		char d[600];
		snprintf(d, sizeof(d), "%s/%s", models ? models : "", dirs[i]);
		if (models == NULL || access(d, F_OK) != 0) {
			printf("ok %d # skip no %s (built by make models from ../shared)\n", ++tap_n, d);
			continue;
		}
		snprintf(cmd, sizeof(cmd), "cd '%s' && sha256sum $(ls config.json tokenizer.json "
		    "model.safetensors.index.json *.safetensors 2>/dev/null | LC_ALL=C sort -u) | "
		    "sha256sum", d);
		shell_hash(cmd, want);
		open_hash(d, h, &cached);
		int c0 = cached;
		open_hash(d, h2, &cached);
		ok(strlen(want) == 64 && strcmp(h, want) == 0 && strcmp(h2, want) == 0 && cached == 1,
		    "%s: model_hash = sha256 of sha256sum's listing (%.16s...), then from sidecars "
		    "(first open %s)", dirs[i], h, c0 ? "cached" : "computed");
	}
}

int
main(int argc, char **argv)
{
	snprintf(dir, sizeof(dir), "/tmp/guardd-reject-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	gguf_cases();
	safetensors_cases();
	cost_cases();
	hash_cases(argc > 1 ? argv[1] : NULL);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
