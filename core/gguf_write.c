/* gguf_write.c - a GGUF v3 writer: metadata and tensor index kept in memory, tensor data
 * streamed to a temporary file, renamed onto the target when complete. */
#include "core/gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"

#define ALIGN 32		/* GGUF's default; general.alignment may set another */

struct wkv {
	char *key;
	struct buf rec;		/* key, type and value, serialized */
};

struct wtensor {
	char *name;
	uint32_t type, n_dims;
	uint64_t ne[4];
	uint64_t offset, nbytes;
};

struct gguf_writer {
	char *path, *tmp;
	FILE *fp;
	struct wkv *kv;
	size_t n_kv, cap_kv;
	struct wtensor *t;
	size_t n_t, cap_t;
	uint64_t data_size, align;
	size_t cur;		/* tensor being written */
	uint64_t cur_done;	/* bytes of it written */
	int begun, finished;
};

struct gguf_writer *
gguf_writer_new(const char *path, struct err *e)
{
	struct gguf_writer *w = calloc(1, sizeof(*w));

	if (w == NULL || (w->path = strdup(path)) == NULL) {
		free(w);
		err_set(e, "out of memory");
		return NULL;
	}
	w->align = ALIGN;
	return w;
}

void
gguf_writer_free(struct gguf_writer *w)
{
	if (w == NULL)
		return;
	if (w->fp != NULL)
		fclose(w->fp);
	if (w->tmp != NULL && !w->finished)
		unlink(w->tmp);
	for (size_t i = 0; i < w->n_kv; i++) {
		free(w->kv[i].key);
		buf_free(&w->kv[i].rec);
	}
	for (size_t i = 0; i < w->n_t; i++)
		free(w->t[i].name);
	free(w->kv);
	free(w->t);
	free(w->tmp);
	free(w->path);
	free(w);
}

static int
add_str(struct buf *b, const char *s, size_t n)
{
	uint64_t len = n;

	return buf_add(b, &len, 8) == -1 || buf_add(b, s, n) == -1 ? -1 : 0;
}

/* a new record for key (an older one is dropped), its key and type written */
static struct buf *
new_kv(struct gguf_writer *w, const char *key, uint32_t type, struct err *e)
{
	if (w->begun) {
		err_set(e, "%s: metadata '%s' set after the header was written", w->path, key);
		return NULL;
	}
	for (size_t i = 0; i < w->n_kv; i++)
		if (strcmp(w->kv[i].key, key) == 0) {
			free(w->kv[i].key);
			buf_free(&w->kv[i].rec);
			memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof(*w->kv));
			w->n_kv--;
			break;
		}
	if (w->n_kv == w->cap_kv) {
		size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
		struct wkv *nk = reallocarray(w->kv, cap, sizeof(*nk));
		if (nk == NULL)
			goto oom;
		w->kv = nk;
		w->cap_kv = cap;
	}
	struct wkv *k = &w->kv[w->n_kv];
	memset(k, 0, sizeof(*k));
	if ((k->key = strdup(key)) == NULL)
		goto oom;
	w->n_kv++;
	if (add_str(&k->rec, key, strlen(key)) == -1 || buf_add(&k->rec, &type, 4) == -1)
		goto oom;
	return &k->rec;
oom:
	err_set(e, "out of memory");
	return NULL;
}

int
gguf_writer_kv_raw(struct gguf_writer *w, const char *key, uint32_t type, const void *raw,
    size_t n, struct err *e)
{
	struct buf *b;
	uint32_t a = 0;

	/* readers place the data by this key: it must be what the writer does */
	if (strcmp(key, "general.alignment") == 0) {
		if (type == GGUF_U32 && n == 4)
			memcpy(&a, raw, 4);
		if (a == 0 || (a & (a - 1)) != 0 || a > 4096)
			return err_set(e, "%s: general.alignment must be a u32 power of two up to "
			    "4096", w->path);
	}
	if ((b = new_kv(w, key, type, e)) == NULL)
		return -1;
	if (buf_add(b, raw, n) == -1)
		return err_set(e, "out of memory");
	if (a != 0)
		w->align = a;
	return 0;
}

int
gguf_writer_kv_u32(struct gguf_writer *w, const char *key, uint32_t v, struct err *e)
{
	return gguf_writer_kv_raw(w, key, GGUF_U32, &v, 4, e);
}

int
gguf_writer_kv_i32(struct gguf_writer *w, const char *key, int32_t v, struct err *e)
{
	return gguf_writer_kv_raw(w, key, GGUF_I32, &v, 4, e);
}

int
gguf_writer_kv_f32(struct gguf_writer *w, const char *key, float v, struct err *e)
{
	return gguf_writer_kv_raw(w, key, GGUF_F32, &v, 4, e);
}

int
gguf_writer_kv_bool(struct gguf_writer *w, const char *key, int v, struct err *e)
{
	uint8_t b = v != 0;

	return gguf_writer_kv_raw(w, key, GGUF_BOOL, &b, 1, e);
}

int
gguf_writer_kv_str(struct gguf_writer *w, const char *key, const char *s, size_t n,
    struct err *e)
{
	struct buf *b = new_kv(w, key, GGUF_STR, e);

	if (b == NULL)
		return -1;
	if (add_str(b, s, n) == -1)
		return err_set(e, "out of memory");
	return 0;
}

int
gguf_writer_kv_arr_str(struct gguf_writer *w, const char *key, const char *const *s,
    const size_t *len, size_t n, struct err *e)
{
	struct buf *b = new_kv(w, key, GGUF_ARR, e);
	uint32_t et = GGUF_STR;
	uint64_t cnt = n;

	if (b == NULL)
		return -1;
	if (buf_add(b, &et, 4) == -1 || buf_add(b, &cnt, 8) == -1)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (add_str(b, s[i], len[i]) == -1)
			return err_set(e, "out of memory");
	return 0;
}

int
gguf_writer_kv_arr(struct gguf_writer *w, const char *key, enum gguf_vtype et,
    const void *data, size_t n, struct err *e)
{
	static const size_t vsize[GGUF_NTYPES] = { [GGUF_U8] = 1, [GGUF_I8] = 1, [GGUF_U16] = 2,
		[GGUF_I16] = 2, [GGUF_U32] = 4, [GGUF_I32] = 4, [GGUF_F32] = 4, [GGUF_BOOL] = 1,
		[GGUF_U64] = 8, [GGUF_I64] = 8, [GGUF_F64] = 8 };
	uint32_t t = et;
	uint64_t cnt = n;

	if ((unsigned)et >= GGUF_NTYPES || vsize[et] == 0)
		return err_set(e, "%s: metadata '%s': array element type %u is not numeric",
		    w->path, key, t);
	struct buf *b = new_kv(w, key, GGUF_ARR, e);
	if (b == NULL)
		return -1;
	if (buf_add(b, &t, 4) == -1 || buf_add(b, &cnt, 8) == -1 ||
	    buf_add(b, data, n * vsize[et]) == -1)
		return err_set(e, "out of memory");
	return 0;
}

int
gguf_writer_tensor(struct gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
    const uint64_t ne[4], struct err *e)
{
	uint64_t block, bytes, nel = 1;

	if (w->begun)
		return err_set(e, "%s: tensor '%s' declared after the header was written", w->path,
		    name);
	if (!ggml_type_size(type, &block, &bytes))
		return err_set(e, "%s: tensor '%s': unknown type %u", w->path, name, type);
	if (n_dims < 1 || n_dims > 4)
		return err_set(e, "%s: tensor '%s': %u dimensions (1 to 4)", w->path, name, n_dims);
	for (uint32_t d = 0; d < n_dims; d++) {
		if (ne[d] == 0 || nel > UINT64_MAX / ne[d])
			return err_set(e, "%s: tensor '%s': bad shape", w->path, name);
		nel *= ne[d];
	}
	if (ne[0] % block != 0)
		return err_set(e, "%s: tensor '%s': %llu columns is not a multiple of %s's block of "
		    "%llu", w->path, name, (unsigned long long)ne[0], ggml_type_name(type),
		    (unsigned long long)block);
	for (size_t i = 0; i < w->n_t; i++)
		if (strcmp(w->t[i].name, name) == 0)
			return err_set(e, "%s: tensor '%s' declared twice", w->path, name);
	if (w->n_t == w->cap_t) {
		size_t cap = w->cap_t ? 2 * w->cap_t : 64;
		struct wtensor *nt = reallocarray(w->t, cap, sizeof(*nt));
		if (nt == NULL)
			return err_set(e, "out of memory");
		w->t = nt;
		w->cap_t = cap;
	}
	struct wtensor *t = &w->t[w->n_t];
	memset(t, 0, sizeof(*t));
	if ((t->name = strdup(name)) == NULL)
		return err_set(e, "out of memory");
	t->type = type;
	t->n_dims = n_dims;
	for (uint32_t d = 0; d < 4; d++)
		t->ne[d] = d < n_dims ? ne[d] : 1;
	t->nbytes = nel / block * bytes;
	w->n_t++;
	return 0;
}

size_t
gguf_writer_tensor_bytes(const struct gguf_writer *w, size_t i)
{
	return i < w->n_t ? (size_t)w->t[i].nbytes : 0;
}

static int
put(struct gguf_writer *w, const void *p, size_t n, struct err *e)
{
	if (n > 0 && fwrite(p, 1, n, w->fp) != n)
		return err_set(e, "%s: write: %s", w->tmp, strerror(errno));
	return 0;
}

static int
put_zeros(struct gguf_writer *w, size_t n, struct err *e)
{
	static const unsigned char z[256];

	for (size_t k; n > 0; n -= k) {
		k = n < sizeof(z) ? n : sizeof(z);
		if (put(w, z, k, e) == -1)
			return -1;
	}
	return 0;
}

static uint64_t
pad_to(uint64_t n, uint64_t align)
{
	return (align - n % align) % align;
}

int
gguf_writer_begin(struct gguf_writer *w, struct err *e)
{
	struct buf h = { 0 };
	uint32_t magic = 0x46554747u, version = 3;
	uint64_t n_t = w->n_t, n_kv = w->n_kv;
	int fd, rc = -1;

	if (w->begun)
		return err_set(e, "%s: header written twice", w->path);
	w->data_size = 0;
	for (size_t i = 0; i < w->n_t; i++) {
		w->t[i].offset = w->data_size;
		w->data_size += w->t[i].nbytes + pad_to(w->t[i].nbytes, w->align);
	}
	size_t plen = strlen(w->path) + 16;
	if ((w->tmp = malloc(plen)) == NULL)
		return err_set(e, "out of memory");
	snprintf(w->tmp, plen, "%s.tmp.XXXXXX", w->path);
	if ((fd = mkstemp(w->tmp)) == -1) {
		err_set(e, "%s: cannot create a file there: %s", w->path, strerror(errno));
		free(w->tmp);
		w->tmp = NULL;
		return -1;
	}
	/* mkstemp makes 0600; a model file is as readable as any other new file */
	mode_t um = umask(0);
	umask(um);
	fchmod(fd, 0666 & ~um);
	if ((w->fp = fdopen(fd, "wb")) == NULL) {
		close(fd);
		return err_set(e, "%s: %s", w->tmp, strerror(errno));
	}
	w->begun = 1;
	if (buf_add(&h, &magic, 4) || buf_add(&h, &version, 4) || buf_add(&h, &n_t, 8) ||
	    buf_add(&h, &n_kv, 8))
		goto oom;
	for (size_t i = 0; i < w->n_kv; i++)
		if (buf_add(&h, w->kv[i].rec.p, w->kv[i].rec.n) == -1)
			goto oom;
	for (size_t i = 0; i < w->n_t; i++) {
		struct wtensor *t = &w->t[i];
		if (add_str(&h, t->name, strlen(t->name)) || buf_add(&h, &t->n_dims, 4) ||
		    buf_add(&h, t->ne, 8 * t->n_dims) || buf_add(&h, &t->type, 4) ||
		    buf_add(&h, &t->offset, 8))
			goto oom;
	}
	if (put(w, h.p, h.n, e) == -1 || put_zeros(w, (size_t)pad_to(h.n, w->align), e) == -1)
		goto out;
	rc = 0;
	goto out;
oom:
	err_set(e, "out of memory");
out:
	buf_free(&h);
	return rc;
}

int
gguf_writer_write(struct gguf_writer *w, const void *p, size_t n, struct err *e)
{
	const unsigned char *c = p;

	if (!w->begun || w->fp == NULL)
		return err_set(e, "%s: tensor data before the header", w->path);
	while (n > 0) {
		if (w->cur >= w->n_t)
			return err_set(e, "%s: more tensor data than the %zu tensors declared", w->path,
			    w->n_t);
		struct wtensor *t = &w->t[w->cur];
		uint64_t left = t->nbytes - w->cur_done;
		size_t k = n < left ? n : (size_t)left;
		if (put(w, c, k, e) == -1)
			return -1;
		c += k;
		n -= k;
		w->cur_done += k;
		if (w->cur_done == t->nbytes) {
			if (put_zeros(w, (size_t)pad_to(t->nbytes, w->align), e) == -1)
				return -1;
			w->cur++;
			w->cur_done = 0;
		}
	}
	return 0;
}

int
gguf_writer_finish(struct gguf_writer *w, struct err *e)
{
	if (!w->begun || w->fp == NULL)
		return err_set(e, "%s: nothing written", w->path);
	if (w->cur < w->n_t)
		return err_set(e, "%s: tensor '%s' has %llu of its %llu bytes", w->path,
		    w->t[w->cur].name, (unsigned long long)w->cur_done,
		    (unsigned long long)w->t[w->cur].nbytes);
	if (fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0)
		return err_set(e, "%s: write: %s", w->tmp, strerror(errno));
	FILE *fp = w->fp;
	w->fp = NULL;
	if (fclose(fp) != 0)
		return err_set(e, "%s: close: %s", w->tmp, strerror(errno));
	if (rename(w->tmp, w->path) != 0)
		return err_set(e, "%s: rename from %s: %s", w->path, w->tmp, strerror(errno));
	w->finished = 1;
	return 0;
}
