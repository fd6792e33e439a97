/* svgplot.h - guard eval --plot: a precision-recall curve and score histograms per label,
 * written as a small standalone SVG file (no plotting library). */
#ifndef GUARDD_SVGPLOT_H
#define GUARDD_SVGPLOT_H

#include <stddef.h>

#include "cli/metrics.h"
#include "util/err.h"

int svgplot_write(const char *path, const char *title, const struct mcurve *c,
    const struct mitem *it, size_t n, struct err *e);

#endif
