/* fuzz_spmodel.c - bytes as a SentencePiece tokenizer.model: the protobuf reader, and when a
 * vocabulary loads, its tail bytes as text through the encoder (plain and special-parsed)
 * and back through the decoder. Every refusal must name the file (else abort). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tok.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = { "" };
	struct tok *t = tok_parse_spmodel(data, size, "fuzz.model", &e);

	if (t == NULL) {
		if (strncmp(e.msg, "fuzz.model: ", 12) != 0)
			abort();
		return 0;
	}
	if (tok_n_vocab(t) <= 0)
		abort();
	/* the last bytes of the input as text: whatever the vocabulary, encoding must hold */
	size_t n = size < 64 ? size : 64;
	for (int sp = 0; sp < 2; sp++) {
		struct tokvec v = { 0 };
		struct buf b = { 0 };
		if (tok_encode(t, (const char *)data + size - n, n, sp, &v, &e) == 0) {
			for (size_t i = 0; i < v.n; i++)
				if (v.v[i] < 0 || v.v[i] >= tok_n_vocab(t))
					abort();
			tok_decode(t, v.v, v.n, &b, &e);
		}
		tokvec_free(&v);
		buf_free(&b);
	}
	tok_free(t);
	return 0;
}
