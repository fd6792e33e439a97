/* verdict.c - answer parsing, the policy decision and the JSON report. */
#include "classifier/verdict.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
decision_name(enum decision d)
{
	static const char *const n[] = { "allow", "flag", "block", "error" };

	return n[d];
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

enum parse_result
verdict_parse(const char *text, char codes[][8], int max, int *n)
{
	size_t a = 0, b = strlen(text);

	*n = 0;
	while (a < b && is_space(text[a]))
		a++;
	while (b > a && is_space(text[b - 1]))
		b--;
	if (b - a == 4 && memcmp(text + a, "safe", 4) == 0)
		return PARSE_SAFE;
	if (b - a < 7 || memcmp(text + a, "unsafe\n", 7) != 0)
		return PARSE_MALFORMED;
	const char *p = text + a + 7, *end = text + b;
	if (memchr(p, '\n', (size_t)(end - p)) != NULL)
		return PARSE_MALFORMED;	/* exactly two lines */
	while (p <= end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *q = comma ? comma : end, *s = p;
		while (s < q && is_space(*s))
			s++;
		const char *t = q;
		while (t > s && is_space(t[-1]))
			t--;
		size_t len = (size_t)(t - s);
		if (len < 2 || len > 4 || s[0] != 'S' || s[1] < '1' || s[1] > '9')
			return PARSE_MALFORMED;
		for (size_t i = 2; i < len; i++)
			if (s[i] < '0' || s[i] > '9')
				return PARSE_MALFORMED;
		if (*n == max)
			return PARSE_MALFORMED;
		memcpy(codes[*n], s, len);
		codes[*n][len] = '\0';
		(*n)++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return *n > 0 ? PARSE_UNSAFE : PARSE_MALFORMED;
}

void
verdict_fail(struct verdict *v, const struct policy *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->error, sizeof(v->error), fmt, ap);
	va_end(ap);
	v->decision = DECISION_ERROR;
	v->n_codes = 0;
	/* fail closed unless the policy says otherwise, for the direction being guarded: a
	 * chat may let a failed check of its user's request through yet hold back an answer */
	v->flagged = policy_on_error_for(p, v->role) == ACTION_BLOCK;
}

void
verdict_decide(struct verdict *v, const struct policy *p, enum parse_result pr, char codes[][8],
    int n)
{
	enum action act = ACTION_ALLOW;

	v->n_codes = 0;
	v->n_model_codes = 0;
	if (pr == PARSE_MALFORMED) {
		verdict_fail(v, p, "the model's answer is not 'safe' or 'unsafe' and categories");
		return;
	}
	for (int i = 0; i < n; i++) {
		int k = policy_find(p, codes[i]);
		memcpy(v->model_codes[v->n_model_codes++], codes[i], 8);
		if (k < 0 || policy_category(p, (size_t)k)->exclude[v->role]) {
			verdict_fail(v, p, "the model named %s, which the policy does not show for %s "
			    "messages", codes[i], role_name(v->role));
			return;
		}
		const struct policy_category *c = policy_category(p, (size_t)k);
		if (v->unsafe_score >= c->threshold[v->role]) {
			int dup = 0;
			for (int j = 0; j < v->n_codes; j++)
				dup |= strcmp(v->codes[j], codes[i]) == 0;
			if (!dup)
				memcpy(v->codes[v->n_codes++], codes[i], 8);
			if (c->action[v->role] > act)
				act = c->action[v->role];
		}
	}
	if (v->spoof && policy_spoof_action(p) > act)
		act = policy_spoof_action(p);
	v->decision = act == ACTION_BLOCK ? DECISION_BLOCK : act == ACTION_FLAG ? DECISION_FLAG :
	    DECISION_ALLOW;
	v->flagged = v->decision != DECISION_ALLOW;
}

json_t *
verdict_to_json(const struct verdict *v, const struct policy *p, const char *model)
{
	json_t *o = json_object(), *cats = json_array(), *mc = json_array(), *sc = json_object();
	json_t *t = json_object(), *sr = json_array();

	json_object_set_new(o, "flagged", json_boolean(v->flagged));
	json_object_set_new(o, "decision", json_string(decision_name(v->decision)));
	json_object_set_new(o, "role", json_string(role_name(v->role)));
	json_object_set_new(o, "unsafe_score", isfinite(v->unsafe_score) ?
	    json_real(v->unsafe_score) : json_null());
	for (int i = 0; i < v->n_codes; i++)
		json_array_append_new(cats, json_string(v->codes[i]));
	json_object_set_new(o, "categories", cats);
	for (int i = 0; i < v->n_model_codes; i++)
		json_array_append_new(mc, json_string(v->model_codes[i]));
	json_object_set_new(o, "model_categories", mc);
	if (v->have_cat_scores)
		for (size_t i = 0; i < policy_n_categories(p); i++)
			if (isfinite(v->cat_scores[i]))
				json_object_set_new(sc, policy_category(p, i)->code, json_real(v->cat_scores[i]));
	json_object_set_new(o, "category_scores", sc);
	json_object_set_new(o, "structure_spoof", json_boolean(v->spoof));
	for (int i = 0; i < v->n_spoof; i++)
		json_array_append_new(sr, json_string(v->spoof_reasons[i]));
	json_object_set_new(o, "spoof_reasons", sr);
	json_object_set_new(o, "policy", json_string(policy_name(p)));
	json_object_set_new(o, "policy_hash", json_string(policy_hash(p)));
	json_object_set_new(o, "model", json_string(model ? model : ""));
	json_object_set_new(o, "raw", json_string(v->raw));
	json_object_set_new(o, "tokens_evaluated", json_integer(v->tokens_evaluated));
	json_object_set_new(o, "tokens_cached", json_integer(v->tokens_cached));
	json_object_set_new(t, "prompt", json_real(v->ms_prompt));
	json_object_set_new(t, "prefill", json_real(v->ms_prefill));
	json_object_set_new(t, "decode", json_real(v->ms_decode));
	json_object_set_new(t, "total", json_real(v->ms_total));
	json_object_set_new(o, "timings", t);
	json_object_set_new(o, "error", v->error[0] ? json_string(v->error) : json_null());
	return o;
}

void
verdict_free(struct verdict *v)
{
	free(v->cat_scores);
	v->cat_scores = NULL;
}
