/* image.c - picks the decoder by signature, applies the limits, reads files. */
#include "core/image_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/mapfile.h"

void
image_limits_default(struct image_limits *l)
{
	l->max_bytes = (size_t)64 << 20;
	l->max_w = 16384;
	l->max_h = 16384;
	l->max_pixels = 40000000;
	l->keep_orientation = 0;
}

enum image_format
image_sniff(const void *data, size_t len)
{
	static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	const unsigned char *p = data;

	if (len >= 8 && memcmp(p, png_sig, 8) == 0)
		return IMAGE_FORMAT_PNG;
	if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
		return IMAGE_FORMAT_JPEG;
	return IMAGE_FORMAT_UNKNOWN;
}

int
image_check_size(uint64_t w, uint64_t h, const struct image_limits *lim, struct err *e)
{
	if (w == 0 || h == 0)
		return err_set(e, "image is %llux%llu: an empty image has nothing to look at",
		    (unsigned long long)w, (unsigned long long)h);
	if (w > lim->max_w || h > lim->max_h)
		return err_set(e, "image is %llux%llu: larger than the limit of %ux%u",
		    (unsigned long long)w, (unsigned long long)h, lim->max_w, lim->max_h);
	if (w * h > lim->max_pixels)	/* both <= 2^32, no overflow */
		return err_set(e, "image is %llux%llu = %llu pixels: more than the limit of %llu",
		    (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
		    (unsigned long long)lim->max_pixels);
	return 0;
}

int
image_decode(struct image *img, const void *data, size_t len, const struct image_limits *lim,
    struct err *e)
{
	struct image_limits def;

	memset(img, 0, sizeof(*img));
	if (lim == NULL) {
		image_limits_default(&def);
		lim = &def;
	}
	if (data == NULL || len == 0)
		return err_set(e, "image: no bytes");
	if (len > lim->max_bytes)
		return err_set(e, "image: %zu bytes, more than the limit of %zu", len, lim->max_bytes);
	switch (image_sniff(data, len)) {
	case IMAGE_FORMAT_PNG:
		return image_decode_png(img, data, len, lim, e);
	case IMAGE_FORMAT_JPEG:
		return image_decode_jpeg(img, data, len, lim, e);
	default:
		return err_set(e, "image: neither PNG nor JPEG (first bytes %02x %02x %02x %02x)",
		    ((const unsigned char *)data)[0], len > 1 ? ((const unsigned char *)data)[1] : 0,
		    len > 2 ? ((const unsigned char *)data)[2] : 0,
		    len > 3 ? ((const unsigned char *)data)[3] : 0);
	}
}

int
image_load(struct image *img, const char *path, const struct image_limits *lim, struct err *e)
{
	struct image_limits def;
	size_t len;
	char *buf;
	int rc;

	memset(img, 0, sizeof(*img));
	if (lim == NULL) {
		image_limits_default(&def);
		lim = &def;
	}
	/* read, not mapped: a file truncated while we decode must not raise SIGBUS */
	if ((buf = file_read_all(path, &len, lim->max_bytes, e)) == NULL)
		return -1;
	rc = image_decode(img, buf, len, lim, e);
	free(buf);
	if (rc < 0)
		err_prefix(e, "%s", path);
	return rc;
}

void
image_free(struct image *img)
{
	if (img == NULL)
		return;
	free(img->rgb);
	memset(img, 0, sizeof(*img));
}
