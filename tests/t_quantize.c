/* t_quantize.c - the quantizers (core/quant_make.c), the GGUF writer (core/gguf_write.c) and
 * guard quantize's output against llama-quantize's.
 *
 *   t_quantize                  unit tests: block sizes, error bounds, known blocks, writer
 *   t_quantize cmp OURS REF SRC OURS (guard quantize) against REF (llama-quantize) made from
 *                               the same SRC: same tensors, types, order and metadata; per
 *                               tensor RMSE against SRC no worse; byte-identical count
 *   t_quantize cmp OURS REF SRC whole  and the two files are byte-identical
 *   t_quantize cmp OURS REF plan  the same tensors, types, order and metadata only (OURS made
 *                               from another source than REF, e.g. BF16)
 *   t_quantize load PATH        the file loads with our loader */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/gguf.h"
#include "core/gguf_write.h"
#include "core/model.h"
#include "core/quant_make.h"
#include "tests/qref.h"
#include "util/mapfile.h"
#include "tests/tap.h"

/* deterministic noise in [-1, 1) */
static uint32_t rng = 12345;
static float
noise(void)
{
	rng = rng * 1664525u + 1013904223u;
	return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static const struct {
	int type;
	double bound;		/* RMSE / max|x| per 256 values: uniform rounding error is a
				 * level step / sqrt(12); steps are max|x| / 2^(bits-1), or
				 * 2 max|x| / (2^bits - 1) for the types with a minimum; + ~30% */
} ttypes[] = {
	{ GGML_TYPE_Q8_0, 0.004 }, { GGML_TYPE_Q4_0, 0.06 }, { GGML_TYPE_Q4_1, 0.05 },
	{ GGML_TYPE_Q5_0, 0.03 }, { GGML_TYPE_Q5_1, 0.025 }, { GGML_TYPE_Q4_K, 0.05 },
	{ GGML_TYPE_Q5_K, 0.025 }, { GGML_TYPE_Q6_K, 0.015 }, { GGML_TYPE_Q8_K, 0.004 },
};

static void
unit_quantizers(void)
{
	enum { N = 1024 };
	static float x[N], y[N];
	static unsigned char q[N * 2];

	for (size_t k = 0; k < sizeof(ttypes) / sizeof(ttypes[0]); k++) {
		int ty = ttypes[k].type;
		uint64_t blk, bytes;
		ggml_type_size((uint32_t)ty, &blk, &bytes);
		/* blocks of different scales, an all-zero block, an outlier, all-negative values */
		for (int i = 0; i < N; i++)
			x[i] = noise() * (float)(1 + (i / 256)) * 0.05f;
		for (int i = 256; i < 512; i++)
			x[i] = 0;
		x[700] = 3.0f;
		for (int i = 768; i < 1024; i++)
			x[i] = -fabsf(x[i]) - 0.01f;
		size_t got = quant_make_row(ty, x, q, N);
		ok(quant_make_supported(ty) && got == N / blk * bytes, "%s: %d values make %zu bytes "
		    "(%llu per %llu)", ggml_type_name((uint32_t)ty), N, got,
		    (unsigned long long)bytes, (unsigned long long)blk);
		ok(qref_row(ty, q, y, N), "%s: the blocks dequantize", ggml_type_name((uint32_t)ty));
		int zeros = 1;
		for (int i = 256; i < 512; i++)
			zeros &= y[i] == 0.0f;
		ok(zeros, "%s: an all-zero block comes back as zeros", ggml_type_name((uint32_t)ty));
		double worst = 0;
		for (int b = 0; b < N; b += 256) {
			if (b == 256)
				continue;
			double se = 0, amax = 0;
			for (int i = b; i < b + 256; i++) {
				se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
				amax = fmax(amax, fabs(x[i]));
			}
			if (sqrt(se / 256) / amax > worst)
				worst = sqrt(se / 256) / amax;
		}
		ok(worst < ttypes[k].bound, "%s: RMSE / max|x| %.5f per 256 values (bound %.3f)",
		    ggml_type_name((uint32_t)ty), worst, ttypes[k].bound);
		ok(quant_make_row(ty, x, q, (int64_t)blk + 1) == 0, "%s: %llu values (not whole "
		    "blocks) are refused", ggml_type_name((uint32_t)ty), (unsigned long long)blk + 1);
	}
	ok(!quant_make_supported(GGML_TYPE_F32) && quant_make_row(GGML_TYPE_F32, x, q, 32) == 0 &&
	    !quant_make_supported(GGML_TYPE_Q2_K), "F32 and Q2_K are not quantizer targets");

	/* known blocks, worked by hand from ggml's definitions */
	float b[32] = { 0 };
	b[0] = 127.0f;
	b[1] = -63.5f;	/* roundf: half away from zero -> -64 */
	b[2] = 0.5f;	/* -> 1 */
	quant_make_row(GGML_TYPE_Q8_0, b, q, 32);
	ok(q[0] == 0x00 && q[1] == 0x3c && (int8_t)q[2] == 127 && (int8_t)q[3] == -64 &&
	    (int8_t)q[4] == 1 && q[5] == 0, "Q8_0: d = amax/127 = 1.0 (half 0x3c00), levels "
	    "round half away from zero");
	for (int i = 0; i < 32; i++)
		b[i] = (float)(i % 16) - 8.0f;	/* max magnitude -8: d = -8/-8 = 1 */
	quant_make_row(GGML_TYPE_Q4_0, b, q, 32);
	int nib = q[0] == 0x00 && q[1] == 0x3c;
	for (int j = 0; j < 16; j++)
		nib &= q[2 + j] == (uint8_t)(j | j << 4);
	ok(nib, "Q4_0: d = max/-8, level = value/d + 8 in both nibbles");
	for (int i = 0; i < 256; i++)
		b[i % 32] = 0;
	static float z[256];
	quant_make_row(GGML_TYPE_Q6_K, z, q, 256);
	int allz = 1;
	for (int i = 0; i < 210; i++)
		allz &= q[i] == 0;
	ok(allz, "Q6_K: an all-zero super-block is all zero bytes");
}

static int
file_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

static int
dir_has_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp.") != NULL)
			found = 1;
	if (d != NULL)
		closedir(d);
	return found;
}

static void
unit_writer(void)
{
	char dir[] = "/tmp/t_quantize.XXXXXX", path[256], bad[300];
	struct err e;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/w.gguf", dir);
	struct gguf_writer *w = gguf_writer_new(path, &e);
	const char *strs[] = { "a", "bc" };
	size_t lens[] = { 1, 2 };
	int32_t ints[] = { 1, -2, 3 };
	uint64_t ne1[4] = { 3 }, ne2[4] = { 64, 2 };
	float v3[3] = { 1.5f, -2.0f, 0.25f }, rows[128];
	unsigned char qd[4 * 34];
	int rc = gguf_writer_kv_u32(w, "general.file_type", 0, &e) ||
	    gguf_writer_kv_str(w, "general.architecture", "llama", 5, &e) ||
	    gguf_writer_kv_f32(w, "x.f", 0.5f, &e) || gguf_writer_kv_bool(w, "x.b", 1, &e) ||
	    gguf_writer_kv_arr_str(w, "x.s", strs, lens, 2, &e) ||
	    gguf_writer_kv_arr(w, "x.i", GGUF_I32, ints, 3, &e) ||
	    gguf_writer_kv_u32(w, "general.file_type", 7, &e) ||
	    gguf_writer_tensor(w, "v", GGML_TYPE_F32, 1, ne1, &e) ||
	    gguf_writer_tensor(w, "m", GGML_TYPE_Q8_0, 2, ne2, &e);
	ok(rc == 0, "writer: metadata and two tensors declared");
	ok(gguf_writer_tensor(w, "odd", GGML_TYPE_Q8_0, 2, (uint64_t[4]){ 48, 2 }, &e) == -1 &&
	    strstr(e.msg, "not a multiple") != NULL, "writer: 48 columns of Q8_0 refused: %s",
	    e.msg);
	ok(gguf_writer_tensor(w, "v", GGML_TYPE_F32, 1, ne1, &e) == -1 &&
	    strstr(e.msg, "twice") != NULL, "writer: a tensor name declared twice: %s", e.msg);
	for (int i = 0; i < 128; i++)
		rows[i] = noise();
	quant_make_row(GGML_TYPE_Q8_0, rows, qd, 128);
	unsigned char all[12 + 4 * 34];	/* both tensors' data back to back, written in 3 pieces */
	memcpy(all, v3, 12);
	memcpy(all + 12, qd, 4 * 34);
	rc = gguf_writer_begin(w, &e) || gguf_writer_write(w, all, 5, &e) ||
	    gguf_writer_write(w, all + 5, 17, &e) ||
	    gguf_writer_write(w, all + 22, sizeof(all) - 22, &e);
	ok(rc == 0 && !file_exists(path), "writer: data streamed in pieces across tensors; the "
	    "target does not exist before finish");
	ok(gguf_writer_write(w, qd, 1, &e) == -1 && strstr(e.msg, "more tensor data") != NULL,
	    "writer: a byte past the declared tensors: %s", e.msg);
	ok(gguf_writer_finish(w, &e) == 0 && file_exists(path) && !dir_has_tmp(dir),
	    "writer: finish renames the temporary file onto the target");
	gguf_writer_free(w);

	struct gguf *g = gguf_open(path, &e);
	ok(g != NULL, "writer: our reader opens the file%s%s", g ? "" : ": ", g ? "" : e.msg);
	if (g != NULL) {
		const char *key;
		uint32_t type, u = 0;
		const void *raw;
		size_t n;
		struct gguf_str s;
		const struct gguf_str *as;
		gguf_kv_at(g, gguf_n_kv(g) - 1, &key, &type, &raw, &n);
		ok(gguf_version(g) == 3 && gguf_n_kv(g) == 6 && strcmp(key, "general.file_type") == 0 &&
		    gguf_get_u32(g, "general.file_type", &u, &e) == 0 && u == 7,
		    "writer: v3, 6 keys, a key set again is replaced and moves to the end");
		float f = 0;
		int bo = 0;
		const void *ia;
		ok(gguf_get_str(g, "general.architecture", &s, &e) == 0 && s.n == 5 &&
		    gguf_get_f32(g, "x.f", &f, &e) == 0 && f == 0.5f &&
		    gguf_get_bool(g, "x.b", &bo, &e) == 0 && bo == 1 &&
		    gguf_get_arr_str(g, "x.s", &as, &n, &e) == 0 && n == 2 && as[1].n == 2 &&
		    memcmp(as[1].p, "bc", 2) == 0 &&
		    gguf_get_arr(g, "x.i", GGUF_I32, &ia, &n, &e) == 0 && n == 3 &&
		    memcmp(ia, ints, 12) == 0, "writer: every value reads back");
		const struct gguf_tensor *tv = gguf_tensor_find(g, "v"), *tm = gguf_tensor_find(g, "m");
		ok(tv && tm && tv->offset == 0 && tm->offset == 32 && tm->ne[0] == 64 && tm->ne[1] == 2 &&
		    tm->type == GGML_TYPE_Q8_0 && memcmp(tv->data, v3, 12) == 0 &&
		    memcmp(tm->data, qd, 4 * 34) == 0 &&
		    ((const char *)tm->data - (const char *)tv->data) == 32,
		    "writer: tensors 32-byte aligned, data as written");
		gguf_close(g);
	}
	/* a failed write leaves nothing behind */
	snprintf(bad, sizeof(bad), "%s/w2.gguf", dir);
	w = gguf_writer_new(bad, &e);
	rc = gguf_writer_tensor(w, "v", GGML_TYPE_F32, 1, ne1, &e) || gguf_writer_begin(w, &e) ||
	    gguf_writer_write(w, v3, 4, &e);
	ok(rc == 0 && gguf_writer_finish(w, &e) == -1 && strstr(e.msg, "'v' has 4 of its 12") != NULL,
	    "writer: finish with a tensor incomplete: %s", e.msg);
	gguf_writer_free(w);
	ok(!file_exists(bad) && !dir_has_tmp(dir), "writer: an abandoned write leaves no file");
	snprintf(bad, sizeof(bad), "%s/no/such/dir/x.gguf", dir);
	w = gguf_writer_new(bad, &e);
	ok(gguf_writer_begin(w, &e) == -1 && strstr(e.msg, bad) != NULL &&
	    strstr(e.msg, "No such file") != NULL, "writer: an unwritable place: %s", e.msg);
	gguf_writer_free(w);
	/* general.alignment: the data follows it */
	uint32_t a64 = 64, a3 = 3;
	w = gguf_writer_new(path, &e);
	ok(gguf_writer_kv_raw(w, "general.alignment", GGUF_U32, &a3, 4, &e) == -1 &&
	    strstr(e.msg, "power of two") != NULL, "writer: general.alignment 3 refused: %s", e.msg);
	rc = gguf_writer_kv_raw(w, "general.alignment", GGUF_U32, &a64, 4, &e) ||
	    gguf_writer_tensor(w, "v", GGML_TYPE_F32, 1, ne1, &e) ||
	    gguf_writer_tensor(w, "m", GGML_TYPE_Q8_0, 2, ne2, &e) || gguf_writer_begin(w, &e) ||
	    gguf_writer_write(w, all, sizeof(all), &e) || gguf_writer_finish(w, &e);
	gguf_writer_free(w);
	g = rc == 0 ? gguf_open(path, &e) : NULL;
	const struct gguf_tensor *t2 = g ? gguf_tensor_find(g, "m") : NULL;
	ok(t2 != NULL && t2->offset == 64 && ((const char *)t2->data - (const char *)gguf_map(g)->data)
	    % 64 == 0 && memcmp(t2->data, qd, 4 * 34) == 0,
	    "writer: general.alignment 64 aligns the data section and every tensor to 64");
	gguf_close(g);
	unlink(path);
	rmdir(dir);
}

/* ---- cmp --------------------------------------------------------------------------------- */

static double
tensor_rmse(const struct gguf_tensor *q, const struct gguf_tensor *src, int *okp)
{
	uint64_t k = q->ne[0], rows = q->ne[1] * q->ne[2] * q->ne[3], qb, qby, sb, sby;
	float *a = malloc(k * sizeof(float)), *b = malloc(k * sizeof(float));
	double se = 0;

	*okp = a && b && ggml_type_size(q->type, &qb, &qby) && ggml_type_size(src->type, &sb, &sby);
	for (uint64_t r = 0; *okp && r < rows; r++) {
		*okp = qref_row((int)q->type, (const char *)q->data + r * (k / qb * qby), a, (int64_t)k) &&
		    qref_row((int)src->type, (const char *)src->data + r * (k / sb * sby), b, (int64_t)k);
		for (uint64_t i = 0; *okp && i < k; i++)
			se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
	}
	free(a);
	free(b);
	return sqrt(se / (double)(k * rows));
}

static int
cmp_files(const char *ours, const char *ref, const char *src, int whole)
{
	struct err e;
	struct gguf *go = gguf_open(ours, &e), *gr = NULL, *gs = NULL;
	int plan_only = strcmp(src, "plan") == 0;

	if (go == NULL || (gr = gguf_open(ref, &e)) == NULL ||
	    (!plan_only && (gs = gguf_open(src, &e)) == NULL)) {
		ok(0, "open: %s", e.msg);
		goto out;
	}
	size_t n = gguf_n_tensors(go);
	ok(n == gguf_n_tensors(gr), "%zu tensors (llama-quantize: %zu)", n, gguf_n_tensors(gr));
	if (n != gguf_n_tensors(gr))
		goto out;
	/* metadata: the same entries in the same order, byte for byte */
	int meta = gguf_n_kv(go) == gguf_n_kv(gr);
	for (size_t i = 0; meta && i < gguf_n_kv(go); i++) {
		const char *k1, *k2;
		uint32_t t1, t2;
		const void *r1, *r2;
		size_t n1, n2;
		gguf_kv_at(go, i, &k1, &t1, &r1, &n1);
		gguf_kv_at(gr, i, &k2, &t2, &r2, &n2);
		if (strcmp(k1, k2) != 0 || t1 != t2 || n1 != n2 || memcmp(r1, r2, n1) != 0) {
			diag("metadata entry %zu: '%s' vs llama-quantize's '%s'", i, k1, k2);
			meta = 0;
		}
	}
	ok(meta, "metadata: %zu entries, the same keys, order and values as llama-quantize's",
	    gguf_n_kv(go));
	int same_plan = 1, worse = 0, copies_ok = 1;
	struct { double ours, ref; int n, ident; } per[GGML_TYPE_BF16 + 1];
	memset(per, 0, sizeof(per));
	for (size_t i = 0; i < n; i++) {
		const struct gguf_tensor *to = gguf_tensor_at(go, i), *tr = gguf_tensor_at(gr, i);
		const struct gguf_tensor *ts = plan_only ? to : gguf_tensor_find(gs, to->name);
		if (strcmp(to->name, tr->name) != 0 || to->type != tr->type || to->n_dims != tr->n_dims ||
		    memcmp(to->ne, tr->ne, sizeof(to->ne)) != 0 || ts == NULL) {
			diag("tensor %zu: %s %s vs llama-quantize's %s %s", i, to->name,
			    ggml_type_name(to->type), tr->name, ggml_type_name(tr->type));
			same_plan = 0;
			continue;
		}
		if (plan_only)
			continue;
		int ident = to->nbytes == tr->nbytes && memcmp(to->data, tr->data, to->nbytes) == 0;
		if (to->type == ts->type) {	/* kept as it is: a copy of the source */
			/* with whole, SRC may be a GGUF twin of an HF source that differs in a
			 * computed tensor (rope_freqs): then the copy is checked against REF */
			const struct gguf_tensor *tc = whole ? tr : ts;
			if (to->nbytes != tc->nbytes || memcmp(to->data, tc->data, to->nbytes) != 0)
				copies_ok = 0;
			if (!ident)
				diag("%s (%s, copied from the source) differs from llama-quantize's: so "
				    "does the source file it was given", to->name, ggml_type_name(to->type));
			continue;
		}
		int ok1, ok2;
		double ro = tensor_rmse(to, ts, &ok1), rr = tensor_rmse(tr, ts, &ok2);
		if (!ok1 || !ok2 || ro > rr) {
			diag("%s %s: RMSE %.6e, llama-quantize's %.6e", to->name,
			    ggml_type_name(to->type), ro, rr);
			worse++;
		}
		per[to->type].ours += ro;
		per[to->type].ref += rr;
		per[to->type].n++;
		per[to->type].ident += ident;
	}
	ok(same_plan, "every tensor has llama-quantize's name, position, shape and type");
	if (plan_only)
		goto out;
	ok(copies_ok, "tensors kept in their type are the %s's bytes", whole ? "llama-quantize file" :
	    "source");
	ok(worse == 0, "per tensor, RMSE against the source <= llama-quantize's (%d worse)", worse);
	int all_ident = 1;
	for (int t = 0; t <= GGML_TYPE_BF16; t++)
		if (per[t].n > 0) {
			diag("%-5s %2d tensors: mean RMSE ours %.6e, llama-quantize %.6e; %d of %d "
			    "byte-identical", ggml_type_name((uint32_t)t), per[t].n, per[t].ours / per[t].n,
			    per[t].ref / per[t].n, per[t].ident, per[t].n);
			all_ident &= per[t].ident == per[t].n;
		}
	ok(all_ident, "every quantized tensor is byte-identical to llama-quantize's");
	if (whole) {
		const struct mapfile *a = gguf_map(go), *b = gguf_map(gr);
		ok(a->size == b->size && memcmp(a->data, b->data, a->size) == 0,
		    "the whole file is byte-identical to llama-quantize's (%zu bytes)", a->size);
	}
out:
	gguf_close(go);
	gguf_close(gr);
	gguf_close(gs);
	return 0;
}

int
main(int argc, char **argv)
{
	if ((argc == 5 || (argc == 6 && strcmp(argv[5], "whole") == 0)) &&
	    strcmp(argv[1], "cmp") == 0)
		cmp_files(argv[2], argv[3], argv[4], argc == 6);
	else if (argc == 3 && strcmp(argv[1], "load") == 0) {
		struct err e;
		struct model *m = model_open(argv[2], &e);
		ok(m != NULL, "%s loads: %s", argv[2], m ? model_weight_type(m) : e.msg);
		model_close(m);
	} else if (argc == 1) {
		unit_quantizers();
		unit_writer();
	} else {
		fprintf(stderr, "usage: t_quantize [cmp OURS REF SRC|plan [whole] | load PATH]\n");
		return 2;
	}
	printf("1..%d\n", tap_n);
	return tap_fail != 0;
}
