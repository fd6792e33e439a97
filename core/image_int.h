/* image_int.h - what the format decoders share with image.c (not for callers). */
#ifndef GUARDD_IMAGE_INT_H
#define GUARDD_IMAGE_INT_H

#include "core/image.h"

/* Checks a declared size against the limits before anything is allocated; fills e. */
int image_check_size(uint64_t w, uint64_t h, const struct image_limits *lim, struct err *e);

/* The EXIF Orientation (1-8) of a TIFF block (optionally after JPEG's "Exif\0\0"); 1 when
 * absent or malformed. */
int image_exif_orientation(const unsigned char *p, size_t n);
/* Turns img as orientation o asks (2-8; 1 and anything else: unchanged). */
int image_orient(struct image *img, int o, struct err *e);

/* Each fills img (heap pixels) or returns -1 with e filled and img untouched. */
int image_decode_png(struct image *img, const unsigned char *data, size_t len,
    const struct image_limits *lim, struct err *e);
int image_decode_jpeg(struct image *img, const unsigned char *data, size_t len,
    const struct image_limits *lim, struct err *e);

#endif
