/* metrics.h - exact binary-classification metrics for guard eval: counts from decisions,
 * and from scores the precision-recall curve, average precision (AUPRC) and the threshold
 * for a target false-positive rate, with tied scores grouped as scikit-learn groups them. */
#ifndef GUARDD_METRICS_H
#define GUARDD_METRICS_H

#include <stddef.h>

/* One labelled item: label 1 = unsafe; pred 1 = flagged; score = unsafe_score. */
struct mitem {
	double score;
	int label, pred;
};

struct mcounts {
	long tp, fp, tn, fn;
	/* 0 where undefined (no positives predicted / present), as scikit-learn's
	 * zero_division=0 */
	double precision, recall, f1, fpr;
};

/* One point of the precision-recall curve: items with score >= threshold are positive. */
struct mpoint {
	double threshold, precision, recall, fpr;
};

struct mcurve {
	struct mpoint *pt;	/* one per distinct score, highest threshold first */
	size_t n;
	double ap;		/* average precision: sum over points of (R_k - R_{k-1}) P_k */
	long pos, neg;
};

/* Counts and rates of pred against label. */
void metrics_counts(const struct mitem *it, size_t n, struct mcounts *out);
/* The curve over score (items sorted inside a copy; it is not changed). -1 when out of
 * memory. Without positives, ap is NaN (scikit-learn warns and returns a meaningless value). */
int metrics_curve(const struct mitem *it, size_t n, struct mcurve *out);
void metrics_curve_free(struct mcurve *c);
/* The lowest distinct score t whose rule "score >= t" keeps the false-positive rate at or
 * below target: the most recall that target allows. Returns the index into c->pt, or -1 when
 * even the highest score exceeds it (or there are no negatives). */
long metrics_threshold_at_fpr(const struct mcurve *c, double target);
/* Nearest-rank percentile (q in (0, 100]) of v[0..n-1]; v is sorted in place. NaN for n 0. */
double metrics_percentile(double *v, size_t n, double q);

#endif
