/* tok_load.c - builds a tokenizer from GGUF metadata or a Hugging Face tokenizer.json
 * (SentencePiece's tokenizer.model is read by tok_spmodel.c). */
#include "core/tok_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"

/* Llama 3's pre-tokenizer (tokenizer.json "Split" pattern; llama.cpp "llama-bpe"). */
static const char LLAMA3_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

int
tok_set_text(struct tok *t, int id, const char *p, size_t n, struct err *e)
{
	free(t->text[id]);
	if ((t->text[id] = malloc(n + 1)) == NULL)
		return err_set(e, "tokenizer: out of memory");
	memcpy(t->text[id], p, n);
	t->text[id][n] = '\0';
	t->len[id] = (uint32_t)n;
	return 0;
}

/* A normal BPE token: stored as raw bytes, decoded from its byte-level spelling. */
static int
set_bytelevel(struct tok *t, int id, const char *p, size_t n, struct err *e)
{
	char *raw = malloc(n + 1);
	size_t rn;

	if (raw == NULL)
		return err_set(e, "tokenizer: out of memory");
	if (bytelevel_decode(p, n, raw, &rn) == -1) {
		free(raw);
		return err_set(e, "token %d '%.*s': not a byte-level string", id, (int)(n > 40 ? 40 : n), p);
	}
	free(t->text[id]);
	t->text[id] = raw;
	t->len[id] = (uint32_t)rn;
	raw[rn] = '\0';
	return 0;
}

static int
add_merge(struct tok *t, const char *m, size_t n, int32_t rank, struct err *e)
{
	const char *sp = memchr(m, ' ', n);
	char a[256], b[256], ab[512];
	size_t an, bn;

	if (sp == NULL || sp == m || sp == m + n - 1 || (size_t)(sp - m) > 256 ||
	    n - (size_t)(sp - m) - 1 > 256)
		return err_set(e, "merge %d '%.*s': not two tokens", rank, (int)(n > 40 ? 40 : n), m);
	if (bytelevel_decode(m, (size_t)(sp - m), a, &an) == -1 ||
	    bytelevel_decode(sp + 1, n - (size_t)(sp - m) - 1, b, &bn) == -1)
		return err_set(e, "merge %d '%.*s': not byte-level text", rank, (int)(n > 40 ? 40 : n), m);
	int32_t ia = strmap_get(&t->vocab, a, an), ib = strmap_get(&t->vocab, b, bn);
	memcpy(ab, a, an);
	memcpy(ab + an, b, bn);
	int32_t r = strmap_get(&t->vocab, ab, an + bn);
	if (ia < 0 || ib < 0 || r < 0)
		return err_set(e, "merge %d '%.*s': token not in the vocabulary", rank,
		    (int)(n > 40 ? 40 : n), m);
	if (pairmap_put(&t->merges, ia, ib, rank, r) == -1)
		return err_set(e, "tokenizer: out of memory");
	return 0;
}

int
tok_index_vocab(struct tok *t, struct err *e)
{
	for (int i = 0; i < t->n_vocab; i++) {
		int ty = t->type[i];
		if (ty != TT_NORMAL && !(t->kind == TOK_SPM && ty == TT_USER))
			continue;
		/* first id wins on duplicate spellings */
		if (strmap_get(&t->vocab, t->text[i], t->len[i]) < 0 &&
		    strmap_put(&t->vocab, t->text[i], t->len[i], i) == -1)
			return err_set(e, "tokenizer: out of memory");
	}
	return 0;
}

static int
gguf_opt_id(const struct gguf *g, const char *key, int n, int32_t *out, struct err *e)
{
	uint32_t v;

	if (!gguf_has(g, key))
		return 0;
	if (gguf_get_u32(g, key, &v, e) == -1)
		return -1;
	if (v >= (uint32_t)n)
		return err_set(e, "%s: %s = %u is outside the vocabulary (%d tokens)", gguf_path(g),
		    key, v, n);
	*out = (int32_t)v;
	return 0;
}

struct tok *
tok_load_gguf(const struct gguf *g, struct err *e)
{
	struct tok *t = calloc(1, sizeof(*t));
	struct gguf_str model, pre;
	const struct gguf_str *toks, *merges;
	const void *types = NULL, *scores = NULL;
	size_t n, nt = 0, ns = 0, nm;
	const char *path = gguf_path(g);

	if (t == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	if (gguf_get_str(g, "tokenizer.ggml.model", &model, e) == -1)
		goto fail;
	if (model.n == 4 && memcmp(model.p, "gpt2", 4) == 0)
		t->kind = TOK_BPE;
	else if (model.n == 5 && memcmp(model.p, "llama", 5) == 0)
		t->kind = TOK_SPM;
	else {
		err_set(e, "%s: tokenizer.ggml.model '%.*s' is not supported (gpt2, llama)", path,
		    (int)(model.n > 32 ? 32 : model.n), model.p);
		goto fail;
	}
	if (gguf_get_arr_str(g, "tokenizer.ggml.tokens", &toks, &n, e) == -1)
		goto fail;
	if (n == 0 || n > (1u << 24)) {
		err_set(e, "%s: tokenizer.ggml.tokens: %zu tokens", path, n);
		goto fail;
	}
	if (tok_alloc(t, (int)n, e) == -1)
		goto fail;
	if (gguf_has(g, "tokenizer.ggml.token_type")) {
		if (gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_I32, &types, &nt, e) == -1)
			goto fail;
		if (nt != n) {
			err_set(e, "%s: tokenizer.ggml.token_type has %zu entries for %zu tokens", path, nt, n);
			goto fail;
		}
	}
	if (gguf_has(g, "tokenizer.ggml.scores")) {
		if (gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_F32, &scores, &ns, e) == -1)
			goto fail;
		if (ns != n) {
			err_set(e, "%s: tokenizer.ggml.scores has %zu entries for %zu tokens", path, ns, n);
			goto fail;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int32_t ty = TT_NORMAL;
		if (types)
			memcpy(&ty, (const char *)types + 4 * i, 4);
		if (ty < TT_NORMAL || ty > TT_BYTE)
			ty = TT_NORMAL;
		t->type[i] = ty;
		if (scores)
			memcpy(&t->score[i], (const char *)scores + 4 * i, 4);
		if (t->kind == TOK_BPE && ty == TT_NORMAL) {
			if (set_bytelevel(t, (int)i, toks[i].p, toks[i].n, e) == -1)
				goto prefixed;
		} else if (tok_set_text(t, (int)i, toks[i].p, toks[i].n, e) == -1)
			goto fail;
	}
	if (tok_index_vocab(t, e) == -1)
		goto fail;
	if (t->kind == TOK_BPE) {
		if (gguf_has(g, "tokenizer.ggml.pre")) {
			if (gguf_get_str(g, "tokenizer.ggml.pre", &pre, e) == -1)
				goto fail;
			if (!(pre.n == 9 && memcmp(pre.p, "llama-bpe", 9) == 0) &&
			    !(pre.n == 6 && memcmp(pre.p, "llama3", 6) == 0)) {
				err_set(e, "%s: tokenizer.ggml.pre '%.*s' is not supported (llama-bpe)",
				    path, (int)(pre.n > 32 ? 32 : pre.n), pre.p);
				goto fail;
			}
		}
		t->ignore_merges = 1;
		if (tok_set_regex(t, LLAMA3_REGEX, e) == -1)
			goto fail;
		if (gguf_get_arr_str(g, "tokenizer.ggml.merges", &merges, &nm, e) == -1)
			goto fail;
		if (pairmap_init(&t->merges, nm) == -1) {
			err_set(e, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < nm; i++)
			if (add_merge(t, merges[i].p, merges[i].n, (int32_t)i, e) == -1)
				goto prefixed;
	} else {
		int asp = 1;
		if (gguf_has(g, "tokenizer.ggml.add_space_prefix") &&
		    gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &asp, e) == -1)
			goto fail;
		t->add_space_prefix = asp;
	}
	if (gguf_opt_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos, e) ||
	    gguf_opt_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos, e) ||
	    gguf_opt_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk, e))
		goto fail;
	if (tok_finish(t, e) == -1)
		goto prefixed;
	return t;
prefixed:
	err_prefix(e, "%s", path);
fail:
	tok_free(t);
	return NULL;
}

static const char *
json_regex(json_t *pre)
{
	const char *type = json_string_value(json_object_get(pre, "type"));

	if (type == NULL)
		return NULL;
	if (strcmp(type, "Split") == 0)
		return json_string_value(json_object_get(json_object_get(pre, "pattern"), "Regex"));
	if (strcmp(type, "Sequence") == 0) {
		json_t *list = json_object_get(pre, "pretokenizers");
		for (size_t i = 0; i < json_array_size(list); i++) {
			const char *r = json_regex(json_array_get(list, i));
			if (r != NULL)
				return r;
		}
	}
	return NULL;
}

struct tok *
tok_load_json(const char *path, struct err *e)
{
	struct tok *t = calloc(1, sizeof(*t));
	json_error_t jerr;
	json_t *root = NULL, *model, *vocab, *merges, *added, *v;
	const char *key, *re, *type;
	int n = 0;

	if (t == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	t->kind = TOK_BPE;
	if ((root = json_load_file(path, 0, &jerr)) == NULL) {
		err_set(e, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		goto fail;
	}
	model = json_object_get(root, "model");
	type = json_string_value(json_object_get(model, "type"));
	if (type == NULL || strcmp(type, "BPE") != 0) {
		err_set(e, "%s: model.type must be \"BPE\"", path);
		goto fail;
	}
	if (json_is_true(json_object_get(model, "byte_fallback"))) {
		err_set(e, "%s: byte_fallback BPE (SentencePiece-style) tokenizer.json is not "
		    "supported; use a GGUF vocabulary", path);
		goto fail;
	}
	vocab = json_object_get(model, "vocab");
	merges = json_object_get(model, "merges");
	added = json_object_get(root, "added_tokens");
	if (!json_is_object(vocab) || !json_is_array(merges)) {
		err_set(e, "%s: model.vocab must be an object and model.merges an array", path);
		goto fail;
	}
	json_object_foreach(vocab, key, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) >= (1 << 24)) {
			err_set(e, "%s: model.vocab['%.40s']: id must be an integer in [0, 2^24)", path, key);
			goto fail;
		}
		if (json_integer_value(v) >= n)
			n = (int)json_integer_value(v) + 1;
	}
	for (size_t i = 0; i < json_array_size(added); i++) {
		json_int_t id = json_integer_value(json_object_get(json_array_get(added, i), "id"));
		if (id < 0 || id >= (1 << 24)) {
			err_set(e, "%s: added_tokens[%zu].id is out of range", path, i);
			goto fail;
		}
		if (id >= n)
			n = (int)id + 1;
	}
	if (n == 0) {
		err_set(e, "%s: empty vocabulary", path);
		goto fail;
	}
	if (tok_alloc(t, n, e) == -1)
		goto fail;
	for (int i = 0; i < n; i++)
		t->type[i] = TT_UNUSED;
	json_object_foreach(vocab, key, v) {
		int id = (int)json_integer_value(v);
		t->type[id] = TT_NORMAL;
		if (set_bytelevel(t, id, key, strlen(key), e) == -1)
			goto prefixed;
	}
	for (size_t i = 0; i < json_array_size(added); i++) {
		json_t *a = json_array_get(added, i);
		const char *c = json_string_value(json_object_get(a, "content"));
		int id = (int)json_integer_value(json_object_get(a, "id"));
		if (c == NULL) {
			err_set(e, "%s: added_tokens[%zu].content is not a string", path, i);
			goto fail;
		}
		t->type[id] = json_is_true(json_object_get(a, "special")) ? TT_CONTROL : TT_USER;
		if (tok_set_text(t, id, c, strlen(c), e) == -1)
			goto fail;
	}
	for (int i = 0; i < n; i++)
		if (t->text[i] == NULL) {
			char pad[32];
			snprintf(pad, sizeof(pad), "[PAD%d]", i);
			if (tok_set_text(t, i, pad, strlen(pad), e) == -1)
				goto fail;
		}
	if (tok_index_vocab(t, e) == -1)
		goto fail;
	if (pairmap_init(&t->merges, json_array_size(merges)) == -1) {
		err_set(e, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < json_array_size(merges); i++) {
		json_t *m = json_array_get(merges, i);
		char pair[600];
		if (json_is_string(m)) {
			if (add_merge(t, json_string_value(m), strlen(json_string_value(m)),
			    (int32_t)i, e) == -1)
				goto prefixed;
		} else if (json_is_array(m) && json_array_size(m) == 2 &&
		    json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
			int pn = snprintf(pair, sizeof(pair), "%s %s",
			    json_string_value(json_array_get(m, 0)), json_string_value(json_array_get(m, 1)));
			if (pn < 0 || (size_t)pn >= sizeof(pair) ||
			    add_merge(t, pair, (size_t)pn, (int32_t)i, e) == -1) {
				if (pn < 0 || (size_t)pn >= sizeof(pair))
					err_set(e, "merge %zu: too long", i);
				goto prefixed;
			}
		} else {
			err_set(e, "%s: model.merges[%zu]: expected \"A B\" or [\"A\", \"B\"]", path, i);
			goto fail;
		}
	}
	t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
	re = json_regex(json_object_get(root, "pre_tokenizer"));
	if (re == NULL) {
		err_set(e, "%s: pre_tokenizer has no Split regex (only Llama 3 style byte-level BPE "
		    "is supported)", path);
		goto fail;
	}
	if (tok_set_regex(t, re, e) == -1)
		goto prefixed;
	t->bos = tok_special(t, "<|begin_of_text|>");
	if (tok_finish(t, e) == -1)
		goto prefixed;
	t->bos = tok_special(t, "<|begin_of_text|>");
	t->eos = tok_special(t, "<|end_of_text|>");
	json_decref(root);
	return t;
prefixed:
	err_prefix(e, "%s", path);
fail:
	json_decref(root);
	tok_free(t);
	return NULL;
}
