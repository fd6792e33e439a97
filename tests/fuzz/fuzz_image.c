/* fuzz_image.c - the PNG and JPEG decoders' wrappers on arbitrary bytes, and what a decoded picture
 * goes through next: the canvas choice and the Pillow-exact resize to a small size. The limits
 * are small so a mutated header cannot make one input slow; a decoded image outside them, a
 * failure without a message, or a resize that does not fill its output aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/image.h"
#include "core/imgprep.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_limits lim = { .max_bytes = 1 << 20, .max_w = 2048, .max_h = 2048,
		.max_pixels = 1 << 18 };
	struct imgprep_config c;
	struct imgprep_fit f;
	struct image img, rs;
	struct err e;

	e.msg[0] = '\0';
	if (image_decode(&img, data, size, &lim, &e) < 0) {
		if (e.msg[0] == '\0' || img.rgb != NULL)
			abort();
		return 0;
	}
	if (img.w == 0 || img.h == 0 || img.w > lim.max_w || img.h > lim.max_h ||
	    (uint64_t)img.w * img.h > lim.max_pixels)
		abort();
	imgprep_config_default(&c);
	if (imgprep_fit(&c, img.w, img.h, &f, &e) < 0 || f.aspect_ratio_id < 1 || f.resized_w == 0 ||
	    f.resized_h == 0 || f.resized_w > f.w_tiles * c.tile || f.resized_h > f.h_tiles * c.tile)
		abort();
	/* a small target from the picture's own size: shrinking and growing both get exercised */
	uint32_t w = 1 + (img.w * 7 + img.rgb[0]) % 64, h = 1 + (img.h * 5 + img.rgb[1]) % 64;
	if (imgprep_resize_bilinear(&img, w, h, &rs, &e) < 0 || rs.w != w || rs.h != h)
		abort();
	volatile uint8_t sink = rs.rgb[(size_t)w * h * 3 - 1];
	(void)sink;
	image_free(&rs);
	image_free(&img);
	return 0;
}
