/* guard_eval_report.c - guard eval's report: the metrics as JSON, the per-category table, and
 * the text rendering of the same JSON (so the table and --json never disagree). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/guard_eval.h"
#include "util/strmap.h"

static json_t *
num(double x)
{
	return isfinite(x) ? json_real(x) : json_null();
}

json_t *
eval_metrics_json(const struct mitem *it, size_t n, double fpr_target, struct mcurve *c)
{
	struct mcounts k;
	json_t *o = json_object();

	metrics_counts(it, n, &k);
	if (metrics_curve(it, n, c) == -1) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "counts", json_pack("{s:I, s:I, s:I, s:I}", "tp", (json_int_t)k.tp,
	    "fp", (json_int_t)k.fp, "tn", (json_int_t)k.tn, "fn", (json_int_t)k.fn));
	json_object_set_new(o, "precision", num(k.precision));
	json_object_set_new(o, "recall", num(k.recall));
	json_object_set_new(o, "f1", num(k.f1));
	json_object_set_new(o, "fpr", num(k.fpr));
	json_object_set_new(o, "auprc", num(c->ap));
	long i = metrics_threshold_at_fpr(c, fpr_target);
	json_t *t = json_object();
	json_object_set_new(t, "target", json_real(fpr_target));
	json_object_set_new(t, "threshold", i < 0 ? json_null() : json_real(c->pt[i].threshold));
	json_object_set_new(t, "fpr", i < 0 ? json_null() : json_real(c->pt[i].fpr));
	json_object_set_new(t, "recall", i < 0 ? json_null() : json_real(c->pt[i].recall));
	json_object_set_new(t, "precision", i < 0 ? json_null() : json_real(c->pt[i].precision));
	json_object_set_new(o, "threshold_at_fpr", t);
	return o;
}

static int
named(const json_t *v, const char *code)
{
	json_t *x;
	size_t i;

	json_array_foreach(json_object_get(v, "model_categories"), i, x)
		if (json_is_string(x) && strcmp(json_string_value(x), code) == 0)
			return 1;
	return 0;
}

json_t *
eval_categories_json(const struct evalset *s, json_t *const *v)
{
	json_t *arr = json_array();
	struct strmap rows;

	/* categories in order of first appearance; a map keeps it linear for any number */
	if (strmap_init(&rows, 64) == -1)
		return arr;
	for (size_t i = 0; i < s->n; i++)
		for (int k = 0; k < s->it[i].n_cats; k++) {
			const char *cat = s->it[i].cats[k];
			const char *code = evalset_map(s->kind, cat);
			int32_t ri = strmap_get(&rows, cat, strlen(cat));
			json_t *row;
			if (ri < 0) {
				row = json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:I}", "category", cat, "code",
				    code ? json_string(code) : json_null(), "items", (json_int_t)0, "unsafe",
				    (json_int_t)0, "evaluated", (json_int_t)0, "flagged", (json_int_t)0,
				    "code_named", (json_int_t)0);
				if (row == NULL || strmap_put(&rows, cat, strlen(cat),
				    (int32_t)json_array_size(arr)) == -1) {
					json_decref(row);
					continue;
				}
				json_array_append_new(arr, row);
			} else
				row = json_array_get(arr, (size_t)ri);
#define BUMP(key) json_object_set_new(row, key, json_integer(json_integer_value(json_object_get(row, key)) + 1))
			BUMP("items");
			if (s->it[i].label)
				BUMP("unsafe");
			const json_t *vi = v[i];
			const char *d = vi ? json_string_value(json_object_get(vi, "decision")) : NULL;
			if (d == NULL || strcmp(d, "error") == 0)
				continue;
			BUMP("evaluated");
			if (json_is_true(json_object_get(vi, "flagged")))
				BUMP("flagged");
			if (code && named(vi, code))
				BUMP("code_named");
#undef BUMP
		}
	strmap_free(&rows);
	return arr;
}

static void
pr(FILE *f, const char *label, const json_t *x)
{
	if (json_is_number(x))
		fprintf(f, "  %-22s %.4f\n", label, json_number_value(x));
	else
		fprintf(f, "  %-22s -\n", label);
}

void
eval_print_text(const json_t *r, FILE *f)
{
	const json_t *k = json_object_get(r, "counts"), *t = json_object_get(r, "threshold_at_fpr");
	const json_t *lat = json_object_get(r, "latency_ms"), *x;
	size_t i;

	if (json_is_string(json_object_get(r, "set")))
		fprintf(f, "set %s (%s): %lld items, %lld unsafe, %lld evaluated, %lld errors\n",
		    json_string_value(json_object_get(r, "set")),
		    json_string_value(json_object_get(r, "kind")),
		    json_integer_value(json_object_get(r, "items")),
		    json_integer_value(json_object_get(r, "unsafe")),
		    json_integer_value(json_object_get(r, "evaluated")),
		    json_integer_value(json_object_get(r, "errors")));
	if (json_is_string(json_object_get(r, "policy")))
		fprintf(f, "policy %s (%.12s), model %.12s\n", json_string_value(json_object_get(r, "policy")),
		    json_string_value(json_object_get(r, "policy_hash")),
		    json_string_value(json_object_get(r, "model")));
	fprintf(f, "  %-22s tp %lld  fp %lld  tn %lld  fn %lld\n", "flagged vs label",
	    json_integer_value(json_object_get(k, "tp")), json_integer_value(json_object_get(k, "fp")),
	    json_integer_value(json_object_get(k, "tn")), json_integer_value(json_object_get(k, "fn")));
	pr(f, "precision", json_object_get(r, "precision"));
	pr(f, "recall", json_object_get(r, "recall"));
	pr(f, "F1", json_object_get(r, "f1"));
	pr(f, "false-positive rate", json_object_get(r, "fpr"));
	pr(f, "AUPRC (unsafe_score)", json_object_get(r, "auprc"));
	char lbl[64];
	snprintf(lbl, sizeof(lbl), "threshold for FPR %.3g", json_number_value(json_object_get(t, "target")));
	if (json_is_number(json_object_get(t, "threshold")))
		fprintf(f, "  %-22s %.6g (FPR %.4f, recall %.4f, precision %.4f)\n", lbl,
		    json_number_value(json_object_get(t, "threshold")),
		    json_number_value(json_object_get(t, "fpr")),
		    json_number_value(json_object_get(t, "recall")),
		    json_number_value(json_object_get(t, "precision")));
	else
		fprintf(f, "  %-22s none (even the highest score exceeds it)\n", lbl);
	if (lat)
		fprintf(f, "  %-22s p50 %.2f ms, p95 %.2f ms\n", "latency per item",
		    json_number_value(json_object_get(lat, "p50")), json_number_value(json_object_get(lat, "p95")));
	const json_t *cats = json_object_get(r, "categories");
	if (json_array_size(cats) > 0) {
		fprintf(f, "\n  %-30s %-5s %6s %6s %9s %7s %10s\n", "category", "code", "items", "unsafe",
		    "evaluated", "flagged", "code named");
		json_array_foreach(cats, i, x) {
			const json_t *code = json_object_get(x, "code");
			fprintf(f, "  %-30.30s %-5s %6lld %6lld %9lld %7lld ",
			    json_string_value(json_object_get(x, "category")),
			    json_is_string(code) ? json_string_value(code) : "-",
			    json_integer_value(json_object_get(x, "items")),
			    json_integer_value(json_object_get(x, "unsafe")),
			    json_integer_value(json_object_get(x, "evaluated")),
			    json_integer_value(json_object_get(x, "flagged")));
			if (json_is_string(code))
				fprintf(f, "%10lld\n", json_integer_value(json_object_get(x, "code_named")));
			else
				fprintf(f, "%10s\n", "-");
		}
	}
}
