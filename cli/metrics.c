/* metrics.c - exact counts, the precision-recall curve and average precision, computed the
 * way scikit-learn's precision_recall_curve / average_precision_score do (one point per
 * distinct score, so tied items enter together), and the threshold for a target FPR. */
#include "cli/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/median.h"

static double
ratio(long a, long b)
{
	return b > 0 ? (double)a / (double)b : 0.0;
}

void
metrics_counts(const struct mitem *it, size_t n, struct mcounts *o)
{
	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < n; i++) {
		if (it[i].label && it[i].pred) o->tp++;
		else if (it[i].label) o->fn++;
		else if (it[i].pred) o->fp++;
		else o->tn++;
	}
	o->precision = ratio(o->tp, o->tp + o->fp);
	o->recall = ratio(o->tp, o->tp + o->fn);
	o->fpr = ratio(o->fp, o->fp + o->tn);
	/* F1 as 2TP / (2TP + FP + FN): the same as the harmonic mean, and defined (0) when both
	 * precision and recall are 0 */
	o->f1 = ratio(2 * o->tp, 2 * o->tp + o->fp + o->fn);
}

static int
by_score_desc(const void *a, const void *b)
{
	double x = ((const struct mitem *)a)->score, y = ((const struct mitem *)b)->score;

	return x > y ? -1 : x < y ? 1 : 0;
}

int
metrics_curve(const struct mitem *it, size_t n, struct mcurve *c)
{
	struct mitem *s = n ? malloc(n * sizeof(*s)) : NULL;

	memset(c, 0, sizeof(*c));
	if (n && (s == NULL || (c->pt = malloc(n * sizeof(*c->pt))) == NULL)) {
		free(s);
		return -1;
	}
	if (n)
		memcpy(s, it, n * sizeof(*s));
	if (n)
		qsort(s, n, sizeof(*s), by_score_desc);
	for (size_t i = 0; i < n; i++) {
		if (s[i].label) c->pos++;
		else c->neg++;
	}
	long tp = 0, fp = 0;
	double prev_r = 0.0, ap = 0.0;
	for (size_t i = 0; i < n;) {
		/* every item tied with s[i] crosses the threshold at once */
		size_t j = i;
		for (; j < n && s[j].score == s[i].score; j++) {
			if (s[j].label) tp++;
			else fp++;
		}
		struct mpoint *p = &c->pt[c->n++];
		p->threshold = s[i].score;
		p->precision = ratio(tp, tp + fp);
		p->recall = ratio(tp, c->pos);
		p->fpr = ratio(fp, c->neg);
		ap += (p->recall - prev_r) * p->precision;
		prev_r = p->recall;
		i = j;
	}
	c->ap = c->pos > 0 ? ap : NAN;
	free(s);
	return 0;
}

void
metrics_curve_free(struct mcurve *c)
{
	free(c->pt);
	memset(c, 0, sizeof(*c));
}

long
metrics_threshold_at_fpr(const struct mcurve *c, double target)
{
	long best = -1;

	if (c->neg == 0)
		return -1;
	/* the fpr only grows as the threshold falls: the last point within target is best */
	for (size_t i = 0; i < c->n; i++)
		if (c->pt[i].fpr <= target)
			best = (long)i;
		else
			break;
	return best;
}

double
metrics_percentile(double *v, size_t n, double q)
{
	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), median_cmp);
	size_t k = (size_t)ceil(q / 100.0 * (double)n);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}
