/* tok.c - what both tokenizers share: tables, special-token splitting, decoding. */
#include "core/tok_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n. */
static uint32_t
byte_to_cp(unsigned b)
{
	if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
		return b;
	unsigned n = 0;
	for (unsigned x = 0; x < b; x++)
		if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255)))
			n++;
	return 256 + n;
}

int
bytelevel_encode_byte(unsigned char b, char out[2])
{
	uint32_t cp = byte_to_cp(b);

	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	out[0] = (char)(0xc0 | (cp >> 6));
	out[1] = (char)(0x80 | (cp & 0x3f));
	return 2;
}

/* code point -> byte, built once for the process: concurrent first calls would otherwise
 * race on the table (a data race even when they write the same values) */
static int16_t inv[512];
static pthread_once_t inv_once = PTHREAD_ONCE_INIT;

static void
inv_init(void)
{
	for (int j = 0; j < 512; j++)
		inv[j] = -1;
	for (unsigned b = 0; b < 256; b++)
		inv[byte_to_cp(b)] = (int16_t)b;
}

int
bytelevel_decode(const char *s, size_t n, char *out, size_t *outn)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0;

	pthread_once(&inv_once, inv_init);
	while (i < n) {
		uint32_t cp;
		if (p[i] < 0x80)
			cp = p[i++];
		else if ((p[i] & 0xe0) == 0xc0 && i + 1 < n) {
			cp = ((uint32_t)(p[i] & 0x1f) << 6) | (p[i + 1] & 0x3f);
			i += 2;
		} else
			return -1;
		if (cp >= 512 || inv[cp] < 0)
			return -1;
		out[o++] = (char)inv[cp];
	}
	*outn = o;
	return 0;
}

int
tok_alloc(struct tok *t, int n, struct err *e)
{
	t->n_vocab = n;
	t->text = calloc((size_t)n, sizeof(*t->text));
	t->len = calloc((size_t)n, sizeof(*t->len));
	t->score = calloc((size_t)n, sizeof(*t->score));
	t->type = calloc((size_t)n, sizeof(*t->type));
	if (!t->text || !t->len || !t->score || !t->type || strmap_init(&t->vocab, (size_t)n))
		return err_set(e, "tokenizer: out of memory for %d tokens", n);
	t->bos = t->eos = t->unk = -1;
	return 0;
}

static const struct tok *sort_tok;

static int
cmp_special(const void *a, const void *b)
{
	uint32_t la = sort_tok->len[*(const int32_t *)a], lb = sort_tok->len[*(const int32_t *)b];

	if (la != lb)
		return la > lb ? -1 : 1;
	return *(const int32_t *)a - *(const int32_t *)b;
}

int
tok_finish(struct tok *t, struct err *e)
{
	char name[8];

	t->specials = calloc((size_t)t->n_vocab, sizeof(*t->specials));
	if (t->specials == NULL)
		return err_set(e, "tokenizer: out of memory");
	for (int i = 0; i < t->n_vocab; i++)
		if ((t->type[i] == TT_CONTROL || t->type[i] == TT_USER) && t->len[i] > 0)
			t->specials[t->n_specials++] = i;
	sort_tok = t;		/* qsort has no context argument in C11 */
	qsort(t->specials, t->n_specials, sizeof(*t->specials), cmp_special);
	for (int b = 0; b < 256; b++) {
		if (t->kind == TOK_SPM) {
			snprintf(name, sizeof(name), "<0x%02X>", b);
			t->byte_id[b] = -1;
			for (int i = 0; i < t->n_vocab && t->byte_id[b] < 0; i++)
				if (t->type[i] == TT_BYTE && t->len[i] == 6 && memcmp(t->text[i], name, 6) == 0)
					t->byte_id[b] = i;
		} else {
			char c = (char)b;
			t->byte_id[b] = strmap_get(&t->vocab, &c, 1);
		}
		if (t->byte_id[b] < 0 && t->kind == TOK_BPE)
			return err_set(e, "tokenizer: no token for byte 0x%02x", b);
	}
	return 0;
}

int
tok_set_regex(struct tok *t, const char *pattern, struct err *e)
{
	int ec;
	PCRE2_SIZE eo;

	t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
	    &ec, &eo, NULL);
	if (t->re == NULL) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(ec, msg, sizeof(msg));
		return err_set(e, "tokenizer: pre-tokenizer regex, offset %zu: %s", (size_t)eo,
		    (char *)msg);
	}
	pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);	/* optional: falls back to the interpreter */
	return 0;
}

void
tok_free(struct tok *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < t->n_vocab; i++)
		free(t->text[i]);
	free(t->text);
	free(t->len);
	free(t->score);
	free(t->type);
	free(t->specials);
	strmap_free(&t->vocab);
	pairmap_free(&t->merges);
	if (t->re)
		pcre2_code_free(t->re);
	free(t);
}

static int
encode_plain(const struct tok *t, const char *s, size_t n, int first, struct tokvec *out,
    struct err *e)
{
	if (t->kind == TOK_BPE)
		return bpe_encode_text(t, s, n, out, e);
	return spm_encode_text(t, s, n, first && t->add_space_prefix, out, e);
}

int
tok_encode(const struct tok *t, const char *text, size_t len, int parse_special,
    struct tokvec *out, struct err *e)
{
	size_t ok = utf8_valid_prefix(text, len), start = 0;
	int after_special = 1;

	if (ok != len)
		return err_set(e, "invalid UTF-8 at byte offset %zu", ok);
	if (!parse_special)
		return len ? encode_plain(t, text, len, 1, out, e) : 0;
	for (size_t i = 0; i < len;) {
		int32_t hit = -1;
		for (size_t k = 0; k < t->n_specials; k++) {
			int32_t id = t->specials[k];
			if (t->len[id] <= len - i && memcmp(text + i, t->text[id], t->len[id]) == 0) {
				hit = id;
				break;
			}
		}
		if (hit < 0) {
			i++;
			continue;
		}
		if (i > start && encode_plain(t, text + start, i - start, after_special, out, e))
			return -1;
		if (tokvec_push(out, hit) == -1)
			return err_set(e, "out of memory");
		after_special = 1;
		i += t->len[hit];
		start = i;
	}
	if (len > start && encode_plain(t, text + start, len - start, after_special, out, e))
		return -1;
	return 0;
}

int
tok_decode(const struct tok *t, const int32_t *ids, size_t n, struct buf *out, struct err *e)
{
	size_t start = out->n;

	for (size_t i = 0; i < n; i++) {
		int32_t id = ids[i];
		if (id < 0 || id >= t->n_vocab)
			return err_set(e, "token id %d outside the vocabulary (0..%d)", id,
			    t->n_vocab - 1);
		if (t->kind == TOK_BPE) {
			if (buf_add(out, t->text[id], t->len[id]) == -1)
				return err_set(e, "out of memory");
			continue;
		}
		/* SentencePiece: byte pieces are raw bytes, U+2581 is a space */
		if (t->type[id] == TT_BYTE) {
			for (int b = 0; b < 256; b++)
				if (t->byte_id[b] == id) {
					char c = (char)b;
					buf_add(out, &c, 1);
				}
			continue;
		}
		if (t->type[id] == TT_CONTROL || t->type[id] == TT_UNKNOWN) {
			if (t->type[id] == TT_UNKNOWN)
				buf_add(out, t->text[id], t->len[id]);
			continue;
		}
		const char *p = t->text[id];
		for (uint32_t j = 0; j < t->len[id];) {
			if (j + 3 <= t->len[id] && memcmp(p + j, "\xe2\x96\x81", 3) == 0) {
				buf_add(out, " ", 1);
				j += 3;
			} else {
				buf_add(out, p + j, 1);
				j++;
			}
		}
	}
	/* SentencePiece decoding drops the dummy prefix space */
	if (t->kind == TOK_SPM && t->add_space_prefix && out->n > start && out->p[start] == ' ') {
		memmove(out->p + start, out->p + start + 1, out->n - start - 1);
		out->n--;
		out->p[out->n] = '\0';
	}
	return 0;
}

enum tok_kind tok_kind(const struct tok *t) { return t->kind; }
int tok_n_vocab(const struct tok *t) { return t->n_vocab; }
int32_t tok_bos(const struct tok *t) { return t->bos; }
int32_t tok_eos(const struct tok *t) { return t->eos; }

int32_t
tok_special(const struct tok *t, const char *text)
{
	size_t n = strlen(text);

	for (size_t k = 0; k < t->n_specials; k++) {
		int32_t id = t->specials[k];
		if (t->len[id] == n && memcmp(t->text[id], text, n) == 0)
			return id;
	}
	return -1;
}

int
tok_is_special(const struct tok *t, int32_t id)
{
	return id >= 0 && id < t->n_vocab && (t->type[id] == TT_CONTROL || t->type[id] == TT_USER);
}
