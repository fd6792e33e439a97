/* image_jpeg.c - JPEG through libjpeg-turbo, converted to 8-bit RGB as Pillow's convert("RGB") does. */
#include "core/image_int.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

/* A progressive file can ask for thousands of scans over the same pixels (a CPU bomb); real
 * encoders write about ten. */
#define JPEG_MAX_SCANS 256

struct jpeg_job {
	struct jpeg_error_mgr mgr;	/* first: libjpeg hands us this pointer */
	struct jpeg_source_mgr src;
	struct jpeg_progress_mgr progress;
	jmp_buf jmp;
	const unsigned char *data;
	size_t len;
	struct err *e;
	int failed;
	int orientation;	/* EXIF, 1 when none */
	unsigned char *row;
	uint8_t *rgb;
};

static void
jpeg_on_error(j_common_ptr cinfo)
{
	struct jpeg_job *j = (struct jpeg_job *)cinfo->err;
	char msg[JMSG_LENGTH_MAX];

	if (!j->failed) {
		cinfo->err->format_message(cinfo, msg);
		err_set(j->e, "JPEG: %s (at byte %zu of %zu)", msg,
		    j->len - j->src.bytes_in_buffer, j->len);
	}
	j->failed = 1;
	longjmp(j->jmp, 1);
}

static void
jpeg_on_message(j_common_ptr cinfo)
{
	(void)cinfo;	/* warnings (extraneous bytes, ...) pass silently, as in Pillow */
}

static void
src_init(j_decompress_ptr cinfo)
{
	(void)cinfo;
}

/* The whole file is in the buffer from the start: asking for more means it was cut short.
 * (libjpeg would insert a fake EOI and return a gray-padded picture.) */
static boolean
src_fill(j_decompress_ptr cinfo)
{
	struct jpeg_job *j = (struct jpeg_job *)cinfo->err;

	if (!j->failed)
		err_set(j->e, "JPEG: truncated: the data ends at byte %zu before the image is complete",
		    j->len);
	j->failed = 1;
	longjmp(j->jmp, 1);
	return FALSE;
}

static void
src_skip(j_decompress_ptr cinfo, long n)
{
	struct jpeg_source_mgr *s = cinfo->src;

	if (n <= 0)
		return;
	if ((size_t)n > s->bytes_in_buffer) {
		s->next_input_byte += s->bytes_in_buffer;
		s->bytes_in_buffer = 0;
		src_fill(cinfo);
		return;
	}
	s->next_input_byte += n;
	s->bytes_in_buffer -= (size_t)n;
}

static void
src_term(j_decompress_ptr cinfo)
{
	(void)cinfo;
}

static void
on_progress(j_common_ptr cinfo)
{
	struct jpeg_job *j = (struct jpeg_job *)cinfo->err;
	j_decompress_ptr d = (j_decompress_ptr)cinfo;

	if (d->input_scan_number > JPEG_MAX_SCANS) {
		err_set(j->e, "JPEG: more than %d scans", JPEG_MAX_SCANS);
		j->failed = 1;
		longjmp(j->jmp, 1);
	}
}

/* Pillow reads 4-component files as "CMYK;I" (Adobe's inverted CMYK, libjpeg turning YCCK into
 * CMYK) and its cmyk2rgb gives r = nk - nk*c/255 with rounded division, nk = 255 - k. */
static uint8_t
cmyk_channel(unsigned stored_c, unsigned stored_k)
{
	unsigned c = 255 - stored_c, nk = stored_k;	/* k = 255 - stored_k */
	unsigned t = c * nk + 128;
	int v = (int)nk - (int)(((t >> 8) + t) >> 8);

	return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static int
decode(struct jpeg_job *j, struct jpeg_decompress_struct *d, struct image *img,
    const struct image_limits *lim)
{
	unsigned w, h, comps;

	if (setjmp(j->jmp))
		return -1;
	jpeg_create_decompress(d);
	j->src.init_source = src_init;
	j->src.fill_input_buffer = src_fill;
	j->src.skip_input_data = src_skip;
	j->src.resync_to_restart = jpeg_resync_to_restart;
	j->src.term_source = src_term;
	j->src.next_input_byte = j->data;
	j->src.bytes_in_buffer = j->len;
	d->src = &j->src;
	j->progress.progress_monitor = on_progress;
	d->progress = &j->progress;
	d->mem->max_memory_to_use = (long)512 << 20;
	if (!lim->keep_orientation)
		jpeg_save_markers(d, JPEG_APP0 + 1, 0xffff);
	jpeg_read_header(d, TRUE);
	for (jpeg_saved_marker_ptr m = d->marker_list; m; m = m->next)
		if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
		    memcmp(m->data, "Exif\0\0", 6) == 0) {
			j->orientation = image_exif_orientation(m->data, m->data_length);
			break;
		}
	if (image_check_size(d->image_width, d->image_height, lim, j->e) < 0) {
		j->failed = 1;
		return -1;
	}
	switch (d->jpeg_color_space) {
	case JCS_GRAYSCALE:
		d->out_color_space = JCS_GRAYSCALE;
		break;
	case JCS_CMYK:
	case JCS_YCCK:
		d->out_color_space = JCS_CMYK;
		break;
	default:
		d->out_color_space = JCS_RGB;
		break;
	}
	jpeg_start_decompress(d);
	w = d->output_width;
	h = d->output_height;
	comps = (unsigned)d->output_components;
	if ((comps != 1 && comps != 3 && comps != 4) || w != d->image_width || h != d->image_height) {
		j->failed = 1;
		return err_set(j->e, "JPEG: unexpected output layout (%u components)", comps);
	}
	if ((j->row = malloc((size_t)w * comps)) == NULL || (j->rgb = malloc((size_t)w * h * 3)) == NULL) {
		j->failed = 1;
		return err_set(j->e, "JPEG: out of memory for %ux%u", w, h);
	}
	while (d->output_scanline < h) {
		JSAMPROW rp = j->row;
		uint8_t *out = j->rgb + (size_t)d->output_scanline * w * 3;

		if (jpeg_read_scanlines(d, &rp, 1) != 1) {
			j->failed = 1;
			return err_set(j->e, "JPEG: no progress at row %u", d->output_scanline);
		}
		for (unsigned x = 0; x < w; x++) {
			const unsigned char *p = j->row + (size_t)x * comps;

			if (comps == 1) {
				out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = p[0];
			} else if (comps == 3) {
				memcpy(out + 3 * x, p, 3);
			} else {
				for (int c = 0; c < 3; c++)
					out[3 * x + c] = cmyk_channel(p[c], p[3]);
			}
		}
	}
	jpeg_finish_decompress(d);
	img->w = w;
	img->h = h;
	img->rgb = j->rgb;
	j->rgb = NULL;
	if (image_orient(img, j->orientation, j->e) < 0) {
		j->failed = 1;
		image_free(img);
		return -1;
	}
	return 0;
}

int
image_decode_jpeg(struct image *img, const unsigned char *data, size_t len,
    const struct image_limits *lim, struct err *e)
{
	struct jpeg_decompress_struct d;
	struct jpeg_job j;
	int rc;

	memset(&j, 0, sizeof(j));
	memset(&d, 0, sizeof(d));
	j.data = data;
	j.len = len;
	j.e = e;
	j.orientation = 1;
	d.err = jpeg_std_error(&j.mgr);
	j.mgr.error_exit = jpeg_on_error;
	j.mgr.output_message = jpeg_on_message;
	rc = decode(&j, &d, img, lim);
	if (rc < 0 && !j.failed)
		err_set(e, "JPEG: decoding failed");
	jpeg_destroy_decompress(&d);
	free(j.row);
	free(j.rgb);
	return rc < 0 ? -1 : 0;
}
