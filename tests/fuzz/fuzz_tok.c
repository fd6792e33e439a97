/* fuzz_tok.c - tokenizer input: arbitrary bytes (invalid UTF-8 included) through the
 * Llama 3 BPE and Llama 2 SentencePiece encoders, with and without special tokens, and
 * back through the decoder. Needs ../shared for the vocabularies. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "core/tok.h"

static struct tok *l3, *l2;
static struct gguf *g2;

static void
unload(void)
{
	tok_free(l3);
	tok_free(l2);
	gguf_close(g2);
}

static void
load(void)
{
	static int done;
	struct err e;
	char path[4200];
	const char *s = getenv("GUARDD_SHARED") ? getenv("GUARDD_SHARED") : "../shared";

	if (done++)
		return;
	atexit(unload);
	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama3/tokenizer.json", s);
	l3 = tok_load_json(path, &e);
	snprintf(path, sizeof(path), "%s/reference/tokenizers/llama2/ggml-vocab-llama-spm.gguf", s);
	if ((g2 = gguf_open(path, &e)) != NULL)
		l2 = tok_load_gguf(g2, &e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tok *t[2];
	struct err e;

	load();
	t[0] = l3;
	t[1] = l2;
	for (int k = 0; k < 2; k++) {
		if (t[k] == NULL)
			continue;
		for (int sp = 0; sp < 2; sp++) {
			struct tokvec v = { 0 };
			struct buf b = { 0 };
			if (tok_encode(t[k], (const char *)data, size, sp, &v, &e) == 0) {
				tok_decode(t[k], v.v, v.n, &b, &e);
				/* plain Llama 3 text decodes back to itself, byte for byte */
				if (k == 0 && !sp && (b.n != size || (size && memcmp(b.p, data, size) != 0)))
					abort();
			}
			tokvec_free(&v);
			buf_free(&b);
		}
	}
	return 0;
}
