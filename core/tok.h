/* tok.h - tokenizers: Llama 3 byte-level BPE and Llama 2 SentencePiece BPE. */
#ifndef GUARDD_TOK_H
#define GUARDD_TOK_H

#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"
#include "util/err.h"

struct tok;
struct gguf;

enum tok_kind { TOK_BPE, TOK_SPM };

/* From a GGUF's tokenizer.ggml.* keys ("gpt2" = byte-level BPE, "llama" = SentencePiece). */
struct tok *tok_load_gguf(const struct gguf *g, struct err *e);
/* From a Hugging Face tokenizer.json (byte-level BPE). */
struct tok *tok_load_json(const char *path, struct err *e);
/* From a SentencePiece model file (tokenizer.model as Meta ships Llama 2: a protobuf of
 * pieces, scores and types); errors name the file and the byte offset. */
struct tok *tok_load_spmodel(const char *path, struct err *e);
struct tok *tok_parse_spmodel(const void *data, size_t len, const char *name, struct err *e);
void tok_free(struct tok *t);

/* Appends the ids of len bytes of UTF-8 text to out; no BOS is added. Special-token text is
 * ordinary text unless parse_special is set. Invalid UTF-8 is an error naming the offset. */
int tok_encode(const struct tok *t, const char *text, size_t len, int parse_special,
    struct tokvec *out, struct err *e);
/* Appends the bytes of ids to out (special tokens as their text). */
int tok_decode(const struct tok *t, const int32_t *ids, size_t n, struct buf *out,
    struct err *e);

enum tok_kind tok_kind(const struct tok *t);
int tok_n_vocab(const struct tok *t);
/* The id of a special (control or user-defined) token by its text, or -1. */
int32_t tok_special(const struct tok *t, const char *text);
int tok_is_special(const struct tok *t, int32_t id);
int32_t tok_bos(const struct tok *t);
int32_t tok_eos(const struct tok *t);

#endif
