/* t_imgprep.c - MllamaImageProcessor parity: the reference images decoded (sha256 of the RGB bytes),
 * tiled, resized, padded and normalised, against both transformers backends in
 * ../shared/reference/tiny-mllama/preprocess.json: the PIL one exactly, the torchvision one within
 * one uint8 level. Also the canvas choice against transformers' worked examples. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/image.h"
#include "core/imgprep.h"
#include "tap.h"
#include "util/sha256.h"

#define PIL_BACKEND "transformers.models.mllama.image_processing_pil_mllama.MllamaImageProcessorPil"

static const char hub_config[] =
    "{\"do_convert_rgb\": true, \"do_normalize\": true, \"do_pad\": true, \"do_rescale\": true,"
    " \"do_resize\": true, \"image_mean\": [0.48145466, 0.4578275, 0.40821073],"
    " \"image_processor_type\": \"MllamaImageProcessor\","
    " \"image_std\": [0.26862954, 0.26130258, 0.27577711], \"max_image_tiles\": 4, \"resample\": 2,"
    " \"rescale_factor\": 0.00392156862745098, \"size\": {\"height\": 560, \"width\": 560}}";

static int
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL)
		return -1;
	fputs(text, fp);
	return fclose(fp);
}

static json_int_t
nested_int(json_t *v)
{
	while (json_is_array(v))
		v = json_array_get(v, 0);
	return json_integer_value(v);
}

/* One backend's record against our output. level: 0 = exact, else the largest allowed
 * difference per channel is one uint8 level (1/255/std) plus float rounding. */
static void
compare(const char *name, const char *backend, json_t *b, const struct imgprep_out *o,
    const struct imgprep_config *c, int exact)
{
	json_t *mask = json_array_get(json_array_get(json_object_get(b, "aspect_ratio_mask"), 0), 0);
	json_t *idx = json_object_get(b, "sample_index"), *val = json_object_get(b, "sample_value");
	json_t *mean = json_object_get(b, "tile_channel_mean"), *sd = json_object_get(b, "tile_channel_std");
	size_t plane = (size_t)o->tile * o->tile, n_mask_ok = 0, n_bad = 0, first_bad = 0;
	double worst = 0, worst_stat = 0;
	int mask_ok = json_array_size(mask) == o->max_tiles;

	ok(nested_int(json_object_get(b, "aspect_ratio_ids")) == o->aspect_ratio_id,
	    "%s %s: aspect_ratio_id %d", name, backend, o->aspect_ratio_id);
	ok(nested_int(json_object_get(b, "num_tiles")) == (json_int_t)o->num_tiles,
	    "%s %s: num_tiles %u", name, backend, o->num_tiles);
	for (size_t t = 0; mask_ok && t < o->max_tiles; t++)
		n_mask_ok += json_integer_value(json_array_get(mask, t)) == o->mask[t];
	ok(mask_ok && n_mask_ok == o->max_tiles, "%s %s: aspect_ratio_mask", name, backend);
	if (!ok(json_array_size(idx) == json_array_size(val) && json_array_size(idx) >= 1000,
	    "%s %s: %zu samples present", name, backend, json_array_size(idx)))
		return;
	for (size_t i = 0; i < json_array_size(idx); i++) {
		json_int_t k = json_integer_value(json_array_get(idx, i));
		float want = (float)json_number_value(json_array_get(val, i));
		float got = k >= 0 && (size_t)k < o->n_pixels ? o->pixels[k] : NAN;
		int ch = (int)((k / (json_int_t)plane) % 3);
		double tol = exact ? 0 : 1.0 / 255 / c->std[ch] + 1e-6;
		double d = fabs((double)got - want);

		if (!(d <= tol)) {
			if (n_bad++ == 0)
				first_bad = i;
		}
		if (d > worst)
			worst = d;
	}
	if (!ok(n_bad == 0, "%s %s: %zu samples %s (largest difference %.3g)", name, backend,
	    json_array_size(idx), exact ? "bit for bit" : "within one uint8 level", worst))
		diag("%zu differ; first at flat index %lld: got %.9g want %.9g", n_bad,
		    (long long)json_integer_value(json_array_get(idx, first_bad)),
		    o->pixels[json_integer_value(json_array_get(idx, first_bad))],
		    json_number_value(json_array_get(val, first_bad)));
	/* per tile and channel mean and std in float64 over all 560x560 values */
	for (size_t t = 0; t < o->max_tiles; t++)
		for (int ch = 0; ch < 3; ch++) {
			const float *p = o->pixels + (t * 3 + (size_t)ch) * plane;
			double s = 0, ss = 0, m, v;

			for (size_t i = 0; i < plane; i++)
				s += p[i];
			m = s / plane;
			for (size_t i = 0; i < plane; i++)
				ss += ((double)p[i] - m) * ((double)p[i] - m);
			v = sqrt(ss / plane);
			m = fabs(m - json_number_value(json_array_get(json_array_get(mean, t), (size_t)ch)));
			v = fabs(v - json_number_value(json_array_get(json_array_get(sd, t), (size_t)ch)));
			if (m > worst_stat || isnan(m))
				worst_stat = m;
			if (v > worst_stat || isnan(v))
				worst_stat = v;
		}
	/* exact pixels leave only summation order: ~1e-12; one level at a few pixels: ~1e-6 */
	ok(worst_stat <= (exact ? 1e-9 : 1e-5), "%s %s: tile/channel mean and std (largest difference %.3g)",
	    name, backend, worst_stat);
}

static void
one_image(const char *dir, const char *name, json_t *rec, const struct imgprep_config *c)
{
	char path[8500], hex[65];
	struct image img;
	struct imgprep_out o;
	struct err e;
	json_t *size = json_object_get(rec, "size_wh"), *backends = json_object_get(rec, "backends");
	const char *key;
	json_t *b;

	snprintf(path, sizeof(path), "%s/images/%s", dir, name);
	if (!ok(image_load(&img, path, NULL, &e) == 0, "%s: decodes", name)) {
		diag("%s", e.msg);
		return;
	}
	ok(img.w == json_integer_value(json_array_get(size, 0)) &&
	    img.h == json_integer_value(json_array_get(size, 1)), "%s: %ux%u", name, img.w, img.h);
	sha256_hex(img.rgb, (size_t)img.w * img.h * 3, hex);
	ok(strcmp(hex, json_string_value(json_object_get(rec, "sha256_rgb"))) == 0,
	    "%s: RGB bytes equal Pillow's (sha256 %.16s...)", name, hex);
	if (!ok(imgprep_run(c, &img, &o, &e) == 0, "%s: preprocesses", name)) {
		diag("%s", e.msg);
		image_free(&img);
		return;
	}
	diag("%s: %ux%u -> %ux%u in a %ux%u-tile canvas", name, img.w, img.h, o.fit.resized_w,
	    o.fit.resized_h, o.fit.h_tiles, o.fit.w_tiles);
	json_object_foreach(backends, key, b)
		compare(name, strcmp(key, PIL_BACKEND) == 0 ? "pil" : "torchvision", b, &o, c,
		    strcmp(key, PIL_BACKEND) == 0);
	ok(json_object_get(backends, PIL_BACKEND) != NULL, "%s: the PIL backend's record is there", name);
	imgprep_out_free(&o);
	image_free(&img);
}

/* transformers' own examples (image_processing_mllama.py docstrings, llama-facts 8.3) */
static void
fits(const struct imgprep_config *c)
{
	static const struct {
		uint32_t w, h, ht, wt, rw, rh;
		int id;
	} cases[] = {
		{ 560, 560, 1, 1, 560, 560, 1 }, { 1120, 560, 1, 2, 1120, 560, 2 },
		{ 333, 517, 1, 1, 360, 560, 1 }, { 800, 1300, 2, 2, 689, 1120, 6 },
		{ 700, 300, 1, 2, 700, 300, 2 }, { 600, 600, 2, 2, 600, 600, 6 },
		{ 1, 1, 1, 1, 560, 560, 1 }, { 4000, 10, 1, 4, 2240, 5, 4 },
		{ 10, 4000, 4, 1, 5, 2240, 8 }, { 1680, 560, 1, 3, 1680, 560, 3 },
	};
	struct imgprep_fit f;
	struct err e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = imgprep_fit(c, cases[i].w, cases[i].h, &f, &e);

		ok(rc == 0 && f.h_tiles == cases[i].ht && f.w_tiles == cases[i].wt &&
		    f.resized_w == cases[i].rw && f.resized_h == cases[i].rh &&
		    f.aspect_ratio_id == cases[i].id,
		    "fit %ux%u: %ux%u tiles, %ux%u, id %d (got %ux%u, %ux%u, %d)", cases[i].w, cases[i].h,
		    cases[i].ht, cases[i].wt, cases[i].rw, cases[i].rh, cases[i].id, f.h_tiles, f.w_tiles,
		    f.resized_w, f.resized_h, f.aspect_ratio_id);
	}
	ok(imgprep_fit(c, 0, 5, &f, &e) < 0 && strstr(e.msg, "0x5") != NULL, "fit 0x5 refused: %s", e.msg);
}

static void
configs(struct imgprep_config *c)
{
	char tmp[] = "/tmp/t_imgprep.XXXXXX", path[64];
	struct imgprep_config d, x;
	struct err e;
	int fd = mkstemp(tmp);

	if (fd < 0) {
		ok(0, "mkstemp");
		return;
	}
	close(fd);
	snprintf(path, sizeof(path), "%s", tmp);
	imgprep_config_default(&d);
	write_file(path, hub_config);
	ok(imgprep_config_load(c, path, &e) == 0 && memcmp(c, &d, sizeof(d)) == 0,
	    "the Hub's preprocessor_config.json loads, equal to the defaults");
	write_file(path, "{\"resample\": 3}");
	ok(imgprep_config_load(&x, path, &e) < 0 && strstr(e.msg, "resample") != NULL,
	    "resample 3 (bicubic) refused: %s", e.msg);
	write_file(path, "{\"image_std\": [0.2, 0, 0.2]}");
	ok(imgprep_config_load(&x, path, &e) < 0 && strstr(e.msg, "image_std[1]") != NULL,
	    "a zero std refused: %s", e.msg);
	write_file(path, "{\"max_image_tiles\": 1000}");
	ok(imgprep_config_load(&x, path, &e) < 0 && strstr(e.msg, "max_image_tiles") != NULL,
	    "max_image_tiles 1000 refused: %s", e.msg);
	write_file(path, "{\"size\": {\"height\": 560, \"width\": 336}}");
	ok(imgprep_config_load(&x, path, &e) < 0 && strstr(e.msg, "size") != NULL,
	    "non-square tiles refused: %s", e.msg);
	write_file(path, "[1, 2");
	ok(imgprep_config_load(&x, path, &e) < 0 && strstr(e.msg, path) != NULL,
	    "broken JSON names the file: %s", e.msg);
	unlink(path);
}

int
main(void)
{
	const char *shared = shared_dir();
	char dir[4200], path[4300];
	struct imgprep_config c;
	json_error_t je;
	json_t *root, *images, *rec;
	const char *name;

	configs(&c);
	fits(&c);
	if (shared == NULL) {
		ok(1, "# skip ../shared is absent: no preprocessing parity checked");
		return done_testing();
	}
	snprintf(dir, sizeof(dir), "%s/reference/tiny-mllama", shared);
	snprintf(path, sizeof(path), "%s/preprocess.json", dir);
	if (!ok((root = json_load_file(path, 0, &je)) != NULL, "load %s", path)) {
		diag("%s", je.text);
		return done_testing();
	}
	images = json_object_get(root, "images");
	ok(json_object_size(images) == 4, "preprocess.json has 4 images");
	json_object_foreach(images, name, rec)
		one_image(dir, name, rec, &c);
	json_decref(root);
	return done_testing();
}
