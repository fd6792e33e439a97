/* safetensors.c - decodes safetensors headers (JSON via jansson) and checks every offset. */
#include "core/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "util/mapfile.h"
#include "util/span.h"
#include "util/strmap.h"

#define ST_MAX_HEADER 100000000ull	/* safetensors' own MAX_HEADER_SIZE */
#define ST_MAX_SHARDS 256

struct st_set {
	struct mapfile maps[ST_MAX_SHARDS];
	size_t n_maps;
	struct st_tensor *t;
	size_t n_t, cap_t;
	struct strmap names;	/* tensor name -> index: duplicates and lookups in O(1) */
	struct strmap shards;	/* shard path -> map index */
};

static const struct {
	const char *name;
	int type;
	unsigned size;
} dtypes[] = {
	{ "F32", GGML_TYPE_F32, 4 }, { "F16", GGML_TYPE_F16, 2 }, { "BF16", GGML_TYPE_BF16, 2 },
	{ "F64", -1, 8 }, { "I64", -1, 8 }, { "I32", -1, 4 }, { "I16", -1, 2 }, { "I8", -1, 1 },
	{ "U8", -1, 1 }, { "U16", -1, 2 }, { "U32", -1, 4 }, { "U64", -1, 8 }, { "BOOL", -1, 1 },
	{ "F8_E4M3", -1, 1 }, { "F8_E5M2", -1, 1 },
};

static int
add_tensor(struct st_set *s, const char *file, const char *name, json_t *info,
    const unsigned char *buf, size_t bufsize, struct err *e)
{
	struct st_tensor *t;
	json_t *dt, *shape, *offs;
	uint64_t n = 1, beg, end;
	unsigned esize = 0;

	if (!json_is_object(info))
		return err_set(e, "tensor '%s': header entry is not an object", name);
	dt = json_object_get(info, "dtype");
	shape = json_object_get(info, "shape");
	offs = json_object_get(info, "data_offsets");
	if (!json_is_string(dt))
		return err_set(e, "tensor '%s': missing or non-string 'dtype'", name);
	if (!json_is_array(shape) || json_array_size(shape) > 4)
		return err_set(e, "tensor '%s': 'shape' must be an array of at most 4 sizes", name);
	if (!json_is_array(offs) || json_array_size(offs) != 2 ||
	    !json_is_integer(json_array_get(offs, 0)) || !json_is_integer(json_array_get(offs, 1)))
		return err_set(e, "tensor '%s': 'data_offsets' must be [begin, end]", name);
	if (s->n_t == s->cap_t) {
		size_t nc = s->cap_t ? s->cap_t * 2 : 64;
		struct st_tensor *nt = reallocarray(s->t, nc, sizeof(*nt));
		if (nt == NULL)
			return err_set(e, "out of memory");
		s->t = nt;
		s->cap_t = nc;
	}
	t = &s->t[s->n_t];
	memset(t, 0, sizeof(*t));
	t->type = -1;
	const char *d = json_string_value(dt);
	for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
		if (strcmp(d, dtypes[i].name) == 0) {
			t->type = dtypes[i].type;
			esize = dtypes[i].size;
		}
	if (esize == 0)
		return err_set(e, "tensor '%s': unknown dtype '%.15s'", name, d);
	snprintf(t->dtype, sizeof(t->dtype), "%s", d);
	t->n_dims = (uint32_t)json_array_size(shape);
	for (uint32_t i = 0; i < t->n_dims; i++) {
		json_t *v = json_array_get(shape, i);
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > (1ll << 40))
			return err_set(e, "tensor '%s': shape[%u] is not a valid size", name, i);
		t->shape[i] = (uint64_t)json_integer_value(v);
		if (t->shape[i] != 0 && n > UINT64_MAX / t->shape[i])
			return err_set(e, "tensor '%s': element count overflows", name);
		n *= t->shape[i];
	}
	if (json_integer_value(json_array_get(offs, 0)) < 0 ||
	    json_integer_value(json_array_get(offs, 1)) < 0)
		return err_set(e, "tensor '%s': negative data offset", name);
	beg = (uint64_t)json_integer_value(json_array_get(offs, 0));
	end = (uint64_t)json_integer_value(json_array_get(offs, 1));
	if (beg > end || end > bufsize)
		return err_set(e, "tensor '%s': data_offsets [%llu, %llu) outside the %zu-byte "
		    "data buffer", name, (unsigned long long)beg, (unsigned long long)end, bufsize);
	if (n > UINT64_MAX / esize || end - beg != n * esize)
		return err_set(e, "tensor '%s': %llu bytes for %llu elements of %s", name,
		    (unsigned long long)(end - beg), (unsigned long long)n, d);
	if (s->n_t >= INT32_MAX || (t->name = strdup(name)) == NULL)
		return err_set(e, "out of memory");
	if (strmap_put(&s->names, t->name, strlen(t->name), (int32_t)s->n_t) == -1) {
		free(t->name);
		return err_set(e, "out of memory");
	}
	t->data = buf + beg;
	t->offset = beg;
	t->nbytes = (size_t)(end - beg);
	t->file = file;
	s->n_t++;
	return 0;
}

/* Tensors [first, n_t) of one file must not share bytes (one weight silently aliasing
 * another). */
static int
check_overlap(const struct st_set *s, size_t first, const char *path, struct err *e)
{
	size_t n = s->n_t - first, i, j;
	struct span *sp;
	int rc = 0;

	if (n < 2)
		return 0;
	if ((sp = reallocarray(NULL, n, sizeof(*sp))) == NULL)
		return err_set(e, "out of memory");
	for (size_t k = 0; k < n; k++) {
		const struct st_tensor *t = &s->t[first + k];
		sp[k] = (struct span){ t->offset, t->offset + t->nbytes, first + k };
	}
	if (span_overlap(sp, n, &i, &j))
		rc = err_set(e, "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap in the "
		    "data buffer", path, s->t[sp[i].id].name, (unsigned long long)sp[i].beg,
		    (unsigned long long)sp[i].end, s->t[sp[j].id].name,
		    (unsigned long long)sp[j].beg, (unsigned long long)sp[j].end);
	free(sp);
	return rc;
}

static int
load_file(struct st_set *s, const char *path, struct err *e)
{
	struct mapfile *m;
	uint64_t hlen;
	json_t *root;
	json_error_t jerr;
	const char *key;
	json_t *val;

	if (s->n_maps == ST_MAX_SHARDS)
		return err_set(e, "%s: more than %d shards", path, ST_MAX_SHARDS);
	m = &s->maps[s->n_maps];
	if (mapfile_open(m, path, e) == -1)
		return -1;
	s->n_maps++;
	if (m->size < 8)
		return err_set(e, "%s: %zu bytes: too short for a safetensors header", path, m->size);
	memcpy(&hlen, m->data, 8);
	if (hlen > ST_MAX_HEADER || hlen > m->size - 8)
		return err_set(e, "%s: header length %llu past end of file (%zu bytes)", path,
		    (unsigned long long)hlen, m->size);
	if (hlen < 2 || m->data[8] != '{')
		return err_set(e, "%s: header does not start with '{'", path);
	root = json_loadb((const char *)m->data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return err_set(e, "%s: header JSON, byte %d: %s", path, jerr.position + 8, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return err_set(e, "%s: header is not a JSON object", path);
	}
	const unsigned char *buf = m->data + 8 + hlen;
	size_t bufsize = m->size - 8 - (size_t)hlen, first = s->n_t;
	json_object_foreach(root, key, val) {
		if (strcmp(key, "__metadata__") == 0)
			continue;
		if (st_find(s, key) != NULL) {
			err_set(e, "%s: tensor '%s' appears twice", path, key);
			json_decref(root);	/* key lives in root: formatted first */
			return -1;
		}
		if (add_tensor(s, m->path, key, val, buf, bufsize, e) == -1) {
			json_decref(root);
			return err_prefix(e, "%s", path);
		}
	}
	json_decref(root);
	return check_overlap(s, first, m->path, e);
}

struct st_set *
st_open_file(const char *path, struct err *e)
{
	struct st_set *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	if (load_file(s, path, e) == -1) {
		st_close(s);
		return NULL;
	}
	return s;
}

static int
load_index(struct st_set *s, const char *dir, const char *index, struct err *e)
{
	json_error_t jerr;
	json_t *root, *wm, *v;
	const char *key;
	char path[4096];
	int rc = -1;

	if ((root = json_load_file(index, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return err_set(e, "%s:%d:%d: %s", index, jerr.line, jerr.column, jerr.text);
	wm = json_object_get(root, "weight_map");
	if (!json_is_object(wm)) {
		err_set(e, "%s: missing 'weight_map' object", index);
		goto out;
	}
	json_object_foreach(wm, key, v) {
		const char *f = json_string_value(v);
		int seen = 0;
		if (f == NULL || strchr(f, '/') != NULL || f[0] == '.') {
			err_set(e, "%s: weight_map['%s']: not a plain file name", index, key);
			goto out;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, f);
		seen = strmap_get(&s->shards, path, strlen(path)) >= 0;
		if (!seen && load_file(s, path, e) == -1)
			goto out;
		/* keyed by the mapping's own copy of the path, which lives as long as s */
		if (!seen && strmap_put(&s->shards, s->maps[s->n_maps - 1].path,
		    strlen(s->maps[s->n_maps - 1].path), (int32_t)(s->n_maps - 1)) == -1) {
			err_set(e, "out of memory");
			goto out;
		}
	}
	json_object_foreach(wm, key, v) {
		if (st_find(s, key) == NULL) {
			err_set(e, "%s: tensor '%s' is listed but not in %s", index, key,
			    json_string_value(v));
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

struct st_set *
st_open_dir(const char *dir, struct err *e)
{
	struct st_set *s = calloc(1, sizeof(*s));
	char path[4096];
	FILE *fp;
	int rc;

	if (s == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
	if ((fp = fopen(path, "r")) != NULL) {
		fclose(fp);
		rc = load_index(s, dir, path, e);
	} else {
		snprintf(path, sizeof(path), "%s/model.safetensors", dir);
		rc = load_file(s, path, e);
	}
	if (rc == -1) {
		st_close(s);
		return NULL;
	}
	return s;
}

void
st_close(struct st_set *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_t; i++)
		free(s->t[i].name);
	free(s->t);
	strmap_free(&s->names);
	strmap_free(&s->shards);
	for (size_t i = 0; i < s->n_maps; i++)
		mapfile_close(&s->maps[i]);
	free(s);
}

const struct st_tensor *
st_find(const struct st_set *s, const char *name)
{
	int32_t i = strmap_get(&s->names, name, strlen(name));

	return i < 0 ? NULL : &s->t[i];
}

size_t st_count(const struct st_set *s) { return s->n_t; }
const struct st_tensor *st_at(const struct st_set *s, size_t i) { return i < s->n_t ? &s->t[i] : NULL; }
size_t st_n_files(const struct st_set *s) { return s->n_maps; }
const struct mapfile *st_file_map(const struct st_set *s, size_t i) { return i < s->n_maps ? &s->maps[i] : NULL; }
