/* sample.h - choosing the next token from logits: greedy, or temperature/top-k/top-p with a
 * seeded generator. */
#ifndef GUARDD_SAMPLE_H
#define GUARDD_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

struct sampler;

struct sampler_params {
	float temperature;	/* <= 0: greedy */
	int top_k;		/* <= 0: no limit */
	float top_p;		/* >= 1: no limit */
	uint64_t seed;
	float min_p;		/* <= 0: no limit; else drop tokens with p < min_p * p(best) */
	float repeat_penalty;	/* <= 0 or 1: none; else llama.cpp/CTRL style: a logit of a token
				   in the recent history is divided by it (multiplied if < 0) */
	int repeat_last_n;	/* history length the penalty looks at; 0: the whole history */
};

struct sampler_params sampler_params_default(void);
struct sampler *sampler_new(const struct sampler_params *p, int n_vocab);
void sampler_free(struct sampler *s);
int32_t sampler_sample(struct sampler *s, const float *logits);
/* The same with the tokens generated so far (for the repetition penalty; it applies in
 * greedy mode too). logits are not modified. */
int32_t sampler_sample_hist(struct sampler *s, const float *logits, const int32_t *hist,
    size_t n_hist);
/* The highest logit (lowest id on ties). */
int32_t sample_greedy(const float *logits, int n);

#endif
