/* tok_bpe.c - Llama 3 byte-level BPE: regex pre-tokenization, then merges by rank. */
#include "core/tok_int.h"

#include <stdlib.h>
#include <string.h>

struct cand {
	int32_t rank, pos, left, right;
};

struct work {
	int32_t *id, *prev, *next;
	struct cand *heap;
	size_t cap, nheap;
};

static int
cand_less(const struct cand *a, const struct cand *b)
{
	return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void
heap_push(struct work *w, struct cand c)
{
	size_t i = w->nheap++;

	w->heap[i] = c;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!cand_less(&w->heap[i], &w->heap[p]))
			break;
		struct cand t = w->heap[i];
		w->heap[i] = w->heap[p];
		w->heap[p] = t;
		i = p;
	}
}

static struct cand
heap_pop(struct work *w)
{
	struct cand top = w->heap[0];
	size_t i = 0;

	w->heap[0] = w->heap[--w->nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < w->nheap && cand_less(&w->heap[l], &w->heap[m]))
			m = l;
		if (r < w->nheap && cand_less(&w->heap[r], &w->heap[m]))
			m = r;
		if (m == i)
			break;
		struct cand t = w->heap[i];
		w->heap[i] = w->heap[m];
		w->heap[m] = t;
		i = m;
	}
	return top;
}

static void
try_pair(const struct tok *t, struct work *w, int32_t pos)
{
	int32_t nx, rank, res;

	if (pos < 0 || (nx = w->next[pos]) < 0)
		return;
	if (pairmap_get(&t->merges, w->id[pos], w->id[nx], &rank, &res))
		heap_push(w, (struct cand){ rank, pos, w->id[pos], w->id[nx] });
}

static int
work_reserve(struct work *w, size_t n)
{
	if (n <= w->cap)
		return 0;
	free(w->id);
	free(w->prev);
	free(w->next);
	free(w->heap);
	w->cap = n;
	w->id = reallocarray(NULL, n, sizeof(int32_t));
	w->prev = reallocarray(NULL, n, sizeof(int32_t));
	w->next = reallocarray(NULL, n, sizeof(int32_t));
	/* each merge pushes at most two candidates */
	w->heap = n > SIZE_MAX / 3 ? NULL : reallocarray(NULL, 3 * n, sizeof(struct cand));
	return (w->id && w->prev && w->next && w->heap) ? 0 : -1;
}

static int
bpe_piece(const struct tok *t, struct work *w, const char *s, size_t n, struct tokvec *out)
{
	int32_t whole = t->ignore_merges ? strmap_get(&t->vocab, s, n) : -1;

	/* ignore_merges: a piece that is itself a token is emitted as is */
	if (whole >= 0)
		return tokvec_push(out, whole);
	if (work_reserve(w, n) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		w->id[i] = t->byte_id[(unsigned char)s[i]];
		w->prev[i] = (int32_t)i - 1;
		w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
	}
	w->nheap = 0;
	for (size_t i = 0; i + 1 < n; i++)
		try_pair(t, w, (int32_t)i);
	while (w->nheap > 0) {
		struct cand c = heap_pop(w);
		int32_t nx = w->next[c.pos], rank, res;
		/* stale: one side was merged away or changed since this candidate was pushed */
		if (w->id[c.pos] != c.left || nx < 0 || w->id[nx] != c.right)
			continue;
		if (!pairmap_get(&t->merges, c.left, c.right, &rank, &res))
			continue;
		w->id[c.pos] = res;
		w->next[c.pos] = w->next[nx];
		if (w->next[nx] >= 0)
			w->prev[w->next[nx]] = c.pos;
		w->id[nx] = -1;
		try_pair(t, w, w->prev[c.pos]);
		try_pair(t, w, c.pos);
	}
	for (int32_t i = 0; i >= 0; i = w->next[i])
		if (tokvec_push(out, w->id[i]) == -1)
			return -1;
	return 0;
}

int
bpe_encode_text(const struct tok *t, const char *s, size_t n, struct tokvec *out, struct err *e)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
	struct work w = { 0 };
	size_t pos = 0;
	int rc = -1;

	if (md == NULL)
		return err_set(e, "out of memory");
	while (pos < n) {
		int m = pcre2_match(t->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
		size_t beg, end;
		if (m == PCRE2_ERROR_NOMATCH) {
			beg = end = n;
		} else if (m < 0) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(m, msg, sizeof(msg));
			err_set(e, "pre-tokenizer at byte %zu: %s", pos, (char *)msg);
			goto out;
		} else {
			PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
			beg = ov[0];
			end = ov[1];
		}
		/* "isolated" split: text between matches is a piece of its own */
		if (beg > pos && bpe_piece(t, &w, s + pos, beg - pos, out) == -1)
			goto oom;
		if (end > beg && bpe_piece(t, &w, s + beg, end - beg, out) == -1)
			goto oom;
		if (end == beg) {	/* empty match: step over one character */
			if (beg >= n)
				break;
			size_t step = (size_t)utf8_len((unsigned char)s[beg]);
			if (bpe_piece(t, &w, s + beg, step, out) == -1)
				goto oom;
			end = beg + step;
		}
		pos = end;
	}
	rc = 0;
	goto out;
oom:
	err_set(e, "out of memory");
out:
	pcre2_match_data_free(md);
	free(w.id);
	free(w.prev);
	free(w.next);
	free(w.heap);
	return rc;
}
