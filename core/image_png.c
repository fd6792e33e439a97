/* image_png.c - PNG through libpng, converted to 8-bit RGB as Pillow's convert("RGB") does. */
#include "core/image_int.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything a longjmp out of libpng must find again lives here, not in locals. */
struct png_job {
	const unsigned char *data;
	size_t len, pos;
	struct err *e;
	int failed;		/* e already holds the reason */
	char warning[128];	/* libpng's last warning: often the detail of the error that follows */
	unsigned char *raw;	/* rows as libpng delivers them */
	png_bytep *rows;
	uint8_t *rgb;
};

static void
png_on_error(png_structp png, png_const_charp msg)
{
	struct png_job *j = png_get_error_ptr(png);

	if (!j->failed)
		err_set(j->e, "PNG: %s%s%s%s (at byte %zu of %zu)", msg, j->warning[0] ? " (" : "",
		    j->warning, j->warning[0] ? ")" : "", j->pos, j->len);
	j->failed = 1;
	png_longjmp(png, 1);
}

/* Ancillary-chunk trouble: Pillow ignores it too; kept to explain a later error. */
static void
png_on_warning(png_structp png, png_const_charp msg)
{
	struct png_job *j = png_get_error_ptr(png);

	snprintf(j->warning, sizeof(j->warning), "%s", msg);
}

static void
png_read_mem(png_structp png, png_bytep out, size_t n)
{
	struct png_job *j = png_get_io_ptr(png);

	if (n > j->len - j->pos) {
		err_set(j->e, "PNG: truncated: %zu bytes wanted at byte %zu, the file has %zu",
		    n, j->pos, j->len);
		j->failed = 1;
		png_error(png, "truncated");
	}
	memcpy(out, j->data + j->pos, n);
	j->pos += n;
}

/* Pillow opens 16-bit gray as mode I;16 and its I;16 -> RGB conversion clips at 255 instead of
 * scaling; 16-bit RGB(A)/LA keep the high byte. Both are what convert("RGB") gives. */
static uint8_t
gray16_clip(const unsigned char *p)
{
	return p[0] ? 255 : p[1];
}

static int
decode(struct png_job *j, png_structp png, png_infop info, struct image *img,
    const struct image_limits *lim)
{
	png_uint_32 w, h;
	int depth, ctype, interlace, gray16;
	size_t rowbytes, chans;

	if (setjmp(png_jmpbuf(png)))
		return -1;
	png_set_read_fn(png, j, png_read_mem);
	png_set_chunk_malloc_max(png, (png_alloc_size_t)8 << 20);
	png_read_info(png, info);
	png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
	if (image_check_size(w, h, lim, j->e) < 0) {
		j->failed = 1;
		return -1;
	}
	gray16 = depth == 16 && (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA);
	if (ctype == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);	/* x255, x85, x17 as Pillow's 1/L;2/L;4 */
	if (depth == 16 && !(ctype == PNG_COLOR_TYPE_GRAY))
		png_set_strip_16(png);		/* high byte (RGB;16B, RGBA;16B, LA;16B) */
	/* convert("RGB") drops alpha with no compositing; that includes the alpha libpng's
	 * palette expansion makes from a tRNS chunk */
	png_set_strip_alpha(png);
	if ((ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) && !gray16)
		png_set_gray_to_rgb(png);
	if (ctype == PNG_COLOR_TYPE_GRAY_ALPHA && depth == 16)
		png_set_strip_16(png);		/* LA;16B: high byte, then replicated below */
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
	rowbytes = png_get_rowbytes(png, info);
	chans = png_get_channels(png, info);
	if ((j->raw = malloc(rowbytes * h)) == NULL || (j->rows = malloc(sizeof(png_bytep) * h)) == NULL ||
	    (j->rgb = malloc((size_t)w * h * 3)) == NULL) {
		j->failed = 1;
		return err_set(j->e, "PNG: out of memory for %ux%u", w, h);
	}
	for (png_uint_32 y = 0; y < h; y++)
		j->rows[y] = j->raw + rowbytes * y;
	png_read_image(png, j->rows);
	png_read_end(png, info);	/* an eXIf chunk may follow the pixels */
	if (ctype == PNG_COLOR_TYPE_GRAY && depth == 16) {
		if (chans != 1 || rowbytes != (size_t)w * 2) {
			j->failed = 1;
			return err_set(j->e, "PNG: unexpected row layout (%zu bytes for %u pixels)", rowbytes, w);
		}
		for (size_t i = 0; i < (size_t)w * h; i++)
			j->rgb[3 * i] = j->rgb[3 * i + 1] = j->rgb[3 * i + 2] = gray16_clip(j->raw + 2 * i);
	} else if (ctype == PNG_COLOR_TYPE_GRAY_ALPHA && depth == 16) {
		/* one byte per pixel left after strip_16 + strip_alpha */
		if (rowbytes != w) {
			j->failed = 1;
			return err_set(j->e, "PNG: unexpected row layout (%zu bytes for %u pixels)", rowbytes, w);
		}
		for (size_t i = 0; i < (size_t)w * h; i++)
			j->rgb[3 * i] = j->rgb[3 * i + 1] = j->rgb[3 * i + 2] = j->raw[i];
	} else {
		if (rowbytes != (size_t)w * 3) {
			j->failed = 1;
			return err_set(j->e, "PNG: unexpected row layout (%zu bytes for %u pixels)", rowbytes, w);
		}
		memcpy(j->rgb, j->raw, (size_t)w * h * 3);
	}
	img->w = w;
	img->h = h;
	img->rgb = j->rgb;
	j->rgb = NULL;
	if (!lim->keep_orientation) {
		png_bytep exif = NULL;
		png_uint_32 n = 0;

		if (png_get_eXIf_1(png, info, &n, &exif) && exif &&
		    image_orient(img, image_exif_orientation(exif, n), j->e) < 0) {
			j->failed = 1;
			image_free(img);
			return -1;
		}
	}
	return 0;
}

int
image_decode_png(struct image *img, const unsigned char *data, size_t len,
    const struct image_limits *lim, struct err *e)
{
	struct png_job j = { .data = data, .len = len, .e = e };
	png_structp png;
	png_infop info = NULL;
	int rc;

	png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, png_on_error, png_on_warning);
	if (png == NULL || (info = png_create_info_struct(png)) == NULL) {
		png_destroy_read_struct(&png, NULL, NULL);
		return err_set(e, "PNG: out of memory");
	}
	rc = decode(&j, png, info, img, lim);
	if (rc < 0 && !j.failed)
		err_set(e, "PNG: decoding failed");
	png_destroy_read_struct(&png, &info, NULL);
	free(j.raw);
	free(j.rows);
	free(j.rgb);
	return rc < 0 ? -1 : 0;
}
