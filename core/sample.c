/* sample.c - choosing the next token: repetition penalty, then greedy or top-k, temperature
 * softmax, top-p, min-p and a draw (llama.cpp's common sampler chain, in that order). The
 * generator is splitmix64, so a seed reproduces a run exactly. */
#include "core/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cand {
	float logit;
	int32_t id;
};

struct sampler {
	struct sampler_params p;
	int n;
	uint64_t state;
	struct cand *c;
	double *w;
	float *pen;		/* penalized copy of the logits (allocated on first use) */
	uint8_t *seen;		/* per token: already penalized in this call */
};

struct sampler_params
sampler_params_default(void)
{
	return (struct sampler_params){ .temperature = 0, .top_k = 40, .top_p = 0.95f, .seed = 1,
		.min_p = 0, .repeat_penalty = 1, .repeat_last_n = 64 };
}

struct sampler *
sampler_new(const struct sampler_params *p, int n_vocab)
{
	struct sampler *s = calloc(1, sizeof(*s));

	if (s == NULL || n_vocab <= 0)
		goto fail;
	s->p = *p;
	s->n = n_vocab;
	s->state = p->seed;
	s->c = reallocarray(NULL, (size_t)n_vocab, sizeof(*s->c));
	s->w = reallocarray(NULL, (size_t)n_vocab, sizeof(*s->w));
	if (s->c == NULL || s->w == NULL)
		goto fail;
	return s;
fail:
	sampler_free(s);
	return NULL;
}

void
sampler_free(struct sampler *s)
{
	if (s != NULL) {
		free(s->c);
		free(s->w);
		free(s->pen);
		free(s->seen);
	}
	free(s);
}

int32_t
sample_greedy(const float *l, int n)
{
	int32_t best = 0;

	for (int i = 1; i < n; i++)
		if (l[i] > l[best])
			best = i;
	return best;
}

static double
next_uniform(struct sampler *s)
{
	uint64_t z = (s->state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return (double)(z >> 11) * 0x1p-53;
}

/* the candidate order: higher logit first, lower id on ties */
static int
better(const struct cand *x, const struct cand *y)
{
	return x->logit > y->logit || (x->logit == y->logit && x->id < y->id);
}

static int
by_logit(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->logit != y->logit)
		return x->logit > y->logit ? -1 : 1;
	return x->id - y->id;
}

/* Min-heap on `better` (the worst kept candidate at h[0]) */
static void
sift_down(struct cand *h, int k, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, w = i;
		if (l < k && better(&h[w], &h[l]))
			w = l;
		if (r < k && better(&h[w], &h[r]))
			w = r;
		if (w == i)
			return;
		struct cand t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

/* The k best of n logits, best first, into c: a heap of k, so O(n log k) instead of sorting
 * the whole vocabulary (almost every logit loses one comparison against the heap's worst). */
static void
select_top(struct cand *c, const float *l, int n, int k)
{
	for (int i = 0; i < k; i++)
		c[i] = (struct cand){ l[i], i };
	for (int i = k / 2 - 1; i >= 0; i--)
		sift_down(c, k, i);
	for (int i = k; i < n; i++) {
		struct cand x = { l[i], i };
		if (better(&x, &c[0])) {
			c[0] = x;
			sift_down(c, k, 0);
		}
	}
	qsort(c, (size_t)k, sizeof(*c), by_logit);
}

/* Divides positive logits (multiplies negative ones) of each distinct token of the last
 * repeat_last_n history entries by the penalty, in a copy; returns the copy, or the
 * original when nothing applies (or the copy cannot be allocated). */
static const float *
penalize(struct sampler *s, const float *logits, const int32_t *hist, size_t n_hist)
{
	float rp = s->p.repeat_penalty;

	if (!(rp > 0) || rp == 1 || hist == NULL || n_hist == 0)
		return logits;
	if (s->p.repeat_last_n > 0 && n_hist > (size_t)s->p.repeat_last_n) {
		hist += n_hist - (size_t)s->p.repeat_last_n;
		n_hist = (size_t)s->p.repeat_last_n;
	}
	if (s->pen == NULL) {
		s->pen = reallocarray(NULL, (size_t)s->n, sizeof(*s->pen));
		s->seen = calloc((size_t)s->n, 1);
		if (s->pen == NULL || s->seen == NULL) {
			free(s->pen);
			free(s->seen);
			s->pen = NULL;
			s->seen = NULL;
			return logits;
		}
	}
	memcpy(s->pen, logits, (size_t)s->n * sizeof(*s->pen));
	for (size_t i = 0; i < n_hist; i++) {
		int32_t t = hist[i];
		if (t < 0 || t >= s->n || s->seen[t])
			continue;
		s->seen[t] = 1;
		s->pen[t] = s->pen[t] > 0 ? s->pen[t] / rp : s->pen[t] * rp;
	}
	for (size_t i = 0; i < n_hist; i++)
		if (hist[i] >= 0 && hist[i] < s->n)
			s->seen[hist[i]] = 0;
	return s->pen;
}

int32_t
sampler_sample_hist(struct sampler *s, const float *logits, const int32_t *hist,
    size_t n_hist)
{
	int n = s->n, k;
	const float *l = penalize(s, logits, hist, n_hist);

	if (s->p.temperature <= 0)
		return sample_greedy(l, n);
	if (s->p.top_k > 0 && s->p.top_k < n) {
		k = s->p.top_k;
		select_top(s->c, l, n, k);
	} else {
		k = n;
		for (int i = 0; i < n; i++)
			s->c[i] = (struct cand){ l[i], i };
		qsort(s->c, (size_t)n, sizeof(*s->c), by_logit);
	}
	double sum = 0, max = s->c[0].logit;
	double *w = s->w;
	for (int i = 0; i < k; i++)
		sum += w[i] = exp((s->c[i].logit - max) / s->p.temperature);
	/* top-p: the smallest prefix whose mass reaches p */
	if (s->p.top_p > 0 && s->p.top_p < 1) {
		double acc = 0;
		for (int i = 0; i < k; i++) {
			acc += w[i] / sum;
			if (acc >= s->p.top_p) {
				k = i + 1;
				break;
			}
		}
		sum = 0;
		for (int i = 0; i < k; i++)
			sum += w[i];
	}
	/* min-p: w[0] is the best (1); the weights fall along the prefix, so the kept set is
	 * a prefix too */
	if (s->p.min_p > 0) {
		double floor = (double)s->p.min_p * w[0];
		int j = 1;
		while (j < k && w[j] >= floor)
			j++;
		if (j < k) {
			k = j;
			sum = 0;
			for (int i = 0; i < k; i++)
				sum += w[i];
		}
	}
	/* candidates of weight 0 (-inf logits: tokens a pruned head has no row for) are never
	 * picked, not even when rounding leaves r >= 0 after the last one */
	while (k > 1 && w[k - 1] <= 0)
		k--;
	double r = next_uniform(s) * sum;
	int32_t pick = s->c[k - 1].id;
	for (int i = 0; i < k; i++) {
		r -= w[i];
		if (r < 0) {
			pick = s->c[i].id;
			break;
		}
	}
	return pick;
}

int32_t
sampler_sample(struct sampler *s, const float *logits)
{
	return sampler_sample_hist(s, logits, NULL, 0);
}
