/* mpjson.c - msgpack to jansson, bounds-checked (see mpjson.h). A recursive descent with a
 * depth limit; the path to the current value is kept as a stack of keys and indexes and
 * only formatted when an error names it. Duplicate keys are found with the object's own
 * hash table (json_object_getn), so a map costs linear time in its size. */
#include "proto/mpjson.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/mp.h"
#include "util/buf.h"

struct seg {
	const char *key;	/* NULL: an array index */
	size_t klen, index;
};

struct dec {
	const unsigned char *p;
	size_t n, off;
	int depth;
	struct seg path[MP_MAX_DEPTH + 1];
	struct err *e;
};

/* "messages[1].content" for the current path (keys cut at 40 bytes) */
static void
path_format(const struct dec *d, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < d->depth && o + 1 < cap; i++) {
		const struct seg *s = &d->path[i];
		int w;
		if (s->key)
			w = snprintf(out + o, cap - o, "%s%.*s%s", o ? "." : "",
			    (int)(s->klen > 40 ? 40 : s->klen), s->key, s->klen > 40 ? "..." : "");
		else
			w = snprintf(out + o, cap - o, "[%zu]", s->index);
		if (w < 0)
			break;
		o += (size_t)w;
		if (o >= cap)
			o = cap - 1;
	}
}

/* fills e with "PATH: MESSAGE at byte OFF" and returns NULL */
__attribute__((format(printf, 3, 4)))
static json_t *
fail(struct dec *d, size_t at, const char *fmt, ...)
{
	char path[512], msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	path_format(d, path, sizeof(path));
	err_set(d->e, "%s%s%s at byte %zu", path, path[0] ? ": " : "", msg, at);
	return NULL;
}

/* k bytes at the cursor, or NULL when they are not there */
static const unsigned char *
take(struct dec *d, size_t k)
{
	if (k > d->n - d->off)
		return NULL;
	d->off += k;
	return d->p + d->off - k;
}

/* the string at the cursor after its header of h bytes (length in its last l bytes) */
static int
read_str(struct dec *d, size_t at, size_t h, size_t l, const char **s, size_t *len)
{
	const unsigned char *hp = take(d, h);

	if (hp == NULL)
		return fail(d, at, "truncated string header"), -1;
	*len = l ? (size_t)mp_be(hp + h - l, l) : (size_t)(hp[0] & 0x1f);
	const unsigned char *b = take(d, *len);
	if (b == NULL)
		return fail(d, at, "string of %zu bytes, only %zu left", *len, d->n - d->off), -1;
	*s = (const char *)b;
	size_t ok = utf8_valid_prefix(*s, *len);
	if (ok != *len)
		return fail(d, (size_t)(b - d->p) + ok, "invalid UTF-8"), -1;
	return 0;
}

/* the header of a string at the cursor: its size and length field width; -1 if not one */
static int
str_header(unsigned b, size_t *h, size_t *l)
{
	if ((b & 0xe0) == 0xa0) { *h = 1; *l = 0; return 0; }
	if (b == 0xd9) { *h = 2; *l = 1; return 0; }
	if (b == 0xda) { *h = 3; *l = 2; return 0; }
	if (b == 0xdb) { *h = 5; *l = 4; return 0; }
	return -1;
}

static json_t *value(struct dec *d);

static json_t *
array(struct dec *d, size_t at, uint64_t count)
{
	json_t *a;

	if (count > d->n - d->off)	/* each element needs a byte */
		return fail(d, at, "array of %llu elements, only %zu bytes left",
		    (unsigned long long)count, d->n - d->off);
	if ((a = json_array()) == NULL)
		return fail(d, at, "out of memory");
	d->path[d->depth].key = NULL;
	d->depth++;
	for (uint64_t i = 0; i < count; i++) {
		d->path[d->depth - 1].index = (size_t)i;
		json_t *v = value(d);
		if (v == NULL || json_array_append_new(a, v) == -1) {
			if (v != NULL)
				fail(d, d->off, "out of memory");
			json_decref(a);
			return NULL;
		}
	}
	d->depth--;
	return a;
}

static json_t *
map(struct dec *d, size_t at, uint64_t count)
{
	json_t *o;

	if (count > (d->n - d->off) / 2)	/* each pair needs two bytes */
		return fail(d, at, "map of %llu entries, only %zu bytes left",
		    (unsigned long long)count, d->n - d->off);
	if ((o = json_object()) == NULL)
		return fail(d, at, "out of memory");
	for (uint64_t i = 0; i < count; i++) {
		size_t kat = d->off, h, l, klen = 0;
		const char *k = NULL;
		if (d->off >= d->n || str_header(d->p[d->off], &h, &l) == -1) {
			json_decref(o);
			return fail(d, kat, d->off >= d->n ? "truncated map" : "map keys must be strings");
		}
		d->depth++;	/* errors in a key name the key's place */
		d->path[d->depth - 1].key = "(key)";
		d->path[d->depth - 1].klen = 5;
		int r = read_str(d, kat, h, l, &k, &klen);
		d->path[d->depth - 1].key = r == 0 ? k : "(key)";
		d->path[d->depth - 1].klen = r == 0 ? klen : 5;
		if (r == 0 && memchr(k, 0, klen) != NULL) {	/* JSON fronts cannot carry it */
			fail(d, kat, "a key with a NUL byte");
			r = -1;
		} else if (r == 0 && json_object_getn(o, k, klen) != NULL) {
			fail(d, kat, "duplicate key");
			r = -1;
		}
		json_t *v = r == 0 ? value(d) : NULL;
		d->depth--;
		if (v == NULL || json_object_setn_new_nocheck(o, k, klen, v) == -1) {
			if (v != NULL)
				fail(d, kat, "out of memory");
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static json_t *
value(struct dec *d)
{
	size_t at = d->off, h, l;
	const unsigned char *p;

	if (d->off >= d->n)
		return fail(d, at, "truncated: a value is missing");
	if (d->depth > MP_MAX_DEPTH)
		return fail(d, at, "nested deeper than %d levels", MP_MAX_DEPTH);
	unsigned b = d->p[d->off];
	if (b <= 0x7f || b >= 0xe0) {
		d->off++;
		json_t *j = json_integer(b <= 0x7f ? (json_int_t)b : (json_int_t)(int8_t)b);
		return j ? j : fail(d, at, "out of memory");
	}
	if (str_header(b, &h, &l) == 0) {
		const char *s;
		size_t len;
		if (read_str(d, at, h, l, &s, &len) == -1)
			return NULL;
		json_t *j = json_stringn_nocheck(s, len);
		return j ? j : fail(d, at, "out of memory");
	}
	if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90) {
		d->off++;
		return (b & 0xf0) == 0x80 ? map(d, at, b & 0x0f) : array(d, at, b & 0x0f);
	}
	switch (b) {
	case 0xc0: d->off++; return json_null();
	case 0xc2: d->off++; return json_false();
	case 0xc3: d->off++; return json_true();
	case 0xdc: case 0xdd: case 0xde: case 0xdf: {
		size_t k = b == 0xdc || b == 0xde ? 2 : 4;
		if ((p = take(d, 1 + k)) == NULL)
			return fail(d, at, "truncated header");
		uint64_t c = mp_be(p + 1, k);
		return b >= 0xde ? map(d, at, c) : array(d, at, c);
	}
	case 0xcc: case 0xcd: case 0xce: case 0xcf: {
		size_t k = (size_t)1 << (b - 0xcc);
		if ((p = take(d, 1 + k)) == NULL)
			return fail(d, at, "truncated integer");
		uint64_t v = mp_be(p + 1, k);
		if (v > INT64_MAX)
			return fail(d, at, "integer %llu is out of range (int64)", (unsigned long long)v);
		json_t *j = json_integer((json_int_t)v);
		return j ? j : fail(d, at, "out of memory");
	}
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
		size_t k = (size_t)1 << (b - 0xd0);
		if ((p = take(d, 1 + k)) == NULL)
			return fail(d, at, "truncated integer");
		uint64_t v = mp_be(p + 1, k);
		int64_t s;
		if (k == 1) s = (int8_t)v;
		else if (k == 2) s = (int16_t)v;
		else if (k == 4) s = (int32_t)v;
		else memcpy(&s, &v, 8);
		json_t *j = json_integer((json_int_t)s);
		return j ? j : fail(d, at, "out of memory");
	}
	case 0xca: case 0xcb: {
		double x;
		if ((p = take(d, b == 0xca ? 5 : 9)) == NULL)
			return fail(d, at, "truncated float");
		if (b == 0xca) {
			uint32_t u = (uint32_t)mp_be(p + 1, 4);
			float f;
			memcpy(&f, &u, 4);
			x = f;
		} else {
			uint64_t u = mp_be(p + 1, 8);
			memcpy(&x, &u, 8);
		}
		if (!isfinite(x))
			return fail(d, at, "a float must be finite");
		json_t *j = json_real(x);
		return j ? j : fail(d, at, "out of memory");
	}
	case 0xc4: case 0xc5: case 0xc6: {
		/* only as an image part's "data" (proto/imgpart.h), as {"$bin": bytes} */
		const struct seg *s = d->depth > 0 ? &d->path[d->depth - 1] : NULL;
		if (s == NULL || s->key == NULL || s->klen != 4 || memcmp(s->key, "data", 4) != 0)
			return fail(d, at, "binary values are not accepted (send text as a string; "
			    "binary is for an image part's data)");
		size_t h = b == 0xc4 ? 1 : b == 0xc5 ? 2 : 4;
		const unsigned char *hp = take(d, 1 + h);
		if (hp == NULL)
			return fail(d, at, "truncated binary header");
		size_t len = (size_t)mp_be(hp + 1, h);
		const unsigned char *body = take(d, len);
		if (body == NULL)
			return fail(d, at, "binary of %zu bytes, only %zu left", len, d->n - d->off);
		json_t *v = json_stringn_nocheck((const char *)body, len);
		json_t *j = v ? json_pack("{s:o}", "$bin", v) : NULL;
		return j ? j : fail(d, at, "out of memory");
	}
	case 0xc7: case 0xc8: case 0xc9: case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		return fail(d, at, "extension values are not accepted");
	}
	return fail(d, at, "invalid msgpack byte 0x%02x", b);
}

json_t *
mpjson_decode(const unsigned char *p, size_t n, struct err *e)
{
	struct dec d = { .p = p, .n = n, .e = e };
	json_t *j = value(&d);

	if (j != NULL && d.off != n) {
		json_decref(j);
		return fail(&d, d.off, "%zu bytes after the object", n - d.off);
	}
	return j;
}
