/* tok_int.h - the tokenizer's representation, shared by its loaders and encoders. */
#ifndef GUARDD_TOK_INT_H
#define GUARDD_TOK_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "util/strmap.h"
#include "core/tok.h"

/* GGUF token types */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

struct tok {
	enum tok_kind kind;
	int n_vocab;
	char **text;		/* per id: BPE raw bytes, SPM piece text (with U+2581) */
	uint32_t *len;
	float *score;		/* SPM */
	int32_t *type;
	struct strmap vocab;	/* text -> id (normal pieces; specials too for BPE) */
	struct pairmap merges;	/* BPE */
	int32_t *specials;	/* ids of control/user-defined tokens, longest text first */
	size_t n_specials;
	pcre2_code *re;		/* BPE pre-tokenizer */
	int32_t byte_id[256];	/* SPM byte fallback, BPE single bytes */
	int32_t bos, eos, unk;
	int add_space_prefix;
	int ignore_merges;	/* BPE: a piece that is a token is not split */
};

/* Shared by the loaders: allocate per-id tables, then finish (specials, byte ids). */
int tok_alloc(struct tok *t, int n, struct err *e);
int tok_finish(struct tok *t, struct err *e);
int tok_set_regex(struct tok *t, const char *pattern, struct err *e);
/* Sets id's text to a copy of n bytes (tok_load.c). */
int tok_set_text(struct tok *t, int id, const char *p, size_t n, struct err *e);
/* Fills the text -> id map from the normal (and, for SentencePiece, user-defined) pieces;
 * the first id wins on duplicate spellings (tok_load.c). */
int tok_index_vocab(struct tok *t, struct err *e);

int bpe_encode_text(const struct tok *t, const char *s, size_t n, struct tokvec *out,
    struct err *e);
int spm_encode_text(const struct tok *t, const char *s, size_t n, int prefix,
    struct tokvec *out, struct err *e);

/* GPT-2 byte-level string (UTF-8 of mapped code points) to raw bytes; -1 if not byte-level. */
int bytelevel_decode(const char *s, size_t n, char *out, size_t *outn);
int bytelevel_encode_byte(unsigned char b, char out[2]);

#endif
