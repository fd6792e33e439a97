/* sample.h - choosing the next token from logits: greedy, or temperature/top-k/top-p with a
 * seeded generator. */
#ifndef GUARDD_SAMPLE_H
#define GUARDD_SAMPLE_H

#include <stdint.h>

struct sampler;

struct sampler_params {
	float temperature;	/* <= 0: greedy */
	int top_k;		/* <= 0: no limit */
	float top_p;		/* >= 1: no limit */
	uint64_t seed;
};

struct sampler_params sampler_params_default(void);
struct sampler *sampler_new(const struct sampler_params *p, int n_vocab);
void sampler_free(struct sampler *s);
int32_t sampler_sample(struct sampler *s, const float *logits);
/* The highest logit (lowest id on ties). */
int32_t sample_greedy(const float *logits, int n);

#endif
