/* sample.c - greedy and stochastic sampling; the generator is splitmix64, so a seed
 * reproduces a run exactly. */
#include "core/sample.h"

#include <math.h>
#include <stdlib.h>

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
};

struct sampler_params
sampler_params_default(void)
{
	return (struct sampler_params){ .temperature = 0, .top_k = 40, .top_p = 0.95f, .seed = 1 };
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

static int
by_logit(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->logit != y->logit)
		return x->logit > y->logit ? -1 : 1;
	return x->id - y->id;
}

int32_t
sampler_sample(struct sampler *s, const float *logits)
{
	int n = s->n, k;

	if (s->p.temperature <= 0)
		return sample_greedy(logits, n);
	for (int i = 0; i < n; i++)
		s->c[i] = (struct cand){ logits[i], i };
	qsort(s->c, (size_t)n, sizeof(*s->c), by_logit);
	k = s->p.top_k > 0 && s->p.top_k < n ? s->p.top_k : n;
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
