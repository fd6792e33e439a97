/* imgprep_resize.c - Pillow's Image.resize(BILINEAR) on 8-bit RGB, reproduced bit for bit.
 *
 * The arithmetic follows Pillow's libImaging/Resample.c (ImagingResampleInner with the bilinear
 * filter): per output coordinate a window of source pixels with triangle weights widened by the
 * scale when shrinking (antialiasing), normalised to sum 1 in double, then rounded to 22-bit
 * fixed point; a horizontal pass over the rows the vertical pass will read, then a vertical
 * pass, each rounding to uint8 (clipped) with a half added. Any other order or rounding moves
 * some pixels by one level, which is what the reference data checks. */
#include "core/imgprep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

struct coeffs {
	int ksize;
	int *bounds;		/* per output: first source index, count */
	int32_t *k;		/* per output: ksize fixed-point weights */
};

static double
bilinear(double x)
{
	if (x < 0.0)
		x = -x;
	return x < 1.0 ? 1.0 - x : 0.0;
}

static void
coeffs_free(struct coeffs *c)
{
	free(c->bounds);
	free(c->k);
}

static int
coeffs_make(int in_size, int out_size, struct coeffs *c, struct err *e)
{
	/* Pillow passes the box as floats: in1 - in0 is a float, exact for these sizes */
	double scale = (double)((float)in_size - 0.0f) / out_size;
	double filterscale = scale < 1.0 ? 1.0 : scale;
	double support = 1.0 * filterscale;
	double *w = NULL;

	memset(c, 0, sizeof(*c));
	c->ksize = (int)ceil(support) * 2 + 1;
	if ((size_t)out_size > ((size_t)1 << 31) / (size_t)c->ksize)
		return err_set(e, "resize: %d -> %d needs too many coefficients", in_size, out_size);
	c->bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
	c->k = malloc(sizeof(int32_t) * (size_t)c->ksize * (size_t)out_size);
	w = malloc(sizeof(double) * (size_t)c->ksize);
	if (c->bounds == NULL || c->k == NULL || w == NULL) {
		free(w);
		coeffs_free(c);
		return err_set(e, "resize: out of memory");
	}
	for (int xx = 0; xx < out_size; xx++) {
		double center = 0.0 + (xx + 0.5) * scale;
		double ww = 0.0, ss = 1.0 / filterscale;
		int xmin = (int)(center - support + 0.5);
		int xmax = (int)(center + support + 0.5);
		int32_t *k = c->k + (size_t)xx * c->ksize;
		int x;

		if (xmin < 0)
			xmin = 0;
		if (xmax > in_size)
			xmax = in_size;
		xmax -= xmin;
		for (x = 0; x < xmax; x++) {
			w[x] = bilinear((x + xmin - center + 0.5) * ss);
			ww += w[x];
		}
		for (x = 0; x < xmax; x++)
			if (ww != 0.0)
				w[x] /= ww;
		for (; x < c->ksize; x++)
			w[x] = 0;
		for (x = 0; x < c->ksize; x++)
			k[x] = w[x] < 0 ? (int32_t)(-0.5 + w[x] * (1 << PRECISION_BITS))
			    : (int32_t)(0.5 + w[x] * (1 << PRECISION_BITS));
		c->bounds[2 * xx] = xmin;
		c->bounds[2 * xx + 1] = xmax;
	}
	free(w);
	return 0;
}

static uint8_t
clip8(int32_t v)
{
	if (v < 0)
		return 0;
	v >>= PRECISION_BITS;
	return v > 255 ? 255 : (uint8_t)v;
}

/* out (out_w x rows) from rows [first, first + rows) of in (in_w wide) */
static void
pass_horizontal(const uint8_t *in, int in_w, int first, int rows, uint8_t *out, int out_w,
    const struct coeffs *c)
{
	for (int yy = 0; yy < rows; yy++) {
		const uint8_t *src = in + ((size_t)(yy + first) * in_w) * 3;

		for (int xx = 0; xx < out_w; xx++) {
			int xmin = c->bounds[2 * xx], xmax = c->bounds[2 * xx + 1];
			const int32_t *k = c->k + (size_t)xx * c->ksize;
			int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;

			for (int x = 0; x < xmax; x++) {
				const uint8_t *p = src + (size_t)(x + xmin) * 3;

				s0 += p[0] * k[x];
				s1 += p[1] * k[x];
				s2 += p[2] * k[x];
			}
			out[((size_t)yy * out_w + xx) * 3 + 0] = clip8(s0);
			out[((size_t)yy * out_w + xx) * 3 + 1] = clip8(s1);
			out[((size_t)yy * out_w + xx) * 3 + 2] = clip8(s2);
		}
	}
}

/* bounds of c are relative to row 0 of in */
static void
pass_vertical(const uint8_t *in, int w, uint8_t *out, int out_h, const struct coeffs *c,
    int shift)
{
	for (int yy = 0; yy < out_h; yy++) {
		int ymin = c->bounds[2 * yy] - shift, ymax = c->bounds[2 * yy + 1];
		const int32_t *k = c->k + (size_t)yy * c->ksize;

		for (int xx = 0; xx < w; xx++) {
			int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;

			for (int y = 0; y < ymax; y++) {
				const uint8_t *p = in + ((size_t)(y + ymin) * w + xx) * 3;

				s0 += p[0] * k[y];
				s1 += p[1] * k[y];
				s2 += p[2] * k[y];
			}
			out[((size_t)yy * w + xx) * 3 + 0] = clip8(s0);
			out[((size_t)yy * w + xx) * 3 + 1] = clip8(s1);
			out[((size_t)yy * w + xx) * 3 + 2] = clip8(s2);
		}
	}
}

int
imgprep_resize_bilinear(const struct image *src, uint32_t w, uint32_t h, struct image *dst,
    struct err *e)
{
	struct coeffs ch = { 0 }, cv = { 0 };
	uint8_t *tmp = NULL, *out = NULL;
	int first, last, need_h, need_v;

	memset(dst, 0, sizeof(*dst));
	if (src->w == 0 || src->h == 0 || w == 0 || h == 0)
		return err_set(e, "resize: %ux%u -> %ux%u: empty", src->w, src->h, w, h);
	if (src->w > 1u << 20 || src->h > 1u << 20 || w > 1u << 20 || h > 1u << 20)
		return err_set(e, "resize: %ux%u -> %ux%u: too large", src->w, src->h, w, h);
	need_h = w != src->w;
	need_v = h != src->h;
	if ((out = malloc((size_t)w * h * 3)) == NULL)
		return err_set(e, "resize: out of memory");
	if (!need_h && !need_v) {
		memcpy(out, src->rgb, (size_t)w * h * 3);
		goto done;
	}
	if (coeffs_make((int)src->h, (int)h, &cv, e) < 0)
		goto fail;
	first = cv.bounds[0];
	last = cv.bounds[2 * h - 2] + cv.bounds[2 * h - 1];
	if (!need_h) {
		pass_vertical(src->rgb, (int)w, out, (int)h, &cv, 0);
		goto done;
	}
	if (coeffs_make((int)src->w, (int)w, &ch, e) < 0)
		goto fail;
	if (!need_v) {
		pass_horizontal(src->rgb, (int)src->w, 0, (int)h, out, (int)w, &ch);
		goto done;
	}
	if ((tmp = malloc((size_t)w * (size_t)(last - first) * 3)) == NULL) {
		err_set(e, "resize: out of memory");
		goto fail;
	}
	pass_horizontal(src->rgb, (int)src->w, first, last - first, tmp, (int)w, &ch);
	pass_vertical(tmp, (int)w, out, (int)h, &cv, first);
done:
	free(tmp);
	coeffs_free(&ch);
	coeffs_free(&cv);
	dst->w = w;
	dst->h = h;
	dst->rgb = out;
	return 0;
fail:
	free(tmp);
	free(out);
	coeffs_free(&ch);
	coeffs_free(&cv);
	return -1;
}
