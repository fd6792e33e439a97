/* mllama_snap.c - the image side of a KV snapshot (ctx_snapshot_save_images): a prefix whose
 * positions attend to an image (Llama Guard 3 11B-Vision's policy prefix holds <|image|>
 * after its first header) is saved with the images its <|image|> tokens took (their
 * cross-attention keys and values, exact floats) and each position's image range, so that
 * restoring it is the same as attaching the images and evaluating the prefix again, without
 * the vision tower. */
#include "core/mllama_int.h"

#include <stdlib.h>
#include <string.h>

struct mllama_snap {
	int n;			/* positions */
	int n_img, n_cross, kv_dim;
	int *off;		/* (n_img + 1) key rows before image i */
	float *k, *v;		/* [cross layer][off[n_img]][kv_dim] */
	int *lo, *hi, *cnt;	/* per position, as struct xstate's */
};

void
mllama_snap_free(struct mllama_snap *s)
{
	if (s == NULL)
		return;
	free(s->off);
	free(s->k);
	free(s->v);
	free(s->lo);
	free(s->hi);
	free(s->cnt);
	free(s);
}

size_t
mllama_snap_bytes(const struct mllama_snap *s)
{
	if (s == NULL)
		return 0;
	return sizeof(*s) + (size_t)(s->n_img + 1) * sizeof(int) + 3 * (size_t)s->n * sizeof(int) +
	    2 * (size_t)s->n_cross * (size_t)s->off[s->n_img] * (size_t)s->kv_dim * sizeof(float);
}

int
mllama_snap_save(const struct ctx *c, int seq, int n, struct mllama_snap **out, struct err *e)
{
	const struct xstate *X = c->xs;
	struct mllama_snap *s;

	*out = NULL;
	if (X == NULL || n <= 0 || !mllama_seq_sees_image(c, seq, 0, n))
		return 0;
	const struct xseq *S = &X->seq[seq];
	size_t base = (size_t)seq * (size_t)c->p.n_ctx;
	/* the images taken by the <|image|> tokens among the n positions; one attached but not
	 * yet taken stays out, as in ctx_seq_copy */
	int keep = X->cnt[base + (size_t)n - 1];
	if (keep > S->n_img)
		return err_set(e, "snapshot: sequence %d: %d images taken, %d attached", seq, keep,
		    S->n_img);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return err_set(e, "snapshot: out of memory");
	s->n = n;
	s->n_img = keep;
	s->n_cross = c->m->mm->n_cross;
	s->kv_dim = c->kv_dim;
	size_t rows = (size_t)S->off[keep], per = rows * (size_t)c->kv_dim;
	size_t fl = (size_t)s->n_cross * per * sizeof(float);
	s->off = malloc((size_t)(keep + 1) * sizeof(int));
	s->k = malloc(fl ? fl : 1);
	s->v = malloc(fl ? fl : 1);
	s->lo = malloc((size_t)n * sizeof(int));
	s->hi = malloc((size_t)n * sizeof(int));
	s->cnt = malloc((size_t)n * sizeof(int));
	if (s->off == NULL || s->k == NULL || s->v == NULL || s->lo == NULL || s->hi == NULL ||
	    s->cnt == NULL) {
		mllama_snap_free(s);
		return err_set(e, "snapshot: out of memory (image keys: %zu MiB)", 2 * fl >> 20);
	}
	memcpy(s->off, S->off, (size_t)(keep + 1) * sizeof(int));
	for (int l = 0; l < s->n_cross; l++) {
		memcpy(s->k + (size_t)l * per, S->k[l], per * sizeof(float));
		memcpy(s->v + (size_t)l * per, S->v[l], per * sizeof(float));
	}
	memcpy(s->lo, X->lo + base, (size_t)n * sizeof(int));
	memcpy(s->hi, X->hi + base, (size_t)n * sizeof(int));
	memcpy(s->cnt, X->cnt + base, (size_t)n * sizeof(int));
	*out = s;
	return 0;
}

int
mllama_snap_restore(struct ctx *c, int seq, const struct mllama_snap *s, struct err *e)
{
	struct xstate *X = c->xs;

	if (X == NULL || s->n_cross != c->m->mm->n_cross || s->kv_dim != c->kv_dim)
		return err_set(e, "snapshot restore: the images are of another model");
	if (s->n > c->p.n_ctx)
		return err_set(e, "snapshot restore: %d positions, the context holds %d", s->n,
		    c->p.n_ctx);
	struct xseq *S = &X->seq[seq];
	size_t per = (size_t)s->off[s->n_img] * (size_t)s->kv_dim;
	S->n_img = 0;
	for (int i = 0; i < s->n_img; i++) {
		size_t rows = (size_t)(s->off[i + 1] - s->off[i]);
		if (mllama_xseq_grow(c, S, rows, e) == -1) {
			S->n_img = 0;
			return -1;
		}
		size_t o = (size_t)s->off[i] * (size_t)s->kv_dim;
		for (int l = 0; l < s->n_cross; l++) {
			memcpy(S->k[l] + o, s->k + (size_t)l * per + o, rows * (size_t)s->kv_dim *
			    sizeof(float));
			memcpy(S->v[l] + o, s->v + (size_t)l * per + o, rows * (size_t)s->kv_dim *
			    sizeof(float));
		}
		S->off[i + 1] = s->off[i + 1];
		S->n_img++;
	}
	size_t base = (size_t)seq * (size_t)c->p.n_ctx;
	memcpy(X->lo + base, s->lo, (size_t)s->n * sizeof(int));
	memcpy(X->hi + base, s->hi, (size_t)s->n * sizeof(int));
	memcpy(X->cnt + base, s->cnt, (size_t)s->n * sizeof(int));
	return 0;
}
