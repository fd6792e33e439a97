/* image_exif.c - the EXIF Orientation tag and the turn it asks for, as transformers' load_image
 * applies it (PIL.ImageOps.exif_transpose): a phone photo taken sideways arrives upright. */
#include "core/image_int.h"

#include <stdlib.h>
#include <string.h>

static uint32_t
rd16(const unsigned char *p, int be)
{
	return be ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t
rd32(const unsigned char *p, int be)
{
	return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] :
	    (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int
image_exif_orientation(const unsigned char *p, size_t n)
{
	uint32_t ifd, count;
	int be;

	if (n >= 6 && memcmp(p, "Exif\0\0", 6) == 0) {	/* JPEG's APP1 carries this prefix */
		p += 6;
		n -= 6;
	}
	if (n < 8)
		return 1;
	if (memcmp(p, "MM\0*", 4) == 0)
		be = 1;
	else if (memcmp(p, "II*\0", 4) == 0)
		be = 0;
	else
		return 1;
	ifd = rd32(p + 4, be);
	if (ifd > n - 2)
		return 1;
	count = rd16(p + ifd, be);
	for (uint32_t i = 0; i < count; i++) {
		size_t at = (size_t)ifd + 2 + (size_t)i * 12;
		uint32_t v;

		if (at + 12 > n)
			return 1;
		if (rd16(p + at, be) != 0x0112)
			continue;
		/* SHORT, one value, left-justified in the value field */
		if (rd16(p + at + 2, be) != 3 || rd32(p + at + 4, be) != 1)
			return 1;
		v = rd16(p + at + 8, be);
		return v >= 1 && v <= 8 ? (int)v : 1;
	}
	return 1;
}

int
image_orient(struct image *img, int o, struct err *e)
{
	uint32_t w = img->w, h = img->h, ow, oh;
	uint8_t *out;

	if (o < 2 || o > 8)
		return 0;
	ow = o >= 5 ? h : w;
	oh = o >= 5 ? w : h;
	if ((out = malloc((size_t)w * h * 3)) == NULL)
		return err_set(e, "image: out of memory turning %ux%u", w, h);
	for (uint32_t y = 0; y < oh; y++)
		for (uint32_t x = 0; x < ow; x++) {
			uint32_t sx, sy;

			switch (o) {
			case 2: sx = w - 1 - x; sy = y; break;			/* mirror */
			case 3: sx = w - 1 - x; sy = h - 1 - y; break;		/* 180 */
			case 4: sx = x; sy = h - 1 - y; break;			/* flip */
			case 5: sx = y; sy = x; break;				/* transpose */
			case 6: sx = y; sy = h - 1 - x; break;			/* 90 clockwise */
			case 7: sx = w - 1 - y; sy = h - 1 - x; break;		/* transverse */
			default: sx = w - 1 - y; sy = x; break;			/* 8: 90 counter-clockwise */
			}
			memcpy(out + ((size_t)y * ow + x) * 3, img->rgb + ((size_t)sy * w + sx) * 3, 3);
		}
	free(img->rgb);
	img->rgb = out;
	img->w = ow;
	img->h = oh;
	return 0;
}
