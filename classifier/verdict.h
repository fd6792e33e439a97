/* verdict.h - reading Llama Guard's answer, applying the policy, reporting the result. */
#ifndef GUARDD_VERDICT_H
#define GUARDD_VERDICT_H

#include <stddef.h>
#include "policy/policy.h"

struct json_t;

enum decision { DECISION_ALLOW, DECISION_FLAG, DECISION_BLOCK, DECISION_ERROR };

#define VERDICT_MAX_CODES 32
#define VERDICT_MAX_SPOOF 8

struct verdict {
	enum role role;
	enum decision decision;
	int flagged;			/* decision is flag or block, or an error with on_error block */
	double unsafe_score;		/* P(unsafe) after "\n\n", over the full vocabulary */
	char codes[VERDICT_MAX_CODES][8];	/* categories that triggered */
	int n_codes;
	char model_codes[VERDICT_MAX_CODES][8];	/* categories the model named */
	int n_model_codes;
	double *cat_scores;		/* per policy category: P(listed first | "unsafe\nS"); NaN
					   where not computed or excluded */
	int have_cat_scores;
	int spoof;
	const char *spoof_reasons[VERDICT_MAX_SPOOF];
	int n_spoof;
	char raw[256];			/* the model's answer after its leading "\n\n" */
	char error[256];		/* empty unless decision is DECISION_ERROR */
	int tokens_evaluated, tokens_cached;
	double ms_prompt, ms_prefill, ms_decode, ms_total;
};

enum parse_result { PARSE_SAFE, PARSE_UNSAFE, PARSE_MALFORMED };

/* Parses "safe" or "unsafe\nS1,S10" (surrounding white space ignored, codes split on commas
 * and trimmed). Fills codes for PARSE_UNSAFE. */
enum parse_result verdict_parse(const char *text, char codes[][8], int max, int *n);

/* Applies the policy to a parsed answer: codes must be shown for the role; a code triggers
 * when unsafe_score reaches its threshold; the decision is the strongest triggered action
 * (and the structure-spoof action). Malformed answers and unknown codes are errors. */
void verdict_decide(struct verdict *v, const struct policy *p, enum parse_result pr,
    char codes[][8], int n);
/* Marks an error and applies on_error. */
void verdict_fail(struct verdict *v, const struct policy *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *decision_name(enum decision d);
/* A new JSON object (jansson) with the verdict's fields. */
struct json_t *verdict_to_json(const struct verdict *v, const struct policy *p,
    const char *model);
void verdict_free(struct verdict *v);

#endif
