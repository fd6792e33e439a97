/* guard_replay_report.c - guard replay's report: the flips per direction and category, every
 * flipped verdict (JSON), and the text rendering of the same object. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/guard_replay.h"
#include "policy/policy.h"

/* the category a flip is counted under: the codes that now act, else those that acted */
static const char *
flip_cat(const struct rec *x)
{
	if (x->n_new > 0)
		return x->new_codes[0];
	if (x->n_old > 0)
		return x->old_codes[0];
	if (x->n_mc > 0)
		return x->mc[0];
	return "-";
}

json_t *
replay_report(const char *log, const struct policy *old, const struct policy *nw, struct rec *r,
    size_t n, long n_run, long *flips)
{
	json_t *dirs = json_array(), *flipped = json_array(), *x;
	size_t i;

	*flips = 0;
	for (size_t k = 0; k < n; k++) {
		struct rec *y = &r[k];
		if (strcmp(y->old_state, y->new_state) == 0)
			continue;
		(*flips)++;
		json_t *row = NULL;
		json_array_foreach(dirs, i, x)
			if (strcmp(json_string_value(json_object_get(x, "from")), y->old_state) == 0 &&
			    strcmp(json_string_value(json_object_get(x, "to")), y->new_state) == 0)
				row = x;
		if (row == NULL) {
			row = json_pack("{s:s, s:s, s:i, s:{}}", "from", y->old_state, "to", y->new_state,
			    "count", 0, "categories");
			json_array_append_new(dirs, row);
		}
		json_object_set_new(row, "count", json_integer(json_integer_value(json_object_get(row, "count")) + 1));
		json_t *cats = json_object_get(row, "categories");
		const char *fc = flip_cat(y);
		json_object_set_new(cats, fc, json_integer(json_integer_value(json_object_get(cats, fc)) + 1));
		json_t *codes = json_array();
		for (int c = 0; c < y->n_new; c++)
			json_array_append_new(codes, json_string(y->new_codes[c]));
		json_array_append_new(flipped, json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:b, s:s?}",
		    "line", (json_int_t)y->line, "role", y->role == ROLE_RESPONSE ? "assistant" : "user",
		    "from", y->old_state, "to", y->new_state, "unsafe_score",
		    isfinite(y->score) ? json_real(y->score) : json_null(), "categories", codes,
		    "rerun", y->need_run, "text", y->snippet[0] ? y->snippet : NULL));
	}
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:I, s:o, s:o}", "log", log,
	    "old_policy_hash", policy_hash(old), "new_policy_hash", policy_hash(nw), "verdicts",
	    (json_int_t)n, "from_scores", (json_int_t)(n - (size_t)n_run), "rerun", (json_int_t)n_run,
	    "model_run", n_run > 0, "unchanged", (json_int_t)(n - (size_t)*flips), "flips",
	    (json_int_t)*flips, "directions", dirs, "flipped", flipped);
}

void
replay_print_text(const json_t *j, long examples)
{
	json_t *x, *v;
	size_t i, k;
	const char *key;

	printf("%lld verdicts from %s; policy %.12s -> %.12s\n",
	    json_integer_value(json_object_get(j, "verdicts")), json_string_value(json_object_get(j, "log")),
	    json_string_value(json_object_get(j, "old_policy_hash")),
	    json_string_value(json_object_get(j, "new_policy_hash")));
	printf("decided from the logged scores (no model run): %lld\nre-run with the model: %lld\n"
	    "unchanged: %lld\nflips: %lld\n", json_integer_value(json_object_get(j, "from_scores")),
	    json_integer_value(json_object_get(j, "rerun")), json_integer_value(json_object_get(j, "unchanged")),
	    json_integer_value(json_object_get(j, "flips")));
	json_array_foreach(json_object_get(j, "directions"), i, x) {
		printf("  %-12s -> %-12s %6lld  ", json_string_value(json_object_get(x, "from")),
		    json_string_value(json_object_get(x, "to")), json_integer_value(json_object_get(x, "count")));
		json_object_foreach(json_object_get(x, "categories"), key, v)
			printf(" %s %lld", key, json_integer_value(v));
		printf("\n");
		long shown = 0;
		json_array_foreach(json_object_get(j, "flipped"), k, v) {
			if (shown >= examples)
				break;
			if (strcmp(json_string_value(json_object_get(v, "from")), json_string_value(json_object_get(x, "from"))) ||
			    strcmp(json_string_value(json_object_get(v, "to")), json_string_value(json_object_get(x, "to"))))
				continue;
			shown++;
			json_t *sc = json_object_get(v, "unsafe_score");
			printf("      line %lld %s", json_integer_value(json_object_get(v, "line")),
			    json_string_value(json_object_get(v, "role")));
			if (json_is_number(sc))
				printf(" score %.4f", json_number_value(sc));
			if (json_is_string(json_object_get(v, "text")))
				printf(" \"%s\"", json_string_value(json_object_get(v, "text")));
			printf("\n");
		}
	}
}
