/* gguf.c - decodes the GGUF header, metadata and tensor index with a bounded cursor. */
#include "core/gguf.h"

#include <stdlib.h>
#include <string.h>

#include "util/mapfile.h"
#include "util/span.h"
#include "util/strmap.h"

#define GGUF_MAGIC 0x46554747u	/* "GGUF" little-endian */
#define GGUF_MAX_DIMS 4

struct gguf_kv {
	char *key;
	uint32_t type;
	union {
		uint64_t u;
		int64_t i;
		double f;
		struct gguf_str s;
	} v;
	uint32_t atype;		/* arrays: element type */
	uint64_t n;		/* arrays: count */
	const unsigned char *adata;
	struct gguf_str *astr;	/* arrays of strings: decoded index */
};

struct gguf {
	struct mapfile map;
	uint32_t version;
	struct gguf_kv *kv;
	size_t n_kv;
	struct gguf_tensor *t;
	size_t n_t;
	struct strmap keys, names;	/* key -> kv index, tensor name -> index */
};

struct cur {
	const unsigned char *p;
	size_t left;
	size_t off;		/* absolute offset, for messages */
};

static const struct {
	uint32_t id;
	const char *name;
	uint64_t block, bytes;
} types[] = {
	{ GGML_TYPE_F32, "F32", 1, 4 }, { GGML_TYPE_F16, "F16", 1, 2 },
	{ GGML_TYPE_Q4_0, "Q4_0", 32, 18 }, { GGML_TYPE_Q4_1, "Q4_1", 32, 20 },
	{ GGML_TYPE_Q5_0, "Q5_0", 32, 22 }, { GGML_TYPE_Q5_1, "Q5_1", 32, 24 },
	{ GGML_TYPE_Q8_0, "Q8_0", 32, 34 }, { GGML_TYPE_Q8_1, "Q8_1", 32, 36 },
	{ GGML_TYPE_Q2_K, "Q2_K", 256, 84 }, { GGML_TYPE_Q3_K, "Q3_K", 256, 110 },
	{ GGML_TYPE_Q4_K, "Q4_K", 256, 144 }, { GGML_TYPE_Q5_K, "Q5_K", 256, 176 },
	{ GGML_TYPE_Q6_K, "Q6_K", 256, 210 }, { GGML_TYPE_Q8_K, "Q8_K", 256, 292 },
	{ GGML_TYPE_I8, "I8", 1, 1 }, { GGML_TYPE_I16, "I16", 1, 2 },
	{ GGML_TYPE_I32, "I32", 1, 4 }, { GGML_TYPE_I64, "I64", 1, 8 },
	{ GGML_TYPE_F64, "F64", 1, 8 }, { GGML_TYPE_BF16, "BF16", 1, 2 },
	/* types read (so that a loader can name them) but computed nowhere */
	{ 16, "IQ2_XXS", 256, 66 }, { 17, "IQ2_XS", 256, 74 }, { 18, "IQ3_XXS", 256, 98 },
	{ 19, "IQ1_S", 256, 50 }, { 20, "IQ4_NL", 32, 18 }, { 21, "IQ3_S", 256, 110 },
	{ 22, "IQ2_S", 256, 82 }, { 23, "IQ4_XS", 256, 136 }, { 29, "IQ1_M", 256, 56 },
	{ 34, "TQ1_0", 256, 54 }, { 35, "TQ2_0", 256, 66 }, { 39, "MXFP4", 32, 17 },
};

int
ggml_type_size(uint32_t type, uint64_t *block, uint64_t *bytes)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].id == type) {
			*block = types[i].block;
			*bytes = types[i].bytes;
			return 1;
		}
	return 0;
}

const char *
ggml_type_name(uint32_t type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].id == type)
			return types[i].name;
	return "unknown";
}

static const size_t vsize[GGUF_NTYPES] = {
	[GGUF_U8] = 1, [GGUF_I8] = 1, [GGUF_U16] = 2, [GGUF_I16] = 2, [GGUF_U32] = 4,
	[GGUF_I32] = 4, [GGUF_F32] = 4, [GGUF_BOOL] = 1, [GGUF_U64] = 8, [GGUF_I64] = 8,
	[GGUF_F64] = 8,
};

static int
take(struct cur *c, void *out, size_t n, const char *what, struct err *e)
{
	if (c->left < n)
		return err_set(e, "offset %zu: %s: needs %zu bytes, only %zu left in file",
		    c->off, what, n, c->left);
	memcpy(out, c->p, n);
	c->p += n;
	c->left -= n;
	c->off += n;
	return 0;
}

static int
skip(struct cur *c, uint64_t n, const char *what, struct err *e)
{
	if (c->left < n)
		return err_set(e, "offset %zu: %s: %llu bytes past end of file (%zu left)",
		    c->off, what, (unsigned long long)n, c->left);
	c->p += n;
	c->left -= n;
	c->off += n;
	return 0;
}

static int
take_str(struct cur *c, struct gguf_str *s, const char *what, struct err *e)
{
	uint64_t n = 0;

	if (take(c, &n, 8, what, e) == -1)
		return -1;
	if (n > c->left)
		return err_set(e, "offset %zu: %s: string length %llu past end of file (%zu left)",
		    c->off - 8, what, (unsigned long long)n, c->left);
	s->p = (const char *)c->p;
	s->n = (size_t)n;
	c->p += n;
	c->left -= n;
	c->off += n;
	return 0;
}

static char *
dupstr(const struct gguf_str *s)
{
	char *r = malloc(s->n + 1);

	if (r != NULL) {
		memcpy(r, s->p, s->n);
		r[s->n] = '\0';
	}
	return r;
}

static int
read_value(struct cur *c, struct gguf_kv *kv, struct err *e)
{
	const char *k = kv->key;

	if (kv->type >= GGUF_NTYPES)
		return err_set(e, "offset %zu: key '%s': unknown value type %u", c->off, k, kv->type);
	if (kv->type == GGUF_STR)
		return take_str(c, &kv->v.s, k, e);
	if (kv->type != GGUF_ARR) {
		unsigned char b[8] = { 0 };
		if (take(c, b, vsize[kv->type], k, e) == -1)
			return -1;
		switch (kv->type) {
		case GGUF_U8: case GGUF_BOOL: kv->v.u = b[0]; break;
		case GGUF_I8: kv->v.i = (int8_t)b[0]; break;
		case GGUF_U16: { uint16_t x; memcpy(&x, b, 2); kv->v.u = x; break; }
		case GGUF_I16: { int16_t x; memcpy(&x, b, 2); kv->v.i = x; break; }
		case GGUF_U32: { uint32_t x; memcpy(&x, b, 4); kv->v.u = x; break; }
		case GGUF_I32: { int32_t x; memcpy(&x, b, 4); kv->v.i = x; break; }
		case GGUF_F32: { float x; memcpy(&x, b, 4); kv->v.f = x; break; }
		case GGUF_U64: memcpy(&kv->v.u, b, 8); break;
		case GGUF_I64: memcpy(&kv->v.i, b, 8); break;
		case GGUF_F64: memcpy(&kv->v.f, b, 8); break;
		}
		return 0;
	}
	if (take(c, &kv->atype, 4, k, e) == -1 || take(c, &kv->n, 8, k, e) == -1)
		return -1;
	kv->adata = c->p;
	if (kv->atype == GGUF_STR) {
		/* each string needs at least its 8-byte length */
		if (kv->n > c->left / 8)
			return err_set(e, "offset %zu: key '%s': array of %llu strings cannot fit in "
			    "%zu remaining bytes", c->off, k, (unsigned long long)kv->n, c->left);
		kv->astr = calloc(kv->n ? kv->n : 1, sizeof(*kv->astr));
		if (kv->astr == NULL)
			return err_set(e, "key '%s': out of memory", k);
		for (uint64_t i = 0; i < kv->n; i++)
			if (take_str(c, &kv->astr[i], k, e) == -1)
				return err_prefix(e, "element %llu", (unsigned long long)i);
		return 0;
	}
	if (kv->atype >= GGUF_NTYPES || kv->atype == GGUF_ARR)
		return err_set(e, "offset %zu: key '%s': unsupported array element type %u",
		    c->off, k, kv->atype);
	if (kv->n > c->left / vsize[kv->atype])
		return err_set(e, "offset %zu: key '%s': array of %llu elements past end of file "
		    "(%zu bytes left)", c->off, k, (unsigned long long)kv->n, c->left);
	return skip(c, kv->n * vsize[kv->atype], k, e);
}

static int
read_tensor(struct cur *c, struct gguf_tensor *t, struct err *e)
{
	struct gguf_str name;

	if (take_str(c, &name, "tensor name", e) == -1)
		return -1;
	if ((t->name = dupstr(&name)) == NULL)
		return err_set(e, "out of memory");
	/* a name with a NUL inside would be found under a shorter name */
	if (memchr(name.p, '\0', name.n) != NULL)
		return err_set(e, "offset %zu: tensor name contains NUL", c->off - name.n - 8);
	if (take(c, &t->n_dims, 4, t->name, e) == -1)
		return -1;
	if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
		return err_set(e, "tensor '%s': %u dimensions (1 to %d supported)", t->name,
		    t->n_dims, GGUF_MAX_DIMS);
	for (uint32_t d = 0; d < 4; d++)
		t->ne[d] = 1;
	for (uint32_t d = 0; d < t->n_dims; d++)
		if (take(c, &t->ne[d], 8, t->name, e) == -1)
			return -1;
	if (take(c, &t->type, 4, t->name, e) == -1 || take(c, &t->offset, 8, t->name, e) == -1)
		return -1;
	return 0;
}

static int
check_tensor(struct gguf_tensor *t, size_t data_size, uint64_t align, struct err *e)
{
	uint64_t block, bytes, n = 1;

	if (!ggml_type_size(t->type, &block, &bytes))
		return err_set(e, "tensor '%s': unknown type %u", t->name, t->type);
	for (uint32_t d = 0; d < 4; d++) {
		if (t->ne[d] == 0 || t->ne[d] > (1ull << 40))
			return err_set(e, "tensor '%s': dimension %u is %llu", t->name, d,
			    (unsigned long long)t->ne[d]);
		if (n > UINT64_MAX / t->ne[d])
			return err_set(e, "tensor '%s': element count overflows", t->name);
		n *= t->ne[d];
	}
	if (t->ne[0] % block != 0)
		return err_set(e, "tensor '%s': row of %llu elements is not a multiple of the %s "
		    "block (%llu)", t->name, (unsigned long long)t->ne[0], ggml_type_name(t->type),
		    (unsigned long long)block);
	if (n / block > UINT64_MAX / bytes)
		return err_set(e, "tensor '%s': byte size overflows", t->name);
	uint64_t nb = n / block * bytes;
	if (t->offset % align != 0)
		return err_set(e, "tensor '%s': offset %llu is not aligned to %llu", t->name,
		    (unsigned long long)t->offset, (unsigned long long)align);
	if (t->offset > data_size || nb > data_size - t->offset)
		return err_set(e, "tensor '%s': data [%llu, %llu) past end of data section "
		    "(%zu bytes)", t->name, (unsigned long long)t->offset,
		    (unsigned long long)(t->offset + nb), data_size);
	t->nbytes = (size_t)nb;
	return 0;
}

/* Two tensors sharing bytes would make one weight silently alias another: refuse. */
static int
check_overlap(struct gguf *g, struct err *e)
{
	struct span *sp;

	if (g->n_t < 2)
		return 0;
	if ((sp = reallocarray(NULL, g->n_t, sizeof(*sp))) == NULL)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < g->n_t; i++)
		sp[i] = (struct span){ g->t[i].offset, g->t[i].offset + g->t[i].nbytes, i };
	size_t i, j;
	if (span_overlap(sp, g->n_t, &i, &j)) {
		err_set(e, "tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap in the data "
		    "section", g->t[sp[i].id].name, (unsigned long long)sp[i].beg,
		    (unsigned long long)sp[i].end, g->t[sp[j].id].name,
		    (unsigned long long)sp[j].beg, (unsigned long long)sp[j].end);
		free(sp);
		return -1;
	}
	free(sp);
	return 0;
}

static int
parse(struct gguf *g, struct err *e)
{
	struct cur c = { g->map.data, g->map.size, 0 };
	uint32_t magic = 0;
	uint64_t n_t = 0, n_kv = 0, align = 32;

	if (take(&c, &magic, 4, "magic", e) == -1)
		return -1;
	if (magic != GGUF_MAGIC)
		return err_set(e, "not a GGUF file (bad magic)");
	if (take(&c, &g->version, 4, "version", e) == -1)
		return -1;
	if (g->version != 2 && g->version != 3)
		return err_set(e, "unsupported GGUF version %u (2 and 3 are read)", g->version);
	if (take(&c, &n_t, 8, "tensor count", e) == -1 || take(&c, &n_kv, 8, "kv count", e) == -1)
		return -1;
	/* a key needs at least 12 bytes, a tensor at least 32: reject absurd counts early */
	if (n_kv > c.left / 12)
		return err_set(e, "offset 16: %llu metadata entries cannot fit in the file",
		    (unsigned long long)n_kv);
	if (n_t > c.left / 32 || n_t > INT32_MAX)
		return err_set(e, "offset 8: %llu tensors cannot fit in the file",
		    (unsigned long long)n_t);
	if (n_kv > INT32_MAX)
		return err_set(e, "offset 16: %llu metadata entries are too many",
		    (unsigned long long)n_kv);
	g->kv = calloc(n_kv ? n_kv : 1, sizeof(*g->kv));
	g->t = calloc(n_t ? n_t : 1, sizeof(*g->t));
	if (g->kv == NULL || g->t == NULL || strmap_init(&g->keys, (size_t)n_kv) == -1 ||
	    strmap_init(&g->names, (size_t)n_t) == -1)
		return err_set(e, "out of memory");
	for (uint64_t i = 0; i < n_kv; i++) {
		struct gguf_kv *kv = &g->kv[i];
		struct gguf_str key;
		size_t at = c.off;

		if (take_str(&c, &key, "metadata key", e) == -1)
			return -1;
		if ((kv->key = dupstr(&key)) == NULL)
			return err_set(e, "out of memory");
		g->n_kv = i + 1;
		if (memchr(kv->key, '\0', key.n) != NULL)
			return err_set(e, "offset %zu: metadata key contains NUL", at);
		if (strmap_get(&g->keys, kv->key, key.n) != -1)
			return err_set(e, "offset %zu: duplicate key '%s'", at, kv->key);
		if (strmap_put(&g->keys, kv->key, key.n, (int32_t)i) == -1)
			return err_set(e, "out of memory");
		if (take(&c, &kv->type, 4, kv->key, e) == -1 || read_value(&c, kv, e) == -1)
			return -1;
		if (strcmp(kv->key, "general.alignment") == 0) {
			if (kv->type != GGUF_U32 || kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)) != 0)
				return err_set(e, "general.alignment: must be a power-of-two u32");
			align = kv->v.u;
		}
	}
	for (uint64_t i = 0; i < n_t; i++) {
		g->n_t = i + 1;
		size_t at = c.off;
		if (read_tensor(&c, &g->t[i], e) == -1)
			return -1;
		const char *nm = g->t[i].name;
		if (strmap_get(&g->names, nm, strlen(nm)) != -1)
			return err_set(e, "offset %zu: duplicate tensor '%s'", at, nm);
		if (strmap_put(&g->names, nm, strlen(nm), (int32_t)i) == -1)
			return err_set(e, "out of memory");
	}
	size_t pad = (size_t)((align - c.off % align) % align);
	size_t data_off = c.off + pad;
	if (n_t > 0 && data_off > g->map.size)
		return err_set(e, "data section at offset %zu is past end of file (%zu bytes)",
		    data_off, g->map.size);
	size_t data_size = data_off <= g->map.size ? g->map.size - data_off : 0;
	for (uint64_t i = 0; i < n_t; i++) {
		if (check_tensor(&g->t[i], data_size, align, e) == -1)
			return -1;
		g->t[i].data = g->map.data + data_off + g->t[i].offset;
	}
	return check_overlap(g, e);
}

struct gguf *
gguf_open(const char *path, struct err *e)
{
	struct gguf *g = calloc(1, sizeof(*g));

	if (g == NULL) {
		err_set(e, "%s: out of memory", path);
		return NULL;
	}
	if (mapfile_open(&g->map, path, e) == -1) {
		free(g);
		return NULL;
	}
	if (parse(g, e) == -1) {
		err_prefix(e, "%s", path);
		gguf_close(g);
		return NULL;
	}
	return g;
}

void
gguf_close(struct gguf *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->n_kv; i++) {
		free(g->kv[i].key);
		free(g->kv[i].astr);
	}
	for (size_t i = 0; i < g->n_t; i++)
		free(g->t[i].name);
	free(g->kv);
	free(g->t);
	strmap_free(&g->keys);
	strmap_free(&g->names);
	mapfile_close(&g->map);
	free(g);
}

const char *gguf_path(const struct gguf *g) { return g->map.path; }
const struct mapfile *gguf_map(const struct gguf *g) { return &g->map; }
uint32_t gguf_version(const struct gguf *g) { return g->version; }
size_t gguf_n_tensors(const struct gguf *g) { return g->n_t; }

const struct gguf_tensor *
gguf_tensor_at(const struct gguf *g, size_t i)
{
	return i < g->n_t ? &g->t[i] : NULL;
}

const struct gguf_tensor *
gguf_tensor_find(const struct gguf *g, const char *name)
{
	int32_t i = strmap_get(&g->names, name, strlen(name));

	return i < 0 ? NULL : &g->t[i];
}

static const struct gguf_kv *
find(const struct gguf *g, const char *key)
{
	int32_t i = strmap_get(&g->keys, key, strlen(key));

	return i < 0 ? NULL : &g->kv[i];
}

int
gguf_has(const struct gguf *g, const char *key)
{
	return find(g, key) != NULL;
}

static const struct gguf_kv *
need(const struct gguf *g, const char *key, struct err *e)
{
	const struct gguf_kv *kv = find(g, key);

	if (kv == NULL)
		err_set(e, "%s: missing key '%s'", g->map.path, key);
	return kv;
}

int
gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out, struct err *e)
{
	const struct gguf_kv *kv = need(g, key, e);

	if (kv == NULL)
		return -1;
	switch (kv->type) {
	case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64:
		if (kv->v.u > UINT32_MAX)
			break;
		*out = (uint32_t)kv->v.u;
		return 0;
	case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64:
		if (kv->v.i < 0 || kv->v.i > (int64_t)UINT32_MAX)
			break;
		*out = (uint32_t)kv->v.i;
		return 0;
	default:
		return err_set(e, "%s: key '%s': expected an integer (type %u)", g->map.path, key,
		    kv->type);
	}
	return err_set(e, "%s: key '%s': value out of range", g->map.path, key);
}

int
gguf_get_f32(const struct gguf *g, const char *key, float *out, struct err *e)
{
	const struct gguf_kv *kv = need(g, key, e);

	if (kv == NULL)
		return -1;
	if (kv->type == GGUF_F32 || kv->type == GGUF_F64)
		*out = (float)kv->v.f;
	else if (kv->type == GGUF_U32 || kv->type == GGUF_U64)
		*out = (float)kv->v.u;
	else if (kv->type == GGUF_I32 || kv->type == GGUF_I64)
		*out = (float)kv->v.i;
	else
		return err_set(e, "%s: key '%s': expected a number (type %u)", g->map.path, key,
		    kv->type);
	return 0;
}

int
gguf_get_bool(const struct gguf *g, const char *key, int *out, struct err *e)
{
	const struct gguf_kv *kv = need(g, key, e);

	if (kv == NULL)
		return -1;
	if (kv->type != GGUF_BOOL)
		return err_set(e, "%s: key '%s': expected a bool", g->map.path, key);
	*out = kv->v.u != 0;
	return 0;
}

int
gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out, struct err *e)
{
	const struct gguf_kv *kv = need(g, key, e);

	if (kv == NULL)
		return -1;
	if (kv->type != GGUF_STR)
		return err_set(e, "%s: key '%s': expected a string", g->map.path, key);
	*out = kv->v.s;
	return 0;
}

int
gguf_get_arr_str(const struct gguf *g, const char *key, const struct gguf_str **out,
    size_t *n, struct err *e)
{
	const struct gguf_kv *kv = need(g, key, e);

	if (kv == NULL)
		return -1;
	if (kv->type != GGUF_ARR || kv->atype != GGUF_STR)
		return err_set(e, "%s: key '%s': expected an array of strings", g->map.path, key);
	*out = kv->astr;
	*n = (size_t)kv->n;
	return 0;
}

int
gguf_get_arr(const struct gguf *g, const char *key, enum gguf_vtype want, const void **out,
    size_t *n, struct err *e)
{
	const struct gguf_kv *kv = need(g, key, e);

	if (kv == NULL)
		return -1;
	if (kv->type != GGUF_ARR || kv->atype != (uint32_t)want)
		return err_set(e, "%s: key '%s': expected an array of type %d", g->map.path, key,
		    (int)want);
	*out = kv->adata;
	*n = (size_t)kv->n;
	return 0;
}
