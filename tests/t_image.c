/* t_image.c - the PNG/JPEG decoders on files made here with libpng and libjpeg: every colour type and
 * bit depth converted as Pillow's convert("RGB") does, and hostile files (truncated at every byte,
 * corrupt, huge or zero declared sizes, unsupported precision) refused with a clear message. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>

#include "core/image.h"
#include "tap.h"

struct membuf {
	unsigned char *p;
	size_t n, cap;
};

static void
mb_put(struct membuf *m, const void *d, size_t n)
{
	if (m->n + n > m->cap) {
		m->cap = (m->n + n) * 2;
		if ((m->p = realloc(m->p, m->cap)) == NULL)
			abort();
	}
	memcpy(m->p + m->n, d, n);
	m->n += n;
}

static void
png_put(png_structp png, png_bytep d, size_t n)
{
	mb_put(png_get_io_ptr(png), d, n);
}

static void
png_flush_none(png_structp png)
{
	(void)png;
}

/* an eXIf chunk for the next png_make / APP1 for jpeg_make (0: none) */
static png_byte png_exif[64];
static size_t png_exif_n;

/* A PNG of w x h from packed rows (rowbytes each, 16-bit samples big-endian). */
static struct membuf
png_make(uint32_t w, uint32_t h, int depth, int ctype, int interlace, const uint8_t *data,
    const png_color *pal, int npal, const uint8_t *trns, int ntrns)
{
	struct membuf m = { 0 };
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png_create_info_struct(png);
	int ch = ctype == PNG_COLOR_TYPE_RGB ? 3 : ctype == PNG_COLOR_TYPE_RGBA ? 4 :
	    ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
	size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;

	if (setjmp(png_jmpbuf(png)))
		abort();
	png_set_write_fn(png, &m, png_put, png_flush_none);
	png_set_IHDR(png, info, w, h, depth, ctype, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
	    PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (pal)
		png_set_PLTE(png, info, pal, npal);
	if (trns)
		png_set_tRNS(png, info, trns, ntrns, NULL);
	if (png_exif_n)
		png_set_eXIf_1(png, info, (png_uint_32)png_exif_n, png_exif);
	png_write_info(png, info);
	png_bytep *rows = malloc(sizeof(png_bytep) * h);
	for (uint32_t y = 0; y < h; y++)
		rows[y] = (png_bytep)data + rowbytes * y;
	png_write_image(png, rows);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(rows);
	return m;
}

/* JPEG at quality 100 from interleaved samples in space cs (RGB, gray, CMYK); store: the colour
 * space written (YCbCr, gray, CMYK or YCCK). */
static struct membuf
jpeg_make(uint32_t w, uint32_t h, J_COLOR_SPACE cs, int comps, J_COLOR_SPACE store, int progressive,
    const uint8_t *data)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr jerr;
	unsigned char *out = NULL;
	unsigned long n = 0;
	struct membuf m = { 0 };

	c.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &out, &n);
	c.image_width = w;
	c.image_height = h;
	c.input_components = comps;
	c.in_color_space = cs;
	jpeg_set_defaults(&c);
	jpeg_set_colorspace(&c, store);
	for (int i = 0; i < c.num_components; i++)	/* no chroma subsampling: flat blocks stay flat */
		c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
	jpeg_set_quality(&c, 100, TRUE);
	if (progressive)
		jpeg_simple_progression(&c);
	jpeg_start_compress(&c, TRUE);
	if (png_exif_n) {
		unsigned char app1[80];

		memcpy(app1, "Exif\0\0", 6);
		memcpy(app1 + 6, png_exif, png_exif_n);
		jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)(6 + png_exif_n));
	}
	while (c.next_scanline < h) {
		JSAMPROW r = (JSAMPROW)(data + (size_t)c.next_scanline * w * comps);
		jpeg_write_scanlines(&c, &r, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	mb_put(&m, out, n);
	free(out);
	return m;
}

static uint32_t
crc32_png(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

static void
be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Rewrites the IHDR size of a PNG made by png_make, with a valid CRC. */
static void
png_set_size(struct membuf *m, uint32_t w, uint32_t h)
{
	be32(m->p + 16, w);
	be32(m->p + 20, h);
	be32(m->p + 29, crc32_png(m->p + 12, 17));
}

/* Shortens the PLTE chunk to n entries (libpng's writer refuses indices past the palette; a
 * hostile file has them). */
static void
png_cut_palette(struct membuf *m, uint32_t n)
{
	for (size_t i = 8; i + 8 <= m->n; i++)
		if (memcmp(m->p + i + 4, "PLTE", 4) == 0) {
			uint32_t old = (uint32_t)m->p[i] << 24 | (uint32_t)m->p[i + 1] << 16 |
			    (uint32_t)m->p[i + 2] << 8 | m->p[i + 3];
			size_t drop = old - 3 * n, end = i + 8 + old + 4;

			be32(m->p + i, 3 * n);
			be32(m->p + i + 8 + 3 * n, crc32_png(m->p + i + 4, 4 + 3 * n));
			memmove(m->p + i + 8 + 3 * n + 4, m->p + end, m->n - end);
			m->n -= drop;
			return;
		}
}

static int
decodes_to(const struct membuf *m, uint32_t w, uint32_t h, const uint8_t *want, int tol,
    const char *what)
{
	struct image img;
	struct err e;
	int worst = 0;

	if (!ok(image_decode(&img, m->p, m->n, NULL, &e) == 0, "%s: decodes", what)) {
		diag("%s", e.msg);
		return 0;
	}
	if (!ok(img.w == w && img.h == h, "%s: %ux%u (got %ux%u)", what, w, h, img.w, img.h)) {
		image_free(&img);
		return 0;
	}
	for (size_t i = 0; i < (size_t)w * h * 3; i++) {
		int d = abs((int)img.rgb[i] - (int)want[i]);
		if (d > worst)
			worst = d;
	}
	ok(worst <= tol, "%s: pixels as Pillow's convert(\"RGB\") %s (largest difference %d)", what,
	    tol ? "within the JPEG loss" : "exactly", worst);
	image_free(&img);
	return 1;
}

static void
refused(const void *p, size_t n, const struct image_limits *lim, const char *needle, const char *what)
{
	struct image img;
	struct err e;

	memset(&e, 0, sizeof(e));
	int rc = image_decode(&img, p, n, lim, &e);
	ok(rc < 0 && img.rgb == NULL && img.w == 0 && strstr(e.msg, needle) != NULL,
	    "%s: refused, saying \"%s\": %s", what, needle, e.msg);
}

#define W 7
#define H 5

/* a W x H PNG of data, without palette, decodes to want */
static void
png_case(int depth, int ctype, int interlace, const uint8_t *data, const uint8_t *want,
    const char *what)
{
	struct membuf m = png_make(W, H, depth, ctype, interlace, data, NULL, 0, NULL, 0);

	decodes_to(&m, W, H, want, 0, what);
	free(m.p);
}

/* want gray: byte stride * i of src in the three channels of pixel i */
static void
gray_want(uint8_t *want, const uint8_t *src, int stride)
{
	for (int i = 0; i < W * H; i++)
		want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = src[stride * i];
}

static void
png_types(void)
{
	uint8_t src[W * H * 8], want[W * H * 3];
	static const png_color pal[5] = { { 255, 0, 0 }, { 0, 255, 0 }, { 0, 0, 255 }, { 9, 99, 199 },
		{ 250, 128, 3 } };
	static const uint8_t trns[5] = { 0, 128, 255, 255, 7 };
	struct membuf m;

	srand(7);
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(rand() >> 7);

	png_case(8, PNG_COLOR_TYPE_RGB, 0, src, src, "PNG RGB 8-bit");
	png_case(8, PNG_COLOR_TYPE_RGB, 1, src, src, "PNG RGB 8-bit interlaced");

	for (int i = 0; i < W * H; i++)
		memcpy(want + 3 * i, src + 4 * i, 3);	/* alpha dropped, no compositing */
	png_case(8, PNG_COLOR_TYPE_RGBA, 0, src, want, "PNG RGBA 8-bit");
	gray_want(want, src, 1);
	png_case(8, PNG_COLOR_TYPE_GRAY, 0, src, want, "PNG gray 8-bit");
	gray_want(want, src, 2);
	png_case(8, PNG_COLOR_TYPE_GRAY_ALPHA, 0, src, want, "PNG gray+alpha 8-bit");

	/* 16-bit RGB(A) and LA: Pillow keeps the high byte */
	for (int i = 0; i < W * H * 3; i++)
		want[i] = src[2 * i];
	png_case(16, PNG_COLOR_TYPE_RGB, 0, src, want, "PNG RGB 16-bit (high byte)");
	for (int i = 0; i < W * H; i++)
		for (int c = 0; c < 3; c++)
			want[3 * i + c] = src[8 * i + 2 * c];
	png_case(16, PNG_COLOR_TYPE_RGBA, 0, src, want, "PNG RGBA 16-bit (high byte, alpha dropped)");
	gray_want(want, src, 4);
	png_case(16, PNG_COLOR_TYPE_GRAY_ALPHA, 0, src, want, "PNG gray+alpha 16-bit (high byte)");

	/* 16-bit gray: Pillow's mode I;16, whose RGB conversion clips at 255 */
	{
		uint8_t g[W * H * 2];

		for (int i = 0; i < W * H; i++) {
			g[2 * i] = i % 3 == 0 ? 0 : src[2 * i];
			g[2 * i + 1] = src[2 * i + 1];
			want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = g[2 * i] ? 255 : g[2 * i + 1];
		}
		png_case(16, PNG_COLOR_TYPE_GRAY, 0, g, want,
		    "PNG gray 16-bit (clipped at 255 as Pillow's I;16)");
	}

	/* palette, 8-bit and 4-bit, with tRNS (ignored by convert("RGB")) */
	{
		uint8_t idx[W * H], packed[H * 4];

		memset(packed, 0, sizeof(packed));
		for (int i = 0; i < W * H; i++) {
			idx[i] = (uint8_t)(src[i] % 5);
			memcpy(want + 3 * i, &pal[idx[i]], 3);
			int y = i / W, x = i % W;
			packed[y * 4 + x / 2] |= (uint8_t)(idx[i] << (x % 2 ? 0 : 4));
		}
		m = png_make(W, H, 8, PNG_COLOR_TYPE_PALETTE, 0, idx, pal, 5, trns, 5);
		decodes_to(&m, W, H, want, 0, "PNG palette 8-bit with tRNS");
		free(m.p);
		m = png_make(W, H, 4, PNG_COLOR_TYPE_PALETTE, 0, packed, pal, 5, NULL, 0);
		decodes_to(&m, W, H, want, 0, "PNG palette 4-bit");
		free(m.p);
		/* indices past a 3-entry palette: black, as Pillow's zeroed palette gives them */
		for (int i = 0; i < W * H; i++)
			if (idx[i] >= 3)
				memset(want + 3 * i, 0, 3);
		m = png_make(W, H, 8, PNG_COLOR_TYPE_PALETTE, 0, idx, pal, 5, NULL, 0);
		png_cut_palette(&m, 3);
		decodes_to(&m, W, H, want, 0, "PNG palette with indices past its 3 entries");
		free(m.p);
	}

	/* 1-, 2- and 4-bit gray: scaled to 0..255 (Pillow's 1, L;2, L;4) */
	for (int depth = 1; depth <= 4; depth *= 2) {
		uint8_t packed[H * 4];
		char what[64];
		int maxv = (1 << depth) - 1, stride = (W * depth + 7) / 8;

		memset(packed, 0, sizeof(packed));
		for (int i = 0; i < W * H; i++) {
			int y = i / W, x = i % W, v = src[i] & maxv, per = 8 / depth;

			packed[y * stride + x / per] |= (uint8_t)(v << (8 - depth * (x % per + 1)));
			want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = (uint8_t)(v * 255 / maxv);
		}
		m = png_make(W, H, depth, PNG_COLOR_TYPE_GRAY, 0, packed, NULL, 0, NULL, 0);
		snprintf(what, sizeof(what), "PNG gray %d-bit", depth);
		decodes_to(&m, W, H, want, 0, what);
		free(m.p);
	}
}

static void
png_hostile(void)
{
	uint8_t src[64 * 48 * 3];
	struct membuf m;
	struct image_limits lim;
	struct image img;
	struct err e;
	size_t n_refused = 0, n_named = 0;

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + (i >> 5));
	m = png_make(64, 48, 8, PNG_COLOR_TYPE_RGB, 0, src, NULL, 0, NULL, 0);
	/* every strict prefix is an error, and one naming where the bytes ran out or libpng's reason */
	for (size_t cut = 0; cut < m.n; cut++) {
		if (image_decode(&img, m.p, cut, NULL, &e) < 0) {
			n_refused++;
			n_named += strstr(e.msg, "truncated") != NULL || strstr(e.msg, "PNG: ") != NULL ||
			    strstr(e.msg, "neither PNG") != NULL || strstr(e.msg, "no bytes") != NULL;
		} else {
			diag("cut at %zu of %zu decoded", cut, m.n);
			image_free(&img);
		}
	}
	ok(n_refused == m.n && n_named == m.n, "PNG cut at each of its %zu bytes: all refused (%zu), "
	    "all with a message", m.n, n_refused);
	refused(m.p, m.n / 2, NULL, "truncated", "PNG cut in half");
	refused(m.p, m.n / 2, NULL, "the file has", "PNG cut in half names the byte counts");

	/* a flipped byte inside IDAT: libpng's CRC check */
	m.p[m.n / 2] ^= 0x55;
	refused(m.p, m.n, NULL, "PNG: ", "PNG with a corrupt IDAT");
	m.p[m.n / 2] ^= 0x55;

	png_set_size(&m, 100000, 100000);
	refused(m.p, m.n, NULL, "limit", "PNG declaring 100000x100000");
	png_set_size(&m, 10000, 10000);
	refused(m.p, m.n, NULL, "pixels", "PNG declaring 10000x10000 (100 megapixels)");
	png_set_size(&m, 0, 0);
	refused(m.p, m.n, NULL, "PNG: ", "PNG declaring 0x0");
	png_set_size(&m, 64, 0);
	refused(m.p, m.n, NULL, "PNG: ", "PNG declaring 64x0");
	png_set_size(&m, 64, 4800);
	refused(m.p, m.n, NULL, "PNG: ", "PNG declaring more rows than its data holds");
	png_set_size(&m, 64, 48);
	ok(image_decode(&img, m.p, m.n, NULL, &e) == 0, "the same PNG restored decodes");
	image_free(&img);

	image_limits_default(&lim);
	lim.max_w = 32;
	refused(m.p, m.n, &lim, "32x", "PNG wider than a 32-pixel limit");
	image_limits_default(&lim);
	lim.max_bytes = 100;
	refused(m.p, m.n, &lim, "limit of 100", "PNG over a 100-byte limit");
	free(m.p);

	refused("GIF89a....", 10, NULL, "neither PNG nor JPEG", "a GIF");
	refused("", 0, NULL, "no bytes", "no bytes");
	refused("\x89PNG\r\n\x1a\n", 8, NULL, "truncated", "a bare PNG signature");
}

static void
jpeg_types(void)
{
	enum { JW = 32, JH = 16 };
	uint8_t rgb[JW * JH * 3], gray[JW * JH], cmyk[JW * JH * 4], want[JW * JH * 3];
	static const uint8_t colours[4][3] = { { 200, 30, 60 }, { 10, 220, 90 }, { 250, 250, 250 },
		{ 40, 40, 160 } };
	/* ink amounts C, M, Y, K; stored inverted as Adobe (and Pillow) write CMYK */
	static const uint8_t inks[4][4] = { { 0, 255, 255, 0 }, { 128, 0, 64, 32 }, { 0, 0, 0, 0 },
		{ 30, 60, 90, 200 } };
	struct membuf m;

	/* flat 8x8-aligned blocks: quality 100 reproduces them within a level or two */
	for (int y = 0; y < JH; y++)
		for (int x = 0; x < JW; x++) {
			int b = x / 8, i = y * JW + x;

			memcpy(rgb + 3 * i, colours[b], 3);
			gray[i] = (uint8_t)(30 + 60 * b);
			for (int c = 0; c < 4; c++)
				cmyk[4 * i + c] = (uint8_t)(255 - inks[b][c]);
		}
	m = jpeg_make(JW, JH, JCS_RGB, 3, JCS_YCbCr, 0, rgb);
	decodes_to(&m, JW, JH, rgb, 2, "JPEG YCbCr");
	free(m.p);
	m = jpeg_make(JW, JH, JCS_RGB, 3, JCS_YCbCr, 1, rgb);
	decodes_to(&m, JW, JH, rgb, 2, "JPEG progressive");
	free(m.p);
	for (int i = 0; i < JW * JH; i++)
		want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = gray[i];
	m = jpeg_make(JW, JH, JCS_GRAYSCALE, 1, JCS_GRAYSCALE, 0, gray);
	decodes_to(&m, JW, JH, want, 1, "JPEG grayscale");
	free(m.p);
	/* Pillow: r = (255 - C)(255 - K)/255 in ink terms */
	for (int i = 0; i < JW * JH; i++) {
		int b = (i % JW) / 8;

		for (int c = 0; c < 3; c++)
			want[3 * i + c] = (uint8_t)((255 - inks[b][c]) * (255 - inks[b][3]) / 255);
	}
	m = jpeg_make(JW, JH, JCS_CMYK, 4, JCS_CMYK, 0, cmyk);
	decodes_to(&m, JW, JH, want, 3, "JPEG CMYK (Adobe inverted)");
	free(m.p);
	m = jpeg_make(JW, JH, JCS_CMYK, 4, JCS_YCCK, 0, cmyk);
	decodes_to(&m, JW, JH, want, 3, "JPEG YCCK");
	free(m.p);
}

/* offset of the first SOFn marker's length field, or 0 */
static size_t
jpeg_sof(const struct membuf *m)
{
	for (size_t i = 2; i + 9 < m->n; i++)
		if (m->p[i] == 0xff && (m->p[i + 1] == 0xc0 || m->p[i + 1] == 0xc2))
			return i + 2;
	return 0;
}

static void
jpeg_hostile(void)
{
	enum { JW = 48, JH = 32 };
	uint8_t rgb[JW * JH * 3];
	struct membuf m;
	struct image img;
	struct err e;
	size_t n_refused = 0, n_named = 0, sof;

	for (size_t i = 0; i < sizeof(rgb); i++)
		rgb[i] = (uint8_t)(i * 13 + (i >> 4));
	m = jpeg_make(JW, JH, JCS_RGB, 3, JCS_YCbCr, 0, rgb);
	for (size_t cut = 0; cut < m.n; cut++) {
		if (image_decode(&img, m.p, cut, NULL, &e) < 0) {
			n_refused++;
			n_named += strstr(e.msg, "JPEG: ") != NULL || strstr(e.msg, "neither PNG") != NULL ||
			    strstr(e.msg, "no bytes") != NULL;
		} else {
			diag("cut at %zu of %zu decoded", cut, m.n);
			image_free(&img);
		}
	}
	ok(n_refused == m.n && n_named == m.n, "JPEG cut at each of its %zu bytes: all refused (%zu), "
	    "with a message", m.n, n_refused);
	refused(m.p, m.n - 200, NULL, "truncated", "JPEG cut short in its scan");
	{
		char want[64];

		snprintf(want, sizeof(want), "byte %zu", m.n - 200);
		refused(m.p, m.n - 200, NULL, want, "JPEG cut short names the byte");
	}
	if (!ok((sof = jpeg_sof(&m)) != 0, "JPEG has an SOF marker"))
		return;
	/* SOF: length(2) precision(1) height(2) width(2) */
	m.p[sof + 3] = 0xea;
	m.p[sof + 4] = 0x60;
	m.p[sof + 5] = 0xea;
	m.p[sof + 6] = 0x60;
	refused(m.p, m.n, NULL, "limit", "JPEG declaring 60000x60000");
	m.p[sof + 3] = 0;
	m.p[sof + 4] = 0;
	refused(m.p, m.n, NULL, "JPEG: ", "JPEG declaring height 0");
	m.p[sof + 3] = 0;
	m.p[sof + 4] = JH;
	m.p[sof + 5] = 0;
	m.p[sof + 6] = JW;
	ok(image_decode(&img, m.p, m.n, NULL, &e) == 0 && img.w == JW, "the same JPEG restored decodes");
	image_free(&img);
	m.p[sof + 2] = 12;
	refused(m.p, m.n, NULL, "JPEG: ", "JPEG with 12-bit samples");
	m.p[sof + 2] = 8;
	/* garbage over the middle of the entropy-coded data: an error or a picture of the declared
	 * size (libjpeg resynchronises, as Pillow accepts), never a crash */
	for (size_t i = m.n / 2; i < m.n / 2 + 64; i++)
		m.p[i] = (uint8_t)(i * 37);
	int rc = image_decode(&img, m.p, m.n, NULL, &e);
	ok(rc < 0 ? strstr(e.msg, "JPEG: ") != NULL : (img.w == JW && img.h == JH),
	    "JPEG with garbage in its scan: %s", rc < 0 ? e.msg : "decoded at its size");
	image_free(&img);
	free(m.p);
}

/* A TIFF block with Orientation = o (big- or little-endian), after a dummy tag. */
static void
set_exif(int o, int be)
{
	static const unsigned char mm[] = { 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 2,
		0x01, 0x0f, 0, 2, 0, 0, 0, 4, 'A', 'B', 'C', 0,		/* Make "ABC" */
		0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0,		/* Orientation */
		0, 0, 0, 0 };
	static const unsigned char ii[] = { 'I', 'I', 42, 0, 8, 0, 0, 0, 2, 0,
		0x0f, 0x01, 2, 0, 4, 0, 0, 0, 'A', 'B', 'C', 0,
		0x12, 0x01, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0 };

	memcpy(png_exif, be ? mm : ii, sizeof(mm));
	png_exif[be ? 31 : 30] = (unsigned char)o;
	png_exif_n = sizeof(mm);
}

/* EXIF orientation: a 3x2 picture a b c / d e f in each of the 8 orientations, as Pillow's
 * ImageOps.exif_transpose turns it (written out by hand from the EXIF definitions). */
static void
orientation(void)
{
	static const char *const want[9] = { NULL, "abc" "def", "cba" "fed", "fed" "cba", "def" "abc",
		"ad" "be" "cf", "da" "eb" "fc", "fc" "eb" "da", "cf" "be" "ad" };
	uint8_t px[6 * 3], exp[6 * 3];
	struct image_limits keep;

	for (int i = 0; i < 6; i++)
		px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = (uint8_t)('a' + i);
	image_limits_default(&keep);
	keep.keep_orientation = 1;
	for (int o = 1; o <= 8; o++) {
		int turned = o >= 5;
		char what[64];
		struct membuf m;
		struct image img;
		struct err e;

		for (int i = 0; i < 6; i++)
			exp[3 * i] = exp[3 * i + 1] = exp[3 * i + 2] = (uint8_t)want[o][i];
		set_exif(o, o % 2);
		m = png_make(3, 2, 8, PNG_COLOR_TYPE_RGB, 0, px, NULL, 0, NULL, 0);
		snprintf(what, sizeof(what), "PNG eXIf orientation %d", o);
		decodes_to(&m, turned ? 2 : 3, turned ? 3 : 2, exp, 0, what);
		ok(image_decode(&img, m.p, m.n, &keep, &e) == 0 && img.w == 3 && memcmp(img.rgb, px, 18) == 0,
		    "%s: kept as stored with keep_orientation", what);
		image_free(&img);
		free(m.p);
	}
	/* JPEG: 16x8 blocks of flat grey so the loss stays small: a b / c d -> orientation 6 */
	{
		uint8_t g[32 * 16], want6[16 * 32 * 3];
		struct membuf m;

		for (int y = 0; y < 16; y++)
			for (int x = 0; x < 32; x++)
				g[y * 32 + x] = (uint8_t)(40 + 60 * (y / 8 * 2 + x / 16));
		/* 90 clockwise: out(x, y) = in(y, h - 1 - x), out is 16 wide, 32 high */
		for (int y = 0; y < 32; y++)
			for (int x = 0; x < 16; x++)
				want6[3 * (y * 16 + x)] = want6[3 * (y * 16 + x) + 1] =
				    want6[3 * (y * 16 + x) + 2] = g[(15 - x) * 32 + y];
		set_exif(6, 0);
		m = jpeg_make(32, 16, JCS_GRAYSCALE, 1, JCS_GRAYSCALE, 0, g);
		decodes_to(&m, 16, 32, want6, 1, "JPEG APP1 Exif orientation 6 (little-endian)");
		free(m.p);
	}
	/* malformed EXIF blocks are ignored, never read past their end */
	{
		uint8_t g[8 * 8];
		struct membuf m;

		memset(g, 77, sizeof(g));
		set_exif(6, 1);
		png_exif[9] = 200;	/* 200 entries claimed, 2 present */
		png_exif[23] = 0x11;	/* and the Orientation tag renamed */
		m = png_make(8, 8, 8, PNG_COLOR_TYPE_GRAY, 0, g, NULL, 0, NULL, 0);
		{
			uint8_t w3[8 * 8 * 3];
			memset(w3, 77, sizeof(w3));
			decodes_to(&m, 8, 8, w3, 0, "PNG with an EXIF IFD claiming 200 entries in 36 bytes");
		}
		free(m.p);
	}
	png_exif_n = 0;
}

static void
files(void)
{
	char path[] = "/tmp/t_image.XXXXXX";
	uint8_t src[4 * 3 * 3] = { 1, 2, 3 };
	struct membuf m = png_make(4, 3, 8, PNG_COLOR_TYPE_RGB, 0, src, NULL, 0, NULL, 0);
	struct image img;
	struct err e;
	int fd = mkstemp(path);

	if (!ok(fd >= 0 && write(fd, m.p, m.n) == (ssize_t)m.n, "write a PNG file"))
		return;
	close(fd);
	ok(image_load(&img, path, NULL, &e) == 0 && img.w == 4 && img.h == 3 && img.rgb[2] == 3,
	    "image_load reads it");
	image_free(&img);
	image_free(&img);	/* twice is fine */
	truncate(path, (off_t)(m.n - 20));
	ok(image_load(&img, path, NULL, &e) < 0 && strncmp(e.msg, path, strlen(path)) == 0,
	    "a truncated file's error starts with its path: %s", e.msg);
	unlink(path);
	ok(image_load(&img, path, NULL, &e) < 0 && strstr(e.msg, path) != NULL,
	    "a missing file: %s", e.msg);
	ok(image_load(&img, "/tmp", NULL, &e) < 0, "a directory: %s", e.msg);
	free(m.p);
}

static void
put_seed(const char *dir, const char *name, struct membuf m)
{
	char path[4200];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL || fwrite(m.p, 1, m.n, fp) != m.n || fclose(fp) != 0) {
		perror(path);
		exit(1);
	}
	free(m.p);
}

/* t_image --seeds DIR: the fuzz corpus's seeds (tests/fuzz/corpus/image), one file per decoder
 * path: colour types, depths, interlacing, palettes, JPEG colour spaces, progressive. */
static int
write_seeds(const char *dir)
{
	static const png_color pal[3] = { { 255, 0, 0 }, { 0, 255, 0 }, { 7, 8, 9 } };
	static const uint8_t trns[1] = { 0 };
	uint8_t px[16 * 16 * 8];

	for (size_t i = 0; i < sizeof(px); i++)
		px[i] = (uint8_t)(i * 29 + (i >> 3));
	put_seed(dir, "rgb8.png", png_make(9, 7, 8, PNG_COLOR_TYPE_RGB, 0, px, NULL, 0, NULL, 0));
	put_seed(dir, "rgb8-adam7.png", png_make(9, 7, 8, PNG_COLOR_TYPE_RGB, 1, px, NULL, 0, NULL, 0));
	put_seed(dir, "rgba16.png", png_make(5, 3, 16, PNG_COLOR_TYPE_RGBA, 0, px, NULL, 0, NULL, 0));
	put_seed(dir, "gray16.png", png_make(5, 3, 16, PNG_COLOR_TYPE_GRAY, 0, px, NULL, 0, NULL, 0));
	put_seed(dir, "gray2.png", png_make(9, 3, 2, PNG_COLOR_TYPE_GRAY, 0, px, NULL, 0, NULL, 0));
	put_seed(dir, "ga8.png", png_make(5, 3, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 0, px, NULL, 0, NULL, 0));
	for (size_t i = 0; i < 64; i++)
		px[i] %= 3;
	put_seed(dir, "pal8-trns.png", png_make(8, 8, 8, PNG_COLOR_TYPE_PALETTE, 0, px, pal, 3, trns, 1));
	for (size_t i = 0; i < sizeof(px); i++)
		px[i] = (uint8_t)(i * 29 + (i >> 3));
	put_seed(dir, "ycbcr.jpg", jpeg_make(16, 16, JCS_RGB, 3, JCS_YCbCr, 0, px));
	put_seed(dir, "progressive.jpg", jpeg_make(16, 16, JCS_RGB, 3, JCS_YCbCr, 1, px));
	put_seed(dir, "gray.jpg", jpeg_make(16, 8, JCS_GRAYSCALE, 1, JCS_GRAYSCALE, 0, px));
	put_seed(dir, "cmyk.jpg", jpeg_make(8, 8, JCS_CMYK, 4, JCS_CMYK, 0, px));
	put_seed(dir, "ycck.jpg", jpeg_make(8, 8, JCS_CMYK, 4, JCS_YCCK, 0, px));
	set_exif(6, 0);
	put_seed(dir, "exif6.jpg", jpeg_make(16, 8, JCS_RGB, 3, JCS_YCbCr, 0, px));
	set_exif(5, 1);
	put_seed(dir, "exif5.png", png_make(5, 3, 8, PNG_COLOR_TYPE_RGB, 0, px, NULL, 0, NULL, 0));
	png_exif_n = 0;
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--seeds") == 0)
		return write_seeds(argv[2]);
	png_types();
	png_hostile();
	jpeg_types();
	jpeg_hostile();
	orientation();
	files();
	return done_testing();
}
