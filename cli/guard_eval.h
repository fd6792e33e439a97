/* guard_eval.h - what guard eval's command and its report share. */
#ifndef GUARDD_GUARD_EVAL_H
#define GUARDD_GUARD_EVAL_H

#include <jansson.h>
#include <stddef.h>

#include "cli/evalset.h"
#include "cli/metrics.h"

/* The metric fields of a report (counts, precision, recall, f1, fpr, auprc,
 * threshold_at_fpr) for the items; the curve goes to *c (free it). NULL when out of memory. */
json_t *eval_metrics_json(const struct mitem *it, size_t n, double fpr_target, struct mcurve *c);
/* Per set category: items, flagged, and (where the category maps to a code) how many
 * verdicts named that code. v[i] is item i's verdict or NULL. */
json_t *eval_categories_json(const struct evalset *s, json_t *const *v);
/* The report as a text table. */
void eval_print_text(const json_t *r, FILE *f);

#endif
