/* image.h - PNG and JPEG decoding (libpng, libjpeg-turbo) into 8-bit RGB, with limits for untrusted input. */
#ifndef GUARDD_IMAGE_H
#define GUARDD_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

/* A decoded picture: 8-bit RGB, row-major, 3 bytes per pixel, no row padding. The pixels are what
 * Pillow's Image.convert("RGB") gives for the same file (after the EXIF orientation unless
 * keep_orientation) (palette expanded, gray replicated, alpha
 * dropped, 16-bit samples reduced to their high byte, CMYK/YCCK JPEG inverted as Pillow does). */
struct image {
	uint32_t w, h;
	uint8_t *rgb;		/* w * h * 3 bytes; heap, freed by image_free */
};

/* What a decoder accepts. Checked against the header before any pixel buffer is allocated. */
struct image_limits {
	size_t max_bytes;	/* encoded file size */
	uint32_t max_w, max_h;	/* each side */
	uint64_t max_pixels;	/* w * h */
	/* 0: turn the picture as its EXIF Orientation says (JPEG APP1, PNG eXIf), as
	 * transformers' load_image does; 1: keep the stored layout, as Image.open does */
	int keep_orientation;
};

/* 64 MiB, 16384 per side, 40 megapixels, EXIF orientation applied. */
void image_limits_default(struct image_limits *l);

enum image_format { IMAGE_FORMAT_UNKNOWN = 0, IMAGE_FORMAT_PNG, IMAGE_FORMAT_JPEG };

/* The format named by the first bytes (PNG signature, JPEG SOI marker), or UNKNOWN. */
enum image_format image_sniff(const void *data, size_t len);

/* Decodes len bytes of PNG or JPEG into img (lim NULL: the defaults). On error fills e with the
 * reason (libpng/libjpeg's message, or the offset where the bytes ran out), leaves img empty and
 * returns -1. A 0x0 image, a size over a limit, a truncated or corrupt file are errors. */
int image_decode(struct image *img, const void *data, size_t len, const struct image_limits *lim,
    struct err *e);

/* Reads and decodes a file (errors are prefixed with its path). */
int image_load(struct image *img, const char *path, const struct image_limits *lim, struct err *e);

/* Frees the pixels and zeroes img; a zeroed or already freed image is fine. */
void image_free(struct image *img);

#endif
