/* imgpart.c - image parts out of a request's messages (see imgpart.h). */
#include "proto/imgpart.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/b64.h"

struct walk {
	const struct proto_limits *l;
	struct request *r;
	size_t max_images, max_bytes;
	enum proto_status st;
	struct err *e;
};

static int
is_str(const json_t *j, const char *want)
{
	return json_is_string(j) && json_string_length(j) == strlen(want) &&
	    strcmp(json_string_value(j), want) == 0;
}

/* "messages[i].content[k]" into where */
static void
where_of(char *where, size_t cap, size_t i, size_t k)
{
	snprintf(where, cap, "messages[%zu].content[%zu]", i, k);
}

__attribute__((format(printf, 4, 5)))
static int
fail(struct walk *w, enum proto_status st, const char *where, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w->st = st;
	return err_set(w->e, "%s%s", where, msg);
}

/* one image's bytes (raw, or base64 text when b64) onto the request */
static int
add_image(struct walk *w, const char *where, const char *s, size_t n, int b64)
{
	struct request *r = w->r;
	size_t cap = b64 ? b64_decoded_max(n) : n, len;
	unsigned char *buf;
	struct err e;

	if (r->n_img >= w->max_images)
		return fail(w, PROTO_TOO_LARGE, where, ": more than %zu images in the request "
		    "(limits.max_images)", w->max_images);
	if (n == 0)
		return fail(w, PROTO_BAD_REQUEST, where, ": an empty image");
	/* base64 text is at most 2 bytes longer than 4/3 of the limit: refuse before decoding */
	if ((b64 ? cap - (cap > 2 ? 2 : cap) : cap) > w->max_bytes)
		return fail(w, PROTO_TOO_LARGE, where, ": an image of %s%zu bytes, more than "
		    "limits.max_image_bytes (%zu)", b64 ? "about " : "", b64 ? cap : n, w->max_bytes);
	struct conv_image *ni = realloc(r->img, (r->n_img + 1) * sizeof(*ni));
	if (ni == NULL || (buf = malloc(cap ? cap : 1)) == NULL) {
		if (ni != NULL)
			r->img = ni;
		return fail(w, PROTO_INTERNAL, where, ": out of memory");
	}
	r->img = ni;
	if (b64) {
		if (b64_decode(s, n, buf, &len, &e) == -1) {
			free(buf);
			return fail(w, PROTO_BAD_REQUEST, where, ": %s", e.msg);
		}
		if (len > w->max_bytes) {
			free(buf);
			return fail(w, PROTO_TOO_LARGE, where, ": an image of %s%zu bytes, more than "
			    "limits.max_image_bytes (%zu)", "", len, w->max_bytes);
		}
	} else {
		memcpy(buf, s, n);
		len = n;
	}
	r->img[r->n_img].data = buf;
	r->img[r->n_img].len = len;
	r->n_img++;
	return 0;
}

/* {"type": "image", "data": BIN | base64 string} */
static int
take_image(struct walk *w, const json_t *p, const char *where)
{
	char f[96];
	const json_t *d = json_object_get(p, "data"), *raw;

	snprintf(f, sizeof(f), "%s.data", where);
	if (d == NULL)
		return fail(w, PROTO_BAD_REQUEST, f, ": missing (an image part carries the image: "
		    "msgpack binary, or base64 text in JSON)");
	if (json_is_object(d) && json_object_size(d) == 1 &&
	    json_is_string(raw = json_object_get(d, "$bin")))
		return add_image(w, f, json_string_value(raw), json_string_length(raw), 0);
	if (json_is_string(d))
		return add_image(w, f, json_string_value(d), json_string_length(d), 1);
	return fail(w, PROTO_BAD_REQUEST, f, ": expected binary (msgpack) or a base64 string"
	    );
}

/* {"type": "image_url", "image_url": {"url": "data:image/...;base64,...", "detail"?}} */
static int
take_url(struct walk *w, const json_t *p, const char *where)
{
	char f[112];
	const json_t *iu = json_object_get(p, "image_url"), *u, *dt;

	snprintf(f, sizeof(f), "%s.image_url", where);
	if (iu == NULL)
		return fail(w, PROTO_BAD_REQUEST, f, ": missing");
	if (json_is_string(iu))	/* the older shape: the URL itself */
		u = iu;
	else if (!json_is_object(iu))
		return fail(w, PROTO_BAD_REQUEST, f, ": expected an object {\"url\": ...}");
	else {
		if ((dt = json_object_get(iu, "detail")) != NULL && !is_str(dt, "auto") &&
		    !is_str(dt, "low") && !is_str(dt, "high"))
			return fail(w, PROTO_BAD_REQUEST, f, ".detail: expected \"auto\", \"low\" or "
			    "\"high\"");
		u = json_object_get(iu, "url");
		snprintf(f, sizeof(f), "%s.image_url.url", where);
	}
	if (!json_is_string(u))
		return fail(w, PROTO_BAD_REQUEST, f, ": expected a data: URL string");
	const char *s = json_string_value(u);
	size_t n = json_string_length(u);
	if ((n >= 7 && strncmp(s, "http://", 7) == 0) || (n >= 8 && strncmp(s, "https://", 8) == 0))
		return fail(w, PROTO_BAD_REQUEST, f, ": remote image URLs are not fetched; send the "
		    "image inline as a data: URL (data:image/png;base64,...)");
	if (n < 5 || strncmp(s, "data:", 5) != 0)
		return fail(w, PROTO_BAD_REQUEST, f, ": expected a data: URL "
		    "(data:image/png;base64,...)");
	const char *comma = memchr(s, ',', n);
	if (comma == NULL)
		return fail(w, PROTO_BAD_REQUEST, f, ": a data: URL without ','");
	size_t hl = (size_t)(comma - s);
	if (hl < 11 || strncmp(s + 5, "image/", 6) != 0)
		return fail(w, PROTO_BAD_REQUEST, f, ": the data: URL's media type must be image/... "
		    "(image/png, image/jpeg)");
	if (hl < 7 + 11 || memcmp(comma - 7, ";base64", 7) != 0)
		return fail(w, PROTO_BAD_REQUEST, f, ": the data: URL must be base64 "
		    "(data:image/png;base64,...)");
	return add_image(w, f, comma + 1, n - hl - 1, 1);
}

/* a copy of one message's content with image parts as {"type": "image"}; NULL when it has
 * none (*bad set on error) */
static json_t *
content_of(struct walk *w, const json_t *c, size_t i, int *bad)
{
	json_t *out = NULL, *p;
	size_t k;
	char where[64];

	json_array_foreach(c, k, p) {
		const json_t *t = json_is_object(p) ? json_object_get(p, "type") : NULL;
		int img = is_str(t, "image"), url = is_str(t, "image_url");
		if (!img && !url)
			continue;
		where_of(where, sizeof(where), i, k);
		if ((img ? take_image(w, p, where) : take_url(w, p, where)) == -1) {
			*bad = 1;
			json_decref(out);
			return NULL;
		}
		if (out == NULL)
			out = json_copy((json_t *)c);
		if (out == NULL || json_array_set_new(out, k, json_pack("{s:s}", "type", "image"))) {
			fail(w, PROTO_INTERNAL, where, ": out of memory");
			*bad = 1;
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

json_t *
proto_images_take(const json_t *o, const struct proto_limits *l, struct request *r,
    enum proto_status *st, struct err *e)
{
	struct walk w = { l, r, l->max_images > 0 ? (size_t)l->max_images :
	    PROTO_MAX_IMAGES_DEFAULT, l->max_image_bytes > 0 ? l->max_image_bytes :
	    PROTO_MAX_IMAGE_BYTES_DEFAULT, PROTO_OK, e };
	const json_t *msgs = json_object_get(o, "messages"), *m;
	json_t *out = NULL, *nm = NULL;
	size_t i;

	*st = PROTO_OK;
	if (!json_is_array(msgs))
		return json_incref((json_t *)o);	/* the decoders report it */
	json_array_foreach(msgs, i, m) {
		const json_t *c = json_is_object(m) ? json_object_get(m, "content") : NULL;
		int bad = 0;
		if (!json_is_array(c))
			continue;
		json_t *nc = content_of(&w, c, i, &bad);
		if (bad)
			goto fail;
		if (nc == NULL)
			continue;
		if (nm == NULL && (nm = json_copy((json_t *)msgs)) == NULL)
			goto oom;
		json_t *msg = json_copy((json_t *)m);
		if (msg == NULL) {
			json_decref(nc);
			goto oom;
		}
		if (json_object_set_new(msg, "content", nc) || json_array_set_new(nm, i, msg))
			goto oom;
	}
	if (nm == NULL)
		return json_incref((json_t *)o);
	if ((out = json_copy((json_t *)o)) == NULL)
		goto oom;
	if (json_object_set_new(out, "messages", nm)) {
		nm = NULL;
		goto oom;
	}
	return out;
oom:
	w.st = PROTO_INTERNAL;
	err_set(e, "messages: out of memory");
fail:
	json_decref(nm);
	json_decref(out);
	*st = w.st;
	return NULL;
}

void
proto_images_free(struct request *r)
{
	for (size_t i = 0; i < r->n_img; i++)
		free(r->img[i].data);
	free(r->img);
	r->img = NULL;
	r->n_img = 0;
}
