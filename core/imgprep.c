/* imgprep.c - MllamaImageProcessor: canvas choice, resize, pad, rescale, normalise, tiles. */
#include "core/imgprep.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void
imgprep_config_default(struct imgprep_config *c)
{
	static const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
	static const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };

	memset(c, 0, sizeof(*c));
	c->tile = 560;
	c->max_tiles = 4;
	c->do_resize = c->do_rescale = c->do_normalize = c->do_pad = 1;
	c->rescale = 0.00392156862745098;	/* 1/255 as the Hub file writes it */
	memcpy(c->mean, mean, sizeof(mean));
	memcpy(c->std, std, sizeof(std));
}

static int
get_bool(json_t *root, const char *key, int *out, const char *path, struct err *e)
{
	json_t *v = json_object_get(root, key);

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return err_set(e, "%s: %s: expected true or false", path, key);
	*out = json_is_true(v);
	return 0;
}

static int
get_uint(json_t *root, const char *key, uint32_t lo, uint32_t hi, uint32_t *out, const char *path,
    struct err *e)
{
	json_t *v = json_object_get(root, key);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return err_set(e, "%s: %s: expected an integer in [%u, %u]", path, key, lo, hi);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int
get_triple(json_t *root, const char *key, float out[3], int positive, const char *path,
    struct err *e)
{
	json_t *v = json_object_get(root, key);

	if (v == NULL)
		return 0;
	if (!json_is_array(v) || json_array_size(v) != 3)
		return err_set(e, "%s: %s: expected an array of 3 numbers", path, key);
	for (size_t i = 0; i < 3; i++) {
		json_t *x = json_array_get(v, i);
		double d;

		if (!json_is_number(x))
			return err_set(e, "%s: %s[%zu]: expected a number", path, key, i);
		d = json_number_value(x);
		if (!isfinite(d) || fabs(d) > 1e6 || (positive && !(d > 0)))
			return err_set(e, "%s: %s[%zu]: %g is out of range", path, key, i, d);
		/* numpy builds the float32 mean/std from these doubles: round once */
		out[i] = (float)d;
	}
	return 0;
}

/* the fields of a parsed document; path names it in messages */
static int
config_from_json(struct imgprep_config *c, json_t *root, const char *path, struct err *e)
{
	json_t *v;
	uint32_t resample = 2, sh = 0, sw = 0;

	imgprep_config_default(c);
	if (!json_is_object(root))
		return err_set(e, "%s: expected a JSON object", path);
	if (get_bool(root, "do_resize", &c->do_resize, path, e) < 0 ||
	    get_bool(root, "do_rescale", &c->do_rescale, path, e) < 0 ||
	    get_bool(root, "do_normalize", &c->do_normalize, path, e) < 0 ||
	    get_bool(root, "do_pad", &c->do_pad, path, e) < 0 ||
	    get_uint(root, "max_image_tiles", 1, IMGPREP_MAX_TILES, &c->max_tiles, path, e) < 0 ||
	    get_uint(root, "resample", 0, 5, &resample, path, e) < 0 ||
	    get_triple(root, "image_mean", c->mean, 0, path, e) < 0 ||
	    get_triple(root, "image_std", c->std, 1, path, e) < 0)
		return -1;
	if (resample != 2)
		return err_set(e, "%s: resample: %u is not 2 (bilinear), the only filter "
		    "implemented", path, resample);
	if (!c->do_pad)
		return err_set(e, "%s: do_pad: false is not supported (tiles are always padded)",
		    path);
	if ((v = json_object_get(root, "rescale_factor")) != NULL) {
		if (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1)
			return err_set(e, "%s: rescale_factor: expected a number in (0, 1]", path);
		c->rescale = json_number_value(v);
	}
	if ((v = json_object_get(root, "size")) != NULL) {
		if (!json_is_object(v))
			return err_set(e, "%s: size: expected an object {height, width}", path);
		if (get_uint(v, "height", 14, 4096, &sh, path, e) < 0 ||
		    get_uint(v, "width", 14, 4096, &sw, path, e) < 0)
			return -1;
		if (sh != sw || sh == 0)
			return err_set(e, "%s: size: expected equal height and width, got %ux%u",
			    path, sh, sw);
		c->tile = sh;
	}
	return 0;
}

int
imgprep_config_load(struct imgprep_config *c, const char *path, struct err *e)
{
	json_error_t je;
	json_t *root;

	imgprep_config_default(c);
	if ((root = json_load_file(path, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return err_set(e, "%s:%d:%d: %s", path, je.line, je.column, je.text);
	int rc = config_from_json(c, root, path, e);
	json_decref(root);
	return rc;
}

int
imgprep_config_parse(struct imgprep_config *c, const char *text, size_t len, const char *name,
    struct err *e)
{
	json_error_t je;
	json_t *root;

	imgprep_config_default(c);
	if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return err_set(e, "%s:%d:%d: %s", name, je.line, je.column, je.text);
	int rc = config_from_json(c, root, name, e);
	json_decref(root);
	return rc;
}

/* transformers' get_all_supported_aspect_ratios: (h_tiles, w_tiles) pairs, first outer. */
static size_t
supported_ratios(uint32_t max_tiles, uint32_t r[][2], size_t cap)
{
	size_t n = 0;

	for (uint32_t a = 1; a <= max_tiles; a++)
		for (uint32_t b = 1; b <= max_tiles; b++)
			if (a * b <= max_tiles && n < cap) {
				r[n][0] = a;
				r[n][1] = b;
				n++;
			}
	return n;
}

int
imgprep_fit(const struct imgprep_config *c, uint32_t w, uint32_t h, struct imgprep_fit *f,
    struct err *e)
{
	uint32_t r[IMGPREP_MAX_TILES * 8][2];
	double scales[IMGPREP_MAX_TILES * 8], sel = 0;
	size_t n = supported_ratios(c->max_tiles, r, IMGPREP_MAX_TILES * 8), best = 0;
	int have_up = 0, have_down = 0;
	uint64_t best_area = UINT64_MAX;
	double tw, th, sw, sh;

	memset(f, 0, sizeof(*f));
	if (w == 0 || h == 0)
		return err_set(e, "image is %ux%u: nothing to tile", w, h);
	/* get_optimal_tiled_canvas */
	for (size_t i = 0; i < n; i++) {
		double s_h = (double)(r[i][0] * c->tile) / h, s_w = (double)(r[i][1] * c->tile) / w;

		scales[i] = s_w > s_h ? s_h : s_w;
		if (scales[i] >= 1) {
			if (!have_up || scales[i] < sel)
				sel = scales[i];
			have_up = 1;
		}
	}
	for (size_t i = 0; !have_up && i < n; i++)
		if (scales[i] < 1 && (!have_down || scales[i] > sel)) {
			sel = scales[i];
			have_down = 1;
		}
	for (size_t i = 0; i < n; i++) {
		uint64_t area = (uint64_t)r[i][0] * c->tile * r[i][1] * c->tile;

		if (scales[i] == sel && area < best_area) {
			best_area = area;
			best = i;
		}
	}
	f->h_tiles = r[best][0];
	f->w_tiles = r[best][1];
	f->aspect_ratio_id = (int)best + 1;
	/* get_image_size_fit_to_canvas */
	tw = w < c->tile ? c->tile : w;
	if (tw > (double)f->w_tiles * c->tile)
		tw = (double)f->w_tiles * c->tile;
	th = h < c->tile ? c->tile : h;
	if (th > (double)f->h_tiles * c->tile)
		th = (double)f->h_tiles * c->tile;
	sh = th / h;
	sw = tw / w;
	if (sw < sh) {
		double nh = floor((double)h * sw);

		f->resized_w = (uint32_t)tw;
		f->resized_h = (uint32_t)(nh < 1 ? 1 : nh > th ? th : nh);
	} else {
		double nw = floor((double)w * sh);

		f->resized_h = (uint32_t)th;
		f->resized_w = (uint32_t)(nw < 1 ? 1 : nw > tw ? tw : nw);
	}
	return 0;
}

/* The float32 value of each uint8 level per channel, computed as numpy does in transformers'
 * PIL backend: x = float32(p * rescale in float64), then (x - mean) / std in float32. */
static void
level_table(const struct imgprep_config *c, float lut[3][256])
{
	for (int ch = 0; ch < 3; ch++)
		for (int p = 0; p < 256; p++) {
			float x = c->do_rescale ? (float)((double)p * c->rescale) : (float)p;

			if (c->do_normalize)
				x = (x - c->mean[ch]) / c->std[ch];
			lut[ch][p] = x;
		}
}

int
imgprep_run(const struct imgprep_config *c, const struct image *img, struct imgprep_out *out,
    struct err *e)
{
	struct image rs = { 0 };
	const struct image *src = img;
	float lut[3][256];
	size_t plane = (size_t)c->tile * c->tile;

	memset(out, 0, sizeof(*out));
	if (c->max_tiles == 0 || c->max_tiles > IMGPREP_MAX_TILES || c->tile == 0)
		return err_set(e, "image processor: bad configuration");
	if (img == NULL || img->rgb == NULL || img->w == 0 || img->h == 0)
		return err_set(e, "image processor: empty image");
	if (imgprep_fit(c, img->w, img->h, &out->fit, e) < 0)
		return -1;
	if (!c->do_resize) {
		out->fit.resized_w = img->w < out->fit.w_tiles * c->tile ? img->w : out->fit.w_tiles * c->tile;
		out->fit.resized_h = img->h < out->fit.h_tiles * c->tile ? img->h : out->fit.h_tiles * c->tile;
	} else if (out->fit.resized_w != img->w || out->fit.resized_h != img->h) {
		if (imgprep_resize_bilinear(img, out->fit.resized_w, out->fit.resized_h, &rs, e) < 0)
			return -1;
		src = &rs;
	}
	out->max_tiles = c->max_tiles;
	out->tile = c->tile;
	out->num_tiles = out->fit.h_tiles * out->fit.w_tiles;
	out->aspect_ratio_id = out->fit.aspect_ratio_id;
	for (uint32_t t = 0; t < out->num_tiles; t++)
		out->mask[t] = 1;
	out->n_pixels = (size_t)c->max_tiles * 3 * plane;
	if ((out->pixels = calloc(out->n_pixels, sizeof(float))) == NULL) {
		image_free(&rs);
		return err_set(e, "image processor: out of memory");
	}
	level_table(c, lut);
	for (uint32_t t = 0; t < out->num_tiles; t++) {
		uint32_t y0 = (t / out->fit.w_tiles) * c->tile, x0 = (t % out->fit.w_tiles) * c->tile;

		for (int ch = 0; ch < 3; ch++) {
			float *dst = out->pixels + ((size_t)t * 3 + ch) * plane;

			for (uint32_t y = 0; y < c->tile; y++)
				for (uint32_t x = 0; x < c->tile; x++) {
					uint32_t sy = y0 + y, sx = x0 + x;
					uint8_t p = sy < out->fit.resized_h && sx < out->fit.resized_w ?
					    src->rgb[((size_t)sy * src->w + sx) * 3 + ch] : 0;

					dst[(size_t)y * c->tile + x] = lut[ch][p];
				}
		}
	}
	image_free(&rs);
	return 0;
}

void
imgprep_out_free(struct imgprep_out *o)
{
	if (o == NULL)
		return;
	free(o->pixels);
	memset(o, 0, sizeof(*o));
}
