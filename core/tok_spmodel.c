/* tok_spmodel.c - a SentencePiece model file (Llama 2's tokenizer.model) read into the same
 * tokenizer the GGUF "llama" vocabulary gives: a small protobuf reader of ModelProto that
 * takes the pieces, the BPE trainer settings and the normalizer flags, and refuses what the
 * SentencePiece encoder (tok_spm.c) does not implement rather than tokenizing differently. */
#include "core/tok_int.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mapfile.h"

/* protobuf wire types; 3 and 4 (groups) are refused */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* the field numbers of sentencepiece_model.proto this reader uses */
enum {
	MP_PIECES = 1, MP_TRAINER = 2, MP_NORMALIZER = 3, MP_DENORMALIZER = 5,
	SP_PIECE = 1, SP_SCORE = 2, SP_TYPE = 3,
	TS_MODEL_TYPE = 3, TS_WS_SUFFIX = 24, TS_BYTE_FALLBACK = 35,
	TS_UNK = 40, TS_BOS = 41, TS_EOS = 42, TS_PAD = 43,
	NS_CHARSMAP = 2, NS_DUMMY_PREFIX = 3, NS_REMOVE_WS = 4, NS_ESCAPE_WS = 5,
};

enum { MODEL_BPE = 2 };

#define MAX_PIECES (1u << 24)	/* as for a GGUF vocabulary */

struct pbfile {
	const unsigned char *d;
	size_t n;
	const char *name;
};

/* One field of a message: its number, wire type, where it starts, and its value (a varint)
 * or payload (offset and length of the bytes). */
struct field {
	uint32_t num;
	int wt;
	size_t at;
	uint64_t v;
	size_t off, len;
};

/* What the trainer and normalizer specs say, with the proto's defaults; a message given
 * twice is merged as protobuf does (a later scalar wins). */
struct spec {
	uint64_t model_type;
	int byte_fallback, ws_suffix, dummy_prefix, remove_ws, escape_ws;
	int32_t unk, bos, eos, pad;
	size_t trainer_at, normalizer_at;
	size_t charsmap_at[2], charsmap_len[2];	/* normalizer's, denormalizer's */
};

static int
pb_varint(const struct pbfile *f, size_t *off, size_t end, const char *what, uint64_t *v,
    struct err *e)
{
	size_t start = *off;
	uint64_t r = 0;

	for (int i = 0; i < 10; i++) {
		if (*off >= end)
			return err_set(e, "%s: offset %zu: %s: varint runs past the end of its message "
			    "(which ends at offset %zu)", f->name, start, what, end);
		unsigned char c = f->d[(*off)++];
		if (i == 9 && c > 1)
			return err_set(e, "%s: offset %zu: %s: varint overflows 64 bits", f->name, start,
			    what);
		r |= (uint64_t)(c & 0x7f) << (7 * i);
		if (c < 0x80) {
			*v = r;
			return 0;
		}
	}
	return err_set(e, "%s: offset %zu: %s: varint longer than 10 bytes", f->name, start, what);
}

/* Reads the field at *off (before end) and moves past it; msg names the message. */
static int
pb_next(const struct pbfile *f, size_t *off, size_t end, const char *msg, struct field *fl,
    struct err *e)
{
	uint64_t key, n;
	size_t need;

	fl->at = *off;
	if (pb_varint(f, off, end, msg, &key, e) == -1)
		return -1;
	fl->num = (uint32_t)(key >> 3);
	fl->wt = (int)(key & 7);
	if (fl->num == 0 || key >> 3 > 0x1fffffff)
		return err_set(e, "%s: offset %zu: %s: field number %llu is invalid", f->name, fl->at,
		    msg, (unsigned long long)(key >> 3));
	switch (fl->wt) {
	case WT_VARINT:
		return pb_varint(f, off, end, msg, &fl->v, e);
	case WT_I64:
		need = 8;
		break;
	case WT_I32:
		need = 4;
		break;
	case WT_LEN:
		if (pb_varint(f, off, end, msg, &n, e) == -1)
			return -1;
		if (n > end - *off)
			return err_set(e, "%s: offset %zu: %s: field %u: length %llu runs past the end "
			    "of its message (%zu bytes left)", f->name, fl->at, msg, fl->num,
			    (unsigned long long)n, end - *off);
		need = (size_t)n;
		break;
	case 3:
	case 4:
		return err_set(e, "%s: offset %zu: %s: field %u: groups (wire type %d) are not "
		    "supported", f->name, fl->at, msg, fl->num, fl->wt);
	default:
		return err_set(e, "%s: offset %zu: %s: field %u: invalid wire type %d", f->name,
		    fl->at, msg, fl->num, fl->wt);
	}
	if (need > end - *off)
		return err_set(e, "%s: offset %zu: %s: field %u: needs %zu bytes, only %zu left in "
		    "its message", f->name, fl->at, msg, fl->num, need, end - *off);
	fl->off = *off;
	fl->len = need;
	*off += need;
	return 0;
}

static int
pb_want(const struct pbfile *f, const struct field *fl, int wt, const char *what, struct err *e)
{
	static const char *const names[] = { "varint", "64-bit", "length-delimited", "", "", "32-bit" };

	if (fl->wt != wt)
		return err_set(e, "%s: offset %zu: %s has wire type %d, expected %s", f->name, fl->at,
		    what, fl->wt, names[wt]);
	return 0;
}

/* protobuf's int32: the low 32 bits of the varint, two's complement */
static int32_t
pb_int32(uint64_t v)
{
	uint32_t u = (uint32_t)v;

	return u > INT32_MAX ? -(int32_t)(~u) - 1 : (int32_t)u;
}

static int
read_piece(struct tok *t, const struct pbfile *f, int id, const struct field *m, struct err *e)
{
	size_t off = m->off, end = m->off + m->len;
	int have_text = 0;
	char what[48], fw[64];
	struct field fl;

	snprintf(what, sizeof(what), "pieces[%d]", id);
	t->type[id] = TT_NORMAL;
	while (off < end) {
		if (pb_next(f, &off, end, what, &fl, e) == -1)
			return -1;
		if (fl.num == SP_PIECE) {
			snprintf(fw, sizeof(fw), "%s.piece", what);
			if (pb_want(f, &fl, WT_LEN, fw, e) == -1)
				return -1;
			if (fl.len == 0)
				return err_set(e, "%s: offset %zu: %s: empty piece", f->name, fl.at, what);
			if (tok_set_text(t, id, (const char *)f->d + fl.off, fl.len, e) == -1)
				return err_prefix(e, "%s", f->name);
			have_text = 1;
		} else if (fl.num == SP_SCORE) {
			float s;
			snprintf(fw, sizeof(fw), "%s.score", what);
			if (pb_want(f, &fl, WT_I32, fw, e) == -1)
				return -1;
			memcpy(&s, f->d + fl.off, 4);	/* little-endian on the wire and here */
			if (isnan(s))
				return err_set(e, "%s: offset %zu: %s: score is NaN", f->name, fl.at, what);
			t->score[id] = s;
		} else if (fl.num == SP_TYPE) {
			snprintf(fw, sizeof(fw), "%s.type", what);
			if (pb_want(f, &fl, WT_VARINT, fw, e) == -1)
				return -1;
			if (fl.v < TT_NORMAL || fl.v > TT_BYTE)
				return err_set(e, "%s: offset %zu: %s: type %llu is not one of NORMAL(1) .. "
				    "BYTE(6)", f->name, fl.at, what, (unsigned long long)fl.v);
			t->type[id] = (int32_t)fl.v;
		}
	}
	if (!have_text)
		return err_set(e, "%s: offset %zu: %s has no piece text", f->name, m->at, what);
	return 0;
}

static int
read_trainer(struct spec *s, const struct pbfile *f, const struct field *m, struct err *e)
{
	static const struct { uint32_t num; const char *name; } known[] = {
		{ TS_MODEL_TYPE, "trainer_spec.model_type" },
		{ TS_WS_SUFFIX, "trainer_spec.treat_whitespace_as_suffix" },
		{ TS_BYTE_FALLBACK, "trainer_spec.byte_fallback" },
		{ TS_UNK, "trainer_spec.unk_id" }, { TS_BOS, "trainer_spec.bos_id" },
		{ TS_EOS, "trainer_spec.eos_id" }, { TS_PAD, "trainer_spec.pad_id" },
	};
	size_t off = m->off, end = m->off + m->len;
	struct field fl;

	s->trainer_at = m->at;
	while (off < end) {
		if (pb_next(f, &off, end, "trainer_spec", &fl, e) == -1)
			return -1;
		const char *name = NULL;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (known[i].num == fl.num)
				name = known[i].name;
		if (name == NULL)
			continue;	/* a field this tokenizer does not need */
		if (pb_want(f, &fl, WT_VARINT, name, e) == -1)
			return -1;
		switch (fl.num) {
		case TS_MODEL_TYPE: s->model_type = fl.v; break;
		case TS_WS_SUFFIX: s->ws_suffix = fl.v != 0; break;
		case TS_BYTE_FALLBACK: s->byte_fallback = fl.v != 0; break;
		case TS_UNK: s->unk = pb_int32(fl.v); break;
		case TS_BOS: s->bos = pb_int32(fl.v); break;
		case TS_EOS: s->eos = pb_int32(fl.v); break;
		case TS_PAD: s->pad = pb_int32(fl.v); break;
		}
	}
	return 0;
}

/* normalizer_spec, or (denorm set) denormalizer_spec, of which only the character map matters */
static int
read_normalizer(struct spec *s, const struct pbfile *f, const struct field *m, int denorm,
    struct err *e)
{
	size_t off = m->off, end = m->off + m->len;
	const char *what = denorm ? "denormalizer_spec" : "normalizer_spec";
	struct field fl;

	if (!denorm)
		s->normalizer_at = m->at;
	while (off < end) {
		if (pb_next(f, &off, end, what, &fl, e) == -1)
			return -1;
		if (fl.num == NS_CHARSMAP) {
			if (pb_want(f, &fl, WT_LEN, denorm ? "denormalizer_spec.precompiled_charsmap" :
			    "normalizer_spec.precompiled_charsmap", e) == -1)
				return -1;
			/* the last one given wins, in each spec */
			s->charsmap_at[denorm] = fl.at;
			s->charsmap_len[denorm] = fl.len;
		} else if (!denorm && fl.num >= NS_DUMMY_PREFIX && fl.num <= NS_ESCAPE_WS) {
			if (pb_want(f, &fl, WT_VARINT, fl.num == NS_DUMMY_PREFIX ?
			    "normalizer_spec.add_dummy_prefix" : fl.num == NS_REMOVE_WS ?
			    "normalizer_spec.remove_extra_whitespaces" :
			    "normalizer_spec.escape_whitespaces", e) == -1)
				return -1;
			int *flag = fl.num == NS_DUMMY_PREFIX ? &s->dummy_prefix :
			    fl.num == NS_REMOVE_WS ? &s->remove_ws : &s->escape_ws;
			*flag = fl.v != 0;
		}
	}
	return 0;
}

/* What tok_spm.c does not do is refused by name rather than tokenized differently. */
static int
check_spec(const struct tok *t, const struct spec *s, const struct pbfile *f, struct err *e)
{
	static const char *const types[] = { "?", "UNIGRAM", "BPE", "WORD", "CHAR" };
	const struct { const char *name; int32_t id; } ids[] = {
		{ "unk_id", s->unk }, { "bos_id", s->bos }, { "eos_id", s->eos }, { "pad_id", s->pad },
	};

	if (s->trainer_at == SIZE_MAX)
		return err_set(e, "%s: offset %zu: the file ends with no trainer_spec (model_type "
		    "would be UNIGRAM): only BPE is supported", f->name, f->n);
	if (s->normalizer_at == SIZE_MAX)
		return err_set(e, "%s: offset %zu: the file ends with no normalizer_spec (its "
		    "remove_extra_whitespaces would be true): not supported", f->name, f->n);
	if (s->model_type != MODEL_BPE)
		return err_set(e, "%s: offset %zu: trainer_spec.model_type is %s (%llu): only BPE (2) "
		    "is supported", f->name, s->trainer_at,
		    s->model_type < 5 ? types[s->model_type] : "unknown",
		    (unsigned long long)s->model_type);
	if (s->ws_suffix)
		return err_set(e, "%s: offset %zu: trainer_spec.treat_whitespace_as_suffix is not "
		    "supported", f->name, s->trainer_at);
	for (int d = 0; d < 2; d++)
		if (s->charsmap_len[d] > 0)
			return err_set(e, "%s: offset %zu: a %s precompiled_charsmap (%zu bytes) is not "
			    "supported: only the identity normalizer", f->name, s->charsmap_at[d],
			    d ? "denormalizer_spec" : "normalizer_spec", s->charsmap_len[d]);
	if (s->remove_ws)
		return err_set(e, "%s: offset %zu: normalizer_spec.remove_extra_whitespaces is set "
		    "(or left out, default true): not supported", f->name, s->normalizer_at);
	if (!s->escape_ws)
		return err_set(e, "%s: offset %zu: normalizer_spec.escape_whitespaces is off: not "
		    "supported", f->name, s->normalizer_at);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (ids[i].id < (i == 0 ? 0 : -1) || ids[i].id >= t->n_vocab)
			return err_set(e, "%s: offset %zu: trainer_spec.%s = %d is outside the vocabulary "
			    "(%d pieces)", f->name, s->trainer_at, ids[i].name, ids[i].id, t->n_vocab);
	return 0;
}

struct tok *
tok_parse_spmodel(const void *data, size_t len, const char *name, struct err *e)
{
	const struct pbfile f = { data, len, name };
	struct spec s = { .model_type = 1, .dummy_prefix = 1, .remove_ws = 1, .escape_ws = 1,
		.unk = 0, .bos = 1, .eos = 2, .pad = -1, .trainer_at = SIZE_MAX,
		.normalizer_at = SIZE_MAX };
	struct tok *t = calloc(1, sizeof(*t));
	struct field fl;
	size_t off, n = 0;
	int id = 0;

	if (t == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	t->kind = TOK_SPM;
	/* first pass: the top level's structure and the number of pieces, to size the tables */
	for (off = 0; off < len;) {
		if (pb_next(&f, &off, len, "ModelProto", &fl, e) == -1)
			goto fail;
		if (fl.num == MP_PIECES && ++n > MAX_PIECES) {
			err_set(e, "%s: offset %zu: more than %u pieces", name, fl.at, MAX_PIECES);
			goto fail;
		}
	}
	if (n == 0) {
		err_set(e, "%s: offset %zu: the file ends with no pieces: not a SentencePiece model",
		    name, len);
		goto fail;
	}
	if (tok_alloc(t, (int)n, e) == -1)
		goto prefixed;
	for (off = 0; off < len;) {
		if (pb_next(&f, &off, len, "ModelProto", &fl, e) == -1)
			goto fail;
		static const char *const top[] = { "", "pieces", "trainer_spec", "normalizer_spec",
			"self_test_data", "denormalizer_spec" };
		int rc = 0;
		if (fl.num <= MP_DENORMALIZER && pb_want(&f, &fl, WT_LEN, top[fl.num], e) == -1)
			goto fail;
		if (fl.num == MP_PIECES)
			rc = read_piece(t, &f, id++, &fl, e);
		else if (fl.num == MP_TRAINER)
			rc = read_trainer(&s, &f, &fl, e);
		else if (fl.num == MP_NORMALIZER || fl.num == MP_DENORMALIZER)
			rc = read_normalizer(&s, &f, &fl, fl.num == MP_DENORMALIZER, e);
		if (rc == -1)
			goto fail;
	}
	if (check_spec(t, &s, &f, e) == -1)
		goto fail;
	if (tok_index_vocab(t, e) == -1)
		goto prefixed;
	t->add_space_prefix = s.dummy_prefix;
	t->unk = s.unk;
	t->bos = s.bos;
	t->eos = s.eos;
	if (tok_finish(t, e) == -1)
		goto prefixed;
	for (int b = 0; b < 256; b++) {
		if (!s.byte_fallback)
			t->byte_id[b] = -1;	/* characters without a piece become <unk> */
		else if (t->byte_id[b] < 0) {
			err_set(e, "%s: offset %zu: trainer_spec.byte_fallback is set but there is no "
			    "BYTE piece <0x%02X>", name, s.trainer_at, b);
			goto fail;
		}
	}
	return t;
prefixed:
	err_prefix(e, "%s", name);
fail:
	tok_free(t);
	return NULL;
}

struct tok *
tok_load_spmodel(const char *path, struct err *e)
{
	struct mapfile mf;
	struct tok *t;

	if (mapfile_open(&mf, path, e) == -1)
		return NULL;
	t = tok_parse_spmodel(mf.data, mf.size, path, e);
	mapfile_close(&mf);
	return t;
}
