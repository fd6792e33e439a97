/* imgprep.h - MllamaImageProcessor: tiling, Pillow-exact bilinear resize, padding, normalisation. */
#ifndef GUARDD_IMGPREP_H
#define GUARDD_IMGPREP_H

#include <stddef.h>
#include <stdint.h>
#include "core/image.h"
#include "util/err.h"

#define IMGPREP_MAX_TILES 16	/* an upper bound for max_image_tiles read from a config */

/* preprocessor_config.json's fields that matter (Llama 3.2-Vision: 560, 4 tiles, CLIP mean/std). */
struct imgprep_config {
	uint32_t tile;		/* size.height == size.width: 560 */
	uint32_t max_tiles;	/* max_image_tiles: 4 */
	int do_resize, do_rescale, do_normalize, do_pad;
	double rescale;		/* rescale_factor: 1/255 */
	float mean[3], std[3];	/* image_mean, image_std */
};

/* Llama 3.2-Vision's values (the Hub's preprocessor_config.json). */
void imgprep_config_default(struct imgprep_config *c);
/* Reads a preprocessor_config.json (MllamaImageProcessor; resample must be 2, bilinear). Fields
 * absent from the file keep the defaults. */
int imgprep_config_load(struct imgprep_config *c, const char *path, struct err *e);
/* The same from the text of one (len bytes, e.g. the copy a GGUF file stores); name stands
 * for the file in messages ("model.gguf: guardd.mllama.preprocessor_json"). */
int imgprep_config_parse(struct imgprep_config *c, const char *text, size_t len, const char *name,
    struct err *e);

/* Where an image of w x h goes: the canvas of h_tiles x w_tiles tiles chosen among the supported
 * aspect ratios (every (h, w) with h * w <= max_tiles, in transformers' order), and the size it is
 * resized to inside that canvas (the rest is black padding, right and bottom). */
struct imgprep_fit {
	uint32_t h_tiles, w_tiles;
	uint32_t resized_w, resized_h;
	int aspect_ratio_id;	/* 1 + index in the supported list; 0 is "no image" */
};
int imgprep_fit(const struct imgprep_config *c, uint32_t w, uint32_t h, struct imgprep_fit *f,
    struct err *e);

/* The processor's output for one image. */
struct imgprep_out {
	uint32_t max_tiles, tile;	/* copies of the config's */
	uint32_t num_tiles;		/* h_tiles * w_tiles */
	int aspect_ratio_id;
	uint8_t mask[IMGPREP_MAX_TILES];	/* aspect_ratio_mask: 1 for the first num_tiles tiles */
	struct imgprep_fit fit;
	/* pixel_values [max_tiles][3][tile][tile], tile index = row * w_tiles + col; tiles beyond
	 * num_tiles are all 0. Heap, freed by imgprep_out_free. */
	float *pixels;
	size_t n_pixels;		/* max_tiles * 3 * tile * tile floats */
};

/* Runs the whole processor on an RGB image. Returns 0, or -1 with e filled. */
int imgprep_run(const struct imgprep_config *c, const struct image *img, struct imgprep_out *out,
    struct err *e);
void imgprep_out_free(struct imgprep_out *o);

/* Pillow's Image.resize((w, h), BILINEAR) on 8-bit RGB, bit for bit (libImaging/Resample.c:
 * separable fixed-point passes, antialiased when shrinking). dst gets new heap pixels. */
int imgprep_resize_bilinear(const struct image *src, uint32_t w, uint32_t h, struct image *dst,
    struct err *e);

#endif
