/* median.c - one sort order and one median for every timing summary (guard bench, the
 * benchmark programs, guard eval's percentiles). */
#include "util/median.h"

#include <stdlib.h>

int
median_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double
median_of(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), median_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
