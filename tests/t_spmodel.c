/* t_spmodel.c - SentencePiece tokenizer.model (protobuf) loading: hand-made models, one per
 * failure mode, each expecting its message; then Llama 2's real file against the
 * sentencepiece library's ids (cases.json) and against the GGUF vocabulary of the same
 * tokenizer, table for table; then a Hugging Face directory holding it, through model_open
 * and the real `guard tokenize`.
 *   t_spmodel [MODELS-DIR]   (build/models; its parts skip without it or ../shared) */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/gguf.h"
#include "core/model.h"
#include "core/tok_int.h"
#include "util/mapfile.h"
#include "refutil.h"
#include "tap.h"

/* ---- a protobuf writer for the hand-made models ---- */

enum { VARINT = 0, I64 = 1, LEN = 2, I32 = 5 };

static void
put_varint(struct buf *b, uint64_t v)
{
	unsigned char c;

	do {
		c = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			c |= 0x80;
		buf_add(b, &c, 1);
	} while (v);
}

static void
put_key(struct buf *b, unsigned num, int wt)
{
	put_varint(b, (uint64_t)num << 3 | (unsigned)wt);
}

static void
put_uint(struct buf *b, unsigned num, uint64_t v)
{
	put_key(b, num, VARINT);
	put_varint(b, v);
}

static void
put_bytes(struct buf *b, unsigned num, const void *p, size_t n)
{
	put_key(b, num, LEN);
	put_varint(b, n);
	buf_add(b, p, n);
}

static void
put_float(struct buf *b, unsigned num, float f)
{
	put_key(b, num, I32);
	buf_add(b, &f, 4);
}

/* one unknown field of each wire type, numbered num */
static void
put_unknown(struct buf *b, unsigned num)
{
	put_uint(b, num, 300);
	put_key(b, num, I64);
	buf_add(b, "12345678", 8);
	put_bytes(b, num, "\x08\x01skip", 6);
	put_key(b, num, I32);
	buf_add(b, "1234", 4);
}

struct piece {
	const char *text;
	float score;
	int type;
};

/* the hand-made vocabulary: "ab a" -> 8 6 with the dummy prefix, 7 6 without, "z" -> 3 0 */
static const struct piece mini[] = {
	{ "<unk>", 0, TT_UNKNOWN }, { "<s>", 0, TT_CONTROL }, { "</s>", 0, TT_CONTROL },
	{ "\xe2\x96\x81", -3, TT_NORMAL }, { "a", -4, TT_NORMAL }, { "b", -5, TT_NORMAL },
	{ "\xe2\x96\x81" "a", -1, TT_NORMAL }, { "ab", -2, TT_NORMAL },
	{ "\xe2\x96\x81" "ab", -0.5f, TT_NORMAL },
};

struct mopt {
	int n_pieces;		/* of mini[] */
	uint64_t model_type;
	int byte_fallback, dummy_prefix, ws_suffix;
	int remove_ws;		/* -1: left out (default true) */
	int no_trainer, no_normalizer, unknown;
	int64_t bos;
	const char *charsmap;
};

static const struct mopt good = { 9, 2, 0, 1, 0, 0, 0, 0, 0, 1, NULL };

static void
build(struct buf *b, const struct mopt *o)
{
	struct buf sub = { 0 };

	*b = (struct buf){ 0 };
	for (int i = 0; i < o->n_pieces; i++) {
		sub.n = 0;
		if (o->unknown)
			put_unknown(&sub, 7);
		put_bytes(&sub, 1, mini[i].text, strlen(mini[i].text));
		put_float(&sub, 2, mini[i].score);
		put_uint(&sub, 3, (uint64_t)mini[i].type);
		put_bytes(b, 1, sub.p, sub.n);
	}
	if (o->unknown)
		put_unknown(b, 99);
	if (!o->no_trainer) {
		sub.n = 0;
		if (o->unknown)
			put_unknown(&sub, 100);
		put_bytes(&sub, 2, "prefix", 6);
		put_uint(&sub, 3, o->model_type);
		put_uint(&sub, 4, 9);
		if (o->ws_suffix)
			put_uint(&sub, 24, 1);
		put_uint(&sub, 35, (uint64_t)o->byte_fallback);
		put_uint(&sub, 41, (uint64_t)o->bos);
		put_uint(&sub, 43, (uint64_t)-1);	/* pad_id -1: a 10-byte varint */
		put_bytes(b, 2, sub.p, sub.n);
	}
	if (!o->no_normalizer) {
		sub.n = 0;
		put_bytes(&sub, 1, "identity", 8);
		put_bytes(&sub, 2, o->charsmap ? o->charsmap : "", o->charsmap ? strlen(o->charsmap) : 0);
		put_uint(&sub, 3, (uint64_t)o->dummy_prefix);
		if (o->remove_ws >= 0)
			put_uint(&sub, 4, (uint64_t)o->remove_ws);
		if (o->unknown)
			put_unknown(&sub, 50);
		put_bytes(b, 3, sub.p, sub.n);
	}
	if (o->unknown)
		put_bytes(b, 4, "\x0a\x02hi", 4);	/* self_test_data: skipped */
	buf_free(&sub);
}

static int
encodes(const struct tok *t, const char *text, const int32_t *want, size_t n)
{
	struct tokvec v = { 0 };
	struct err e;
	int same = tok_encode(t, text, strlen(text), 0, &v, &e) == 0 && v.n == n &&
	    (n == 0 || memcmp(v.v, want, n * sizeof(*want)) == 0);

	if (!same) {
		printf("# '%s' got:", text);
		for (size_t i = 0; i < v.n; i++)
			printf(" %d", v.v[i]);
		printf("\n");
	}
	tokvec_free(&v);
	return same;
}

static void
good_cases(void)
{
	static const int32_t ab_a[] = { 8, 6 }, ab_a_noprefix[] = { 7, 6 }, z[] = { 3, 0 };
	struct buf b;
	struct err e;
	struct mopt o = good;

	build(&b, &o);
	struct tok *t = tok_parse_spmodel(b.p, b.n, "mini.model", &e);
	if (!ok(t != NULL, "hand-made BPE model loads (%zu bytes)", b.n))
		diag("%s", e.msg);
	else {
		ok(tok_n_vocab(t) == 9 && tok_bos(t) == 1 && tok_eos(t) == 2 && t->unk == 0,
		    "9 pieces, bos 1 (given), eos 2 and unk 0 (the proto's defaults)");
		ok(encodes(t, "ab a", ab_a, 2), "'ab a' -> 8 6: dummy prefix, best score merged first");
		ok(encodes(t, "z", z, 2), "'z' -> 3 0: no piece and no byte fallback gives <unk>");
		ok(tok_is_special(t, 1) && tok_is_special(t, 2) && !tok_is_special(t, 4),
		    "CONTROL pieces are special, NORMAL ones are not");
		ok(t->score[8] == -0.5f && t->type[0] == TT_UNKNOWN, "scores and types as written");
		tok_free(t);
	}
	buf_free(&b);

	o.dummy_prefix = 0;
	build(&b, &o);
	t = tok_parse_spmodel(b.p, b.n, "mini.model", &e);
	ok(t != NULL && encodes(t, "ab a", ab_a_noprefix, 2),
	    "add_dummy_prefix false: 'ab a' -> 7 6 (no leading U+2581)");
	tok_free(t);
	buf_free(&b);

	o = good;
	o.unknown = 1;
	build(&b, &o);
	t = tok_parse_spmodel(b.p, b.n, "mini.model", &e);
	if (!ok(t != NULL && encodes(t, "ab a", ab_a, 2) && tok_bos(t) == 1,
	    "unknown fields of every wire type, at every level, are skipped"))
		diag("%s", t ? "" : e.msg);
	tok_free(t);

	/* a message given twice is merged: the later model_type wins */
	struct buf twice = { 0 }, tr = { 0 };
	put_uint(&tr, 3, 1);
	put_bytes(&twice, 2, tr.p, tr.n);
	buf_add(&twice, b.p, b.n);
	t = tok_parse_spmodel(twice.p, twice.n, "mini.model", &e);
	ok(t != NULL, "trainer_spec given twice (UNIGRAM, then BPE) merges to BPE");
	tok_free(t);
	buf_free(&tr);
	buf_free(&twice);
	buf_free(&b);
}

struct bad {
	const char *why, *want;
};

static void
expect_fail(const void *p, size_t n, const struct bad *c)
{
	struct err e = { "" };
	struct tok *t = tok_parse_spmodel(p, n, "bad.model", &e);

	if (!ok(t == NULL && strncmp(e.msg, "bad.model: ", 11) == 0 && strstr(e.msg, c->want),
	    "%s: refused, naming the file: %s", c->why, t ? "(loaded)" : e.msg))
		diag("want substring: %s", c->want);
	tok_free(t);
}

/* a valid model followed by tail bytes at the top level */
static void
with_tail(const char *tail, size_t tn, const struct bad *c)
{
	struct buf b;

	build(&b, &good);
	buf_add(&b, tail, tn);
	expect_fail(b.p, b.n, c);
	buf_free(&b);
}

static void
bad_opts(const struct mopt *o, const struct bad *c)
{
	struct buf b;

	build(&b, o);
	expect_fail(b.p, b.n, c);
	buf_free(&b);
}

static void
bad_piece(const char *piece, size_t n, const struct bad *c)
{
	struct buf b, p = { 0 };

	build(&b, &good);
	put_bytes(&p, 1, piece, n);
	buf_add(&b, p.p, p.n);
	expect_fail(b.p, b.n, c);
	buf_free(&p);
	buf_free(&b);
}

static void
bad_cases(void)
{
	struct mopt o;
	struct buf b;
	char want[64];

	build(&b, &good);
	size_t end = b.n;
	buf_free(&b);

	expect_fail("", 0, &(struct bad){ "an empty file", "offset 0: the file ends with no pieces" });
	o = good, o.n_pieces = 0;
	bad_opts(&o, &(struct bad){ "zero pieces", "no pieces" });
	o = good, o.model_type = 1;
	bad_opts(&o, &(struct bad){ "model_type UNIGRAM", "model_type is UNIGRAM (1): only BPE" });
	o = good, o.model_type = 4;
	bad_opts(&o, &(struct bad){ "model_type CHAR", "model_type is CHAR (4)" });
	o = good, o.model_type = 77;
	bad_opts(&o, &(struct bad){ "model_type 77", "model_type is unknown (77)" });
	o = good, o.no_trainer = 1;
	bad_opts(&o, &(struct bad){ "no trainer_spec", "no trainer_spec (model_type would be UNIGRAM)" });
	o = good, o.no_normalizer = 1;
	bad_opts(&o, &(struct bad){ "no normalizer_spec", "no normalizer_spec" });
	o = good, o.remove_ws = -1;
	bad_opts(&o, &(struct bad){ "remove_extra_whitespaces left to its default",
	    "remove_extra_whitespaces is set" });
	o = good, o.charsmap = "\x01\x02";
	bad_opts(&o, &(struct bad){ "a precompiled_charsmap", "normalizer_spec precompiled_charsmap (2 bytes)" });
	with_tail("\x2a\x04\x12\x02\x01\x02", 6, &(struct bad){ "a denormalizer's charsmap",
	    "denormalizer_spec precompiled_charsmap (2 bytes)" });
	o = good, o.ws_suffix = 1;
	bad_opts(&o, &(struct bad){ "treat_whitespace_as_suffix", "treat_whitespace_as_suffix" });
	o = good, o.byte_fallback = 1;
	bad_opts(&o, &(struct bad){ "byte_fallback without byte pieces", "no BYTE piece <0x00>" });
	o = good, o.bos = 9;
	bad_opts(&o, &(struct bad){ "bos_id past the vocabulary", "bos_id = 9 is outside" });
	o = good, o.bos = (int64_t)-5;
	bad_opts(&o, &(struct bad){ "bos_id -5", "bos_id = -5 is outside" });

	/* broken bytes after a valid model: offsets are exact */
	snprintf(want, sizeof(want), "offset %zu: ModelProto: field 1: length 5 runs past", end);
	with_tail("\x0a\x05" "a", 3, &(struct bad){ "a length past the end", want });
	snprintf(want, sizeof(want), "offset %zu: ModelProto: varint runs past", end + 1);
	with_tail("\x08\x80", 2, &(struct bad){ "a varint cut short", want });
	with_tail("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11,
	    &(struct bad){ "an 11-byte varint", "varint overflows 64 bits" });
	with_tail("\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11,
	    &(struct bad){ "a length of 2^64-1", "length 18446744073709551615 runs past" });
	with_tail("\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11,
	    &(struct bad){ "a length of 2^63", "length 9223372036854775808 runs past" });
	with_tail("\x12\xff\xff\xff\xff\x0f", 6,
	    &(struct bad){ "a 4 GB trainer_spec", "length 4294967295 runs past" });
	with_tail("\x3b", 1, &(struct bad){ "a group (wire type 3)", "field 7: groups (wire type 3)" });
	with_tail("\x3c", 1, &(struct bad){ "an end-group (wire type 4)", "groups (wire type 4)" });
	with_tail("\x3e", 1, &(struct bad){ "wire type 6", "field 7: invalid wire type 6" });
	with_tail("\x02\x00", 2, &(struct bad){ "field number 0", "field number 0 is invalid" });
	with_tail("\x39" "1234567", 8, &(struct bad){ "a 64-bit field cut short", "needs 8 bytes, only 7" });
	with_tail("\x08\x01", 2, &(struct bad){ "pieces as a varint", "pieces has wire type 0, expected length" });
	with_tail("\x12\x04\x18\x02\x3a\x05", 6, &(struct bad){ "a length past trainer_spec's end",
	    "trainer_spec: field 7: length 5 runs past the end of its message (0 bytes left)" });

	with_tail("\x12\x02\x1a\x00", 4, &(struct bad){ "model_type as bytes",
	    "trainer_spec.model_type has wire type 2, expected varint" });
	bad_piece("\x0a\x01x\x15\x00\x00\xc0\x7f", 8, &(struct bad){ "a NaN score", "score is NaN" });
	bad_piece("\x0a\x01x\x10\x05", 5, &(struct bad){ "a score as a varint",
	    "pieces[9].score has wire type 0, expected 32-bit" });
	bad_piece("\x0a\x01x\x18\x07", 5, &(struct bad){ "piece type 7", "pieces[9]: type 7 is not one of" });
	bad_piece("\x0a\x01x\x18\x00", 5, &(struct bad){ "piece type 0", "type 0 is not one of" });
	bad_piece("\x15\x00\x00\x00\x00", 5, &(struct bad){ "a piece without text", "pieces[9] has no piece text" });
	bad_piece("\x0a\x00", 2, &(struct bad){ "an empty piece", "pieces[9]: empty piece" });
	bad_piece("\x0a\x05xy", 4, &(struct bad){ "piece text past its message",
	    "pieces[9]: field 1: length 5 runs past" });
	bad_piece("\x0a\x01x\x18", 4, &(struct bad){ "a piece cut inside a varint", "pieces[9]: varint runs past" });

	/* every truncation of the hand-made model fails cleanly and says where */
	build(&b, &good);
	int clean = 1;
	for (size_t n = 0; n < b.n; n++) {
		struct err e;
		struct tok *t = tok_parse_spmodel(b.p, n, "cut.model", &e);
		if (t != NULL || strncmp(e.msg, "cut.model: ", 11) != 0 ||
		    strstr(e.msg, "offset ") == NULL) {
			diag("prefix %zu: %s", n, t ? "loaded" : e.msg);
			clean = 0;
		}
		tok_free(t);
	}
	ok(clean, "each of the %zu truncations of the hand-made model is refused with an offset", b.n);
	buf_free(&b);
}

/* ---- Llama 2's tokenizer.model against sentencepiece and the GGUF vocabulary ---- */

static void
same_tables(const struct tok *a, const struct tok *g)
{
	int bad = -1;

	ok(a->n_vocab == 32000 && g->n_vocab == a->n_vocab, "32000 pieces in both (%d, %d)",
	    a->n_vocab, g->n_vocab);
	for (int i = 0; i < a->n_vocab && i < g->n_vocab && bad < 0; i++)
		if (a->len[i] != g->len[i] || memcmp(a->text[i], g->text[i], a->len[i]) != 0 ||
		    a->score[i] != g->score[i] || a->type[i] != g->type[i])
			bad = i;
	if (!ok(bad < 0, "every id: the same text, score and type from both loaders"))
		diag("first difference at id %d: '%s' %g %d vs '%s' %g %d", bad, a->text[bad],
		    (double)a->score[bad], a->type[bad], g->text[bad], (double)g->score[bad], g->type[bad]);
	ok(a->bos == g->bos && a->eos == g->eos && a->unk == g->unk && a->bos == 1 && a->eos == 2 &&
	    a->unk == 0, "bos 1, eos 2, unk 0 in both");
	ok(a->add_space_prefix == 1 && g->add_space_prefix == 1, "dummy prefix on in both");
	ok(memcmp(a->byte_id, g->byte_id, sizeof(a->byte_id)) == 0 && a->byte_id[0] == 3 &&
	    a->byte_id[255] == 258, "byte fallback ids equal (<0x00> = 3 .. <0xFF> = 258)");
	ok(a->n_specials == g->n_specials && memcmp(a->specials, g->specials,
	    a->n_specials * sizeof(*a->specials)) == 0, "the same %zu special tokens", a->n_specials);
}

static void
cases(const struct tok *a, const struct tok *g, json_t *list)
{
	struct err e;

	ok(json_array_size(list) >= 20, "cases.json has %zu cases", json_array_size(list));
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *c = json_array_get(list, i);
		const char *text = json_string_value(json_object_get(c, "text"));
		size_t len = json_string_length(json_object_get(c, "text"));
		const char *want = json_string_value(json_object_get(c, "decoded"));
		struct tokvec va = { 0 }, vg = { 0 };
		struct buf d = { 0 };
		int ra = tok_encode(a, text, len, 0, &va, &e);
		int rg = tok_encode(g, text, len, 0, &vg, &e);
		ok(ra == 0 && ref_ids_equal(&va, json_object_get(c, "ids")),
		    "case %zu: tokenizer.model gives sentencepiece's %zu ids", i, va.n);
		ok(rg == 0 && va.n == vg.n && (va.n == 0 || memcmp(va.v, vg.v, va.n * sizeof(*va.v)) == 0),
		    "case %zu: and the GGUF vocabulary's", i);
		tok_decode(a, va.v, va.n, &d, &e);
		ok(want && d.n == strlen(want) && memcmp(d.p ? d.p : "", want, d.n) == 0,
		    "case %zu: decodes back", i);
		tokvec_free(&va);
		tokvec_free(&vg);
		buf_free(&d);
	}
}

static void
truncations(const char *path)
{
	struct mapfile mf;
	struct err e;
	size_t n_cut = 0;
	int clean = 1;

	if (mapfile_open(&mf, path, &e) == -1) {
		ok(0, "%s", e.msg);
		return;
	}
	/* every prefix length of the first 4 KB (pieces) and of the last 1 KB (the trainer and
	 * normalizer specs, 290 bytes), 300 between */
	for (size_t n = 0; n < mf.size; n++) {
		if (n >= 4096 && n + 1024 < mf.size && n % (mf.size / 300) != 0)
			continue;
		struct tok *t = tok_parse_spmodel(mf.data, n, "l2.model", &e);
		n_cut++;
		if (t != NULL || strncmp(e.msg, "l2.model: ", 10) != 0 ||
		    strstr(e.msg, "offset ") == NULL) {
			if (clean)
				diag("prefix %zu: %s", n, t ? "loaded" : e.msg);
			clean = 0;
		}
		tok_free(t);
	}
	ok(clean, "%zu truncations of tokenizer.model: each refused, naming the offset", n_cut);
	mapfile_close(&mf);
}

/* ---- a Hugging Face directory holding tokenizer.model ---- */

static void
shell_line(const char *cmd, char *out, size_t cap)
{
	FILE *fp = popen(cmd, "r");

	out[0] = '\0';
	if (fp != NULL) {
		if (fgets(out, (int)cap, fp) == NULL)
			out[0] = '\0';
		pclose(fp);
	}
	out[strcspn(out, "\n")] = '\0';
}

static void
hf_dir(const char *models, const char *shared, json_t *list)
{
	char d[600], cmd[8400], want[128], got[4096], tmp[64] = "/tmp/guardd-spm-XXXXXX";
	struct err e;

	snprintf(d, sizeof(d), "%s/tiny-l2", models);
	struct model *m = model_open(d, &e);
	if (!ok(m != NULL && model_tok(m) != NULL && tok_kind(model_tok(m)) == TOK_SPM,
	    "model_open(tiny-l2): a SentencePiece tokenizer from tokenizer.model"))
		diag("%s", m ? "no tokenizer" : e.msg);
	if (m != NULL) {
		snprintf(cmd, sizeof(cmd), "cd '%s' && sha256sum config.json model.safetensors "
		    "tokenizer.model | sha256sum", d);
		shell_line(cmd, want, sizeof(want));
		ok(strncmp(want, model_hash(m), 64) == 0,
		    "its model_hash is sha256sum's listing with tokenizer.model (%.16s...)", model_hash(m));
		model_close(m);
	}
	if (mkdtemp(tmp) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	/* the real CLI, every case */
	int all = 1;
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *c = json_array_get(list, i), *ids = json_object_get(c, "ids");
		char f[128], line[4096] = "";
		snprintf(f, sizeof(f), "%s/case", tmp);
		FILE *fp = fopen(f, "wb");
		fwrite(json_string_value(json_object_get(c, "text")), 1,
		    json_string_length(json_object_get(c, "text")), fp);
		fclose(fp);
		for (size_t k = 0; k < json_array_size(ids); k++)
			snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%lld", k ? " " : "",
			    (long long)json_integer_value(json_array_get(ids, k)));
		snprintf(cmd, sizeof(cmd), "./guard tokenize -m '%s' < '%s' 2>&1", d, f);
		shell_line(cmd, got, sizeof(got));
		if (strcmp(got, line) != 0) {
			diag("case %zu: got '%s', want '%s'", i, got, line);
			all = 0;
		}
	}
	ok(all, "guard tokenize -m %s: sentencepiece's ids for all %zu cases", d, json_array_size(list));

	/* tokenizer.json and tokenizer.model both there: tokenizer.json is read and hashed */
	snprintf(cmd, sizeof(cmd), "d='%s/both'; mkdir \"$d\" && for f in config.json "
	    "model.safetensors tokenizer.json; do ln -s \"$(cd '%s/tiny-l3' && pwd)/$f\" \"$d/$f\"; "
	    "done && cp '%s/reference/tokenizers/llama2/tokenizer.model' \"$d/\" && echo made",
	    tmp, models, shared);
	shell_line(cmd, got, sizeof(got));
	snprintf(d, sizeof(d), "%s/both", tmp);
	m = strcmp(got, "made") == 0 ? model_open(d, &e) : NULL;
	if (!ok(m != NULL && model_tok(m) != NULL && tok_kind(model_tok(m)) == TOK_BPE,
	    "both tokenizer files: tokenizer.json wins (byte-level BPE)"))
		diag("%s", m ? "" : e.msg);
	if (m != NULL) {
		static const int32_t hw[] = { 9906, 1917 };
		ok(encodes(model_tok(m), "Hello world", hw, 2), "and gives Llama 3's ids");
		snprintf(cmd, sizeof(cmd), "cd '%s' && sha256sum config.json model.safetensors "
		    "tokenizer.json | sha256sum", d);
		shell_line(cmd, want, sizeof(want));
		ok(strncmp(want, model_hash(m), 64) == 0,
		    "its model_hash lists tokenizer.json, not the unread tokenizer.model");
		model_close(m);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
}

int
main(int argc, char **argv)
{
	const char *shared = shared_dir(), *models = argc > 1 ? argv[1] : NULL;
	char path[4200];
	json_error_t je;
	struct err e;

	good_cases();
	bad_cases();
	if (shared == NULL) {
		printf("ok %d # skip ../shared is absent: no Llama 2 tokenizer.model to compare\n", ++tap_n);
		return done_testing();
	}
	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama2/tokenizer.model", shared);
	struct tok *a = tok_load_spmodel(path, &e);
	if (!ok(a != NULL, "load Llama 2 tokenizer.model"))
		diag("%s", e.msg);
	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama2/ggml-vocab-llama-spm.gguf", shared);
	struct gguf *g = gguf_open(path, &e);
	struct tok *gt = g ? tok_load_gguf(g, &e) : NULL;
	if (!ok(gt != NULL, "load the Llama 2 GGUF vocabulary"))
		diag("%s", e.msg);
	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama2/cases.json", shared);
	json_t *root = json_load_file(path, 0, &je);
	json_t *list = json_object_get(root, "cases");
	if (a != NULL && gt != NULL) {
		same_tables(a, gt);
		cases(a, gt, list);
	}
	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama2/tokenizer.model", shared);
	truncations(path);
	snprintf(path, sizeof(path), "%s/tiny-l2/tokenizer.model", models ? models : "");
	if (models == NULL || access(path, F_OK) != 0)
		printf("ok %d # skip no %s (built by make models from ../shared)\n", ++tap_n, path);
	else
		hf_dir(models, shared, list);
	json_decref(root);
	tok_free(a);
	tok_free(gt);
	gguf_close(g);
	return done_testing();
}
