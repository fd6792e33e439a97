/* svgplot.c - writes guard eval's figure: on the left the precision-recall curve (a step
 * per distinct score, as average precision sums it), on the right the histogram of
 * unsafe_score for safe and for unsafe items (20 bins over [0, 1]). */
#include "cli/svgplot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define W 900
#define H 400
#define PW 360		/* a panel's plot area */
#define PH 280
#define NB 20

static void
esc(FILE *f, const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
}

static void
axes(FILE *f, int x0, int y0, const char *xl, const char *yl, double ymax, int yint)
{
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
	    "stroke=\"#444\"/>\n", x0, y0, PW, PH);
	for (int k = 0; k <= 4; k++) {
		double fx = k / 4.0;
		int x = x0 + (int)lround(fx * PW), y = y0 + PH - (int)lround(fx * PH);
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%.2f</text>\n",
		    x, y0 + PH + 15, fx);
		if (yint)
			fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%ld</text>\n",
			    x0 - 4, y + 4, lround(fx * ymax));
		else
			fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%.2f</text>\n",
			    x0 - 4, y + 4, fx * ymax);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n",
	    x0 + PW / 2, y0 + PH + 32, xl);
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" "
	    "transform=\"rotate(-90 %d %d)\">%s</text>\n", x0 - 38, y0 + PH / 2, x0 - 38, y0 + PH / 2, yl);
}

int
svgplot_write(const char *path, const char *title, const struct mcurve *c,
    const struct mitem *it, size_t n, struct err *e)
{
	FILE *f = fopen(path, "w");
	long hist[2][NB];
	long hmax = 1;

	if (f == NULL)
		return err_set(e, "%s: %s", path, strerror(errno));
	memset(hist, 0, sizeof(hist));
	for (size_t i = 0; i < n; i++) {
		int b = (int)floor(it[i].score * NB);
		b = b < 0 ? 0 : b >= NB ? NB - 1 : b;
		if (++hist[it[i].label != 0][b] > hmax)
			hmax = hist[it[i].label != 0][b];
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
	    "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, W, H);
	fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"14\" text-anchor=\"middle\">", W / 2);
	esc(f, title);
	fprintf(f, "</text>\n");
	/* left: precision-recall, starting at recall 0 with the first point's precision */
	int x0 = 70, y0 = 50;
	axes(f, x0, y0, "recall", "precision", 1.0, 0);
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">precision-recall "
	    "(AP %.4f)</text>\n", x0 + PW / 2, y0 - 8, isfinite(c->ap) ? c->ap : 0.0);
	if (c->n > 0) {
		fprintf(f, "<path fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" d=\"M%.1f %.1f",
		    (double)x0, y0 + PH - c->pt[0].precision * PH);
		double r = 0;
		for (size_t i = 0; i < c->n; i++) {
			/* the step average precision integrates: flat at this precision up to this recall */
			fprintf(f, " L%.1f %.1f L%.1f %.1f", x0 + r * PW, y0 + PH - c->pt[i].precision * PH,
			    x0 + c->pt[i].recall * PW, y0 + PH - c->pt[i].precision * PH);
			r = c->pt[i].recall;
		}
		fprintf(f, "\"/>\n");
	}
	/* right: histograms */
	x0 = 510;
	axes(f, x0, y0, "unsafe_score", "items", (double)hmax, 1);
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">unsafe_score by "
	    "label</text>\n", x0 + PW / 2, y0 - 8);
	static const char *const col[2] = { "#2ca02c", "#d62728" };
	static const char *const lab[2] = { "safe", "unsafe" };
	double bw = (double)PW / NB;
	for (int l = 0; l < 2; l++) {
		for (int b = 0; b < NB; b++) {
			if (hist[l][b] == 0)
				continue;
			double h = (double)hist[l][b] / (double)hmax * PH;
			fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
			    "fill-opacity=\"0.5\"><title>%s [%.2f, %.2f): %ld</title></rect>\n",
			    x0 + b * bw + l * bw / 2, y0 + PH - h, bw / 2, h, col[l], lab[l],
			    (double)b / NB, (double)(b + 1) / NB, hist[l][b]);
		}
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
		    "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>\n", x0 + PW - 70, y0 + 8 + l * 16,
		    col[l], x0 + PW - 56, y0 + 17 + l * 16, lab[l]);
	}
	fprintf(f, "</svg>\n");
	if (ferror(f) | (fclose(f) != 0))
		return err_set(e, "%s: write error", path);
	return 0;
}
