/* tok_spm.c - Llama 2 SentencePiece BPE: dummy-prefix space, highest-score merges first,
 * byte fallback for characters that are not pieces. */
#include "core/tok_int.h"

#include <stdlib.h>
#include <string.h>

struct sym {
	uint32_t off, n;	/* into the escaped text; n == 0 once merged away */
	int32_t prev, next;
};

struct bigram {
	float score;
	int32_t left, right;
	uint32_t size;
};

struct spm_work {
	struct sym *sym;
	struct bigram *heap;
	size_t nheap;
	const char *text;
};

static int
bigram_better(const struct bigram *a, const struct bigram *b)
{
	/* higher score first; on a tie the leftmost pair (sentencepiece, llama.cpp) */
	return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void
push(struct spm_work *w, struct bigram g)
{
	size_t i = w->nheap++;

	w->heap[i] = g;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!bigram_better(&w->heap[i], &w->heap[p]))
			break;
		struct bigram t = w->heap[i];
		w->heap[i] = w->heap[p];
		w->heap[p] = t;
		i = p;
	}
}

static struct bigram
pop(struct spm_work *w)
{
	struct bigram top = w->heap[0];
	size_t i = 0;

	w->heap[0] = w->heap[--w->nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < w->nheap && bigram_better(&w->heap[l], &w->heap[m]))
			m = l;
		if (r < w->nheap && bigram_better(&w->heap[r], &w->heap[m]))
			m = r;
		if (m == i)
			break;
		struct bigram t = w->heap[i];
		w->heap[i] = w->heap[m];
		w->heap[m] = t;
		i = m;
	}
	return top;
}

static void
try_bigram(const struct tok *t, struct spm_work *w, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return;
	uint32_t size = w->sym[l].n + w->sym[r].n;
	int32_t id = strmap_get(&t->vocab, w->text + w->sym[l].off, size);
	if (id < 0)
		return;
	push(w, (struct bigram){ t->score[id], l, r, size });
}

int
spm_encode_text(const struct tok *t, const char *s, size_t n, int prefix, struct tokvec *out,
    struct err *e)
{
	struct buf esc = { 0 };
	struct spm_work w = { 0 };
	size_t nsym = 0;
	int rc = -1;

	/* the normalizer: optional dummy prefix, then every space becomes U+2581 */
	if (prefix && buf_add(&esc, "\xe2\x96\x81", 3) == -1)
		goto oom;
	for (size_t i = 0; i < n; i++)
		if (buf_add(&esc, s[i] == ' ' ? "\xe2\x96\x81" : s + i, s[i] == ' ' ? 3 : 1) == -1)
			goto oom;
	if (esc.n == 0)
		return 0;
	w.text = esc.p;
	w.sym = reallocarray(NULL, esc.n, sizeof(*w.sym));
	w.heap = esc.n > SIZE_MAX / 3 ? NULL : reallocarray(NULL, 3 * esc.n, sizeof(*w.heap));
	if (w.sym == NULL || w.heap == NULL)
		goto oom;
	for (size_t i = 0; i < esc.n;) {
		uint32_t len = (uint32_t)utf8_len((unsigned char)esc.p[i]);
		if (len > esc.n - i)
			len = (uint32_t)(esc.n - i);
		w.sym[nsym] = (struct sym){ (uint32_t)i, len, (int32_t)nsym - 1, -1 };
		if (nsym > 0)
			w.sym[nsym - 1].next = (int32_t)nsym;
		nsym++;
		i += len;
	}
	for (size_t i = 1; i < nsym; i++)
		try_bigram(t, &w, (int32_t)i - 1, (int32_t)i);
	while (w.nheap > 0) {
		struct bigram g = pop(&w);
		struct sym *l = &w.sym[g.left], *r = &w.sym[g.right];
		if (l->n == 0 || r->n == 0 || l->n + r->n != g.size || l->next != g.right)
			continue;
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			w.sym[r->next].prev = g.left;
		try_bigram(t, &w, l->prev, g.left);
		try_bigram(t, &w, g.left, l->next);
	}
	for (int32_t i = 0; i >= 0; i = w.sym[i].next) {
		const char *p = esc.p + w.sym[i].off;
		int32_t id = strmap_get(&t->vocab, p, w.sym[i].n);
		if (id >= 0) {
			if (tokvec_push(out, id) == -1)
				goto oom;
			continue;
		}
		for (uint32_t j = 0; j < w.sym[i].n; j++) {
			int32_t b = t->byte_id[(unsigned char)p[j]];
			if (b < 0)
				b = t->unk;
			if (b < 0) {
				err_set(e, "tokenizer: no byte fallback and no unknown token");
				goto out;
			}
			if (tokvec_push(out, b) == -1)
				goto oom;
			if (b == t->unk)
				break;	/* one <unk> per character, as without byte fallback */
		}
	}
	rc = 0;
	goto out;
oom:
	err_set(e, "out of memory");
out:
	buf_free(&esc);
	free(w.sym);
	free(w.heap);
	return rc;
}
