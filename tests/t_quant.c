/* t_quant.c - quantized GGUF weights (core/quant.h), four ways:
 *
 *   t_quant kernels          the int8 activation rows (known values: round half to even,
 *                            clamping, sums, zero blocks) and matmul() on random blocks of all
 *                            9 types against a float64 evaluation of the same numbers; a row's
 *                            result independent of the batch and of the thread count
 *   t_quant deq FILE [F32]   every quantized matrix of FILE: rows dequantized by
 *                            tests/qdeq.py (an independent pure-Python reading of ggml's
 *                            formulas) bit for bit; with F32 (mkmodel's "-deq" file: the values
 *                            mkmodel's quantizer meant) every element of every matrix too
 *   t_quant ref NAME         ../shared/reference/quant/NAME.gguf against its float64
 *                            reference logits: within llama.cpp's own deviation on that file
 *                            (tolerances.json), printed beside ours; free-running greedy tokens
 *                            the same as the reference's until a step whose top-2 margin is
 *                            within 2x our deviation (where the two may part)
 *   t_quant pair Q F32 TOL   a quantized file mkmodel wrote against its "-deq" twin run in
 *                            float32 (the reference for the types the shared files lack):
 *                            last-position logits of tiny-l2's cases within TOL
 *
 * GUARDD_GENERIC=1 forces the portable kernels. */
#include <jansson.h>
#include <math.h>
#include <unistd.h>

#include "core/ctx.h"
#include "core/gguf.h"
#include "core/half.h"
#include "core/matmul.h"
#include "core/model.h"
#include "core/pool.h"
#include "core/quant.h"
#include "core/sample.h"
#include "refutil.h"
#include "tap.h"

/* --- activations and matmul on random blocks -------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static float
frnd(void)
{
	return (float)((int)(rnd() % 20001) - 10000) / 10000.0f;
}

static void
qact_known(void)
{
	float x[64];
	size_t rb = qact_row_bytes(64);
	unsigned char *row = malloc(rb);

	ok(rb == 128, "a 64-element activation row is %zu bytes (64 q + 8 d + 4 s, to 64)", rb);
	/* block 0: amax 127 -> d = 1, so x itself is rounded: halves go to the even neighbour */
	static const float v[] = { 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, -0.5f, 1.5f, 127.0f, -127.0f,
		126.49f, 0.49999997f };
	static const int8_t want[] = { 2, 4, -2, -4, 0, 0, 2, 127, -127, 126, 0 };
	memset(x, 0, sizeof(x));
	memcpy(x, v, sizeof(v));
	/* block 1: all zero */
	memset(row, 0xAA, rb);
	qact_quantize_row(x, 64, row);
	const int8_t *q = qact_q(row);
	int same = 1, sum = 0;
	for (size_t i = 0; i < sizeof(want); i++)
		same &= q[i] == want[i];
	for (int i = 0; i < 32; i++) {
		same &= i < (int)sizeof(want) || q[i] == 0;
		sum += q[i];
	}
	ok(same, "round half to even: 2.5 3.5 -2.5 -3.5 0.5 -0.5 1.5 -> %d %d %d %d %d %d %d", q[0],
	    q[1], q[2], q[3], q[4], q[5], q[6]);
	ok(qact_d(row, 64)[0] == 1.0f && qact_s(row, 64)[0] == sum && sum == 2 + 4 - 2 - 4 + 2 + 126,
	    "block 0: d = amax/127 = %g, s = %d (sum of q)", (double)qact_d(row, 64)[0],
	    qact_s(row, 64)[0]);
	int zero = qact_d(row, 64)[1] == 0 && qact_s(row, 64)[1] == 0;
	for (int i = 32; i < 64; i++)
		zero &= q[i] == 0;
	ok(zero, "an all-zero block: d = 0, q = 0, s = 0");
	int pad = 1;
	for (size_t i = 64 + 8 + 4; i < rb; i++)
		pad &= row[i] == 0;
	ok(pad, "the padding is zeroed (rows compare byte for byte)");
	/* a block scaled by amax: the largest element maps to +-127 exactly */
	for (int i = 0; i < 32; i++)
		x[i] = -0.003f * (float)(i + 1);
	qact_quantize_row(x, 64, row);
	ok(q[31] == -127 && fabsf(qact_d(row, 64)[0] - 0.096f / 127) < 1e-9f &&
	    q[15] == (int8_t)nearbyintf(-0.048f / (0.096f / 127)),
	    "a negative block: amax -> -127, d = %g, q[15] = %d", (double)qact_d(row, 64)[0], q[15]);
	/* non-finite input does not reach an int conversion (UBSan would say) */
	x[3] = INFINITY;
	x[5] = NAN;
	qact_quantize_row(x, 64, row);
	ok(q[5] == 0 && q[0] == 0, "an infinite amax gives q = 0 (%d), NaN gives 0 (%d)", q[0], q[5]);
	free(row);
}

/* random blocks with sane scales: any bit pattern is a valid block once d is finite */
static void
random_blocks(int type, void *p, int64_t rows, int64_t k)
{
	uint64_t block, bytes;
	unsigned char *b = p;

	ggml_type_size((uint32_t)type, &block, &bytes);
	int64_t n = rows * k / (int64_t)block;
	for (int64_t i = 0; i < n * (int64_t)bytes; i++)
		b[i] = (unsigned char)rnd();
	for (int64_t i = 0; i < n; i++, b += bytes) {
		uint16_t d = f32_to_f16(0.01f + 0.02f * (float)(rnd() % 100) / 100);
		uint16_t mn = f32_to_f16(-0.05f * (float)(rnd() % 100) / 100);
		float fd = 0.01f;
		switch (type) {
		case GGML_TYPE_Q6_K: memcpy(b + 208, &d, 2); break;
		case GGML_TYPE_Q8_K: memcpy(b, &fd, 4); break;
		case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_1: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K:
			memcpy(b, &d, 2);
			memcpy(b + 2, &mn, 2);
			break;
		default: memcpy(b, &d, 2); break;
		}
	}
}

static void
matmul_random(void)
{
	static const int types[] = { GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0,
		GGML_TYPE_Q5_1, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_Q8_K };
	enum { ROWS = 37, K = 768, M = 19 };
	struct pool *p1 = pool_new(1), *p3 = pool_new(3);
	float *x = malloc(sizeof(float) * M * K), *y = malloc(sizeof(float) * M * ROWS);
	float *y1 = malloc(sizeof(float) * ROWS), *y3 = malloc(sizeof(float) * M * ROWS);
	float *wr = malloc(sizeof(float) * K);
	size_t xb = qact_row_bytes(K);
	unsigned char *xq = malloc(xb * M);
	void *scratch = malloc(matmul_scratch_size(M, K));
	unsigned char *w = malloc((size_t)ROWS * K * 2);

	ok(matmul_scratch_size(M, K) >= M * xb + 63, "matmul scratch holds %d activation rows",
	    M);
	for (int i = 0; i < M * K; i++)	/* rows of different scales, some blocks zero */
		x[i] = frnd() * (float)(1 + i / K) * (i % 97 < 32 && i / K == 3 ? 0.0f : 1.0f);
	for (int t = 0; t < M; t++)
		qact_quantize_row(x + t * K, K, xq + t * xb);
	for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
		int type = types[ti];
		struct weight W = { w, type, ROWS, K };
		random_blocks(type, w, ROWS, K);
		matmul(p3, &W, x, M, y, scratch);
		/* float64: dequantized weights times dequantized activations (the exact value of
		 * what the int8 path sums), and times the float activations */
		double worst = 0, worst_f = 0;
		int bound_ok = 1;
		for (int r = 0; r < ROWS; r++) {
			weight_row(&W, r, wr);
			for (int t = 0; t < M; t++) {
				const void *qa = xq + t * xb;
				double e = 0, f = 0, mag = 0, qerr = 0;
				for (int i = 0; i < K; i++) {
					double dq = (double)qact_d(qa, K)[i / 32] * qact_q(qa)[i];
					e += (double)wr[i] * dq;
					f += (double)wr[i] * x[t * K + i];
					mag += fabs((double)wr[i] * dq);
					qerr += fabs((double)wr[i]) * qact_d(qa, K)[i / 32] / 2;
				}
				double got = y[t * ROWS + r];
				worst = fmax(worst, fabs(got - e) / (mag + 1e-30));
				worst_f = fmax(worst_f, fabs(got - f));
				bound_ok &= fabs(got - f) <= qerr * 1.0001 + 1e-4 * mag + 1e-30;
			}
		}
		ok(worst < 2e-6, "%s: matmul = float64 sum of dequantized weights x activation blocks "
		    "(worst relative error %.2g over %d rows x %d tokens)", ggml_type_name((uint32_t)type),
		    worst, ROWS, M);
		ok(bound_ok, "%s: |matmul - float activations| (worst %.3g) within the int8 rounding "
		    "bound sum |w| d/2", ggml_type_name((uint32_t)type), worst_f);
		/* one token alone, and three threads against one: the same bits */
		int same = 1;
		for (int t = 0; t < M; t++) {
			matmul(p1, &W, x + t * K, 1, y1, scratch);
			same &= memcmp(y1, y + t * ROWS, sizeof(float) * ROWS) == 0;
		}
		matmul(p1, &W, x, M, y3, scratch);
		ok(same && memcmp(y3, y, sizeof(float) * M * ROWS) == 0, "%s: each of %d tokens alone "
		    "and the batch on 1 or 3 threads give the same bits", ggml_type_name((uint32_t)type),
		    M);
	}
	free(x); free(y); free(y1); free(y3); free(wr); free(xq); free(scratch); free(w);
	pool_free(p1);
	pool_free(p3);
}

/* --- dequantization against qdeq.py ----------------------------------------------------- */

static void
deq_file(const char *path, const char *f32path)
{
	struct err e;
	struct gguf *g = gguf_open(path, &e), *gd = NULL;
	char cmd[4400], *line = NULL;
	size_t cap = 0;
	int rows[64] = { 0 }, bad[64] = { 0 }, tensors[64] = { 0 };
	const char *last = "";

	if (!ok(g != NULL, "%s opens", path)) {
		diag("%s", e.msg);
		return;
	}
	snprintf(cmd, sizeof(cmd), "python3 tests/qdeq.py '%s'", path);
	FILE *fp = popen(cmd, "r");
	float *mine = malloc(sizeof(float) * 65536);
	while (fp && getline(&line, &cap, fp) > 0) {
		char name[128], tname[16];
		long row;
		int used = 0;
		if (sscanf(line, "%127s %ld %15s %n", name, &row, tname, &used) != 3)
			continue;
		const struct gguf_tensor *t = gguf_tensor_find(g, name);
		if (t == NULL || (int64_t)t->ne[0] > 65536) {
			bad[t ? t->type % 64 : 0]++;
			continue;
		}
		uint64_t block, bytes;
		ggml_type_size(t->type, &block, &bytes);
		quant_dequant_row((int)t->type, (const char *)t->data + (size_t)row * (t->ne[0] / block * bytes),
		    mine, (int64_t)t->ne[0]);
		const char *p = line + used;
		int n = 0, diff = 0;
		for (; n < (int)t->ne[0]; n++) {
			char *end;
			unsigned long bits = strtoul(p, &end, 16);
			if (end == p)
				break;
			p = end;
			uint32_t mb;
			memcpy(&mb, &mine[n], 4);
			diff += mb != (uint32_t)bits;
		}
		rows[t->type % 64]++;
		bad[t->type % 64] += diff != 0 || n != (int)t->ne[0];
		if (strcmp(last, name) != 0)
			tensors[t->type % 64]++;
		last = t->name;
	}
	int st = fp ? pclose(fp) : -1;
	ok(st == 0, "tests/qdeq.py ran (status %d)", st);
	int any = 0;
	for (int ty = 0; ty < 64; ty++)
		if (rows[ty]) {
			any = 1;
			ok(bad[ty] == 0, "%s: %d rows of %d tensors dequantized bit for bit as qdeq.py "
			    "(%d differ)", ggml_type_name((uint32_t)ty), rows[ty], tensors[ty], bad[ty]);
		}
	ok(any, "the file has quantized matrices");
	if (f32path != NULL && (gd = gguf_open(f32path, &e)) == NULL)
		ok(0, "%s opens (%s)", f32path, e.msg);
	if (gd != NULL) {
		/* every element of every quantized matrix, against mkmodel's own values */
		size_t n_el = 0, n_diff = 0, n_t = 0;
		for (size_t i = 0; i < gguf_n_tensors(g); i++) {
			const struct gguf_tensor *t = gguf_tensor_at(g, i), *td;
			if (!quant_supported((int)t->type))
				continue;
			td = gguf_tensor_find(gd, t->name);
			if (td == NULL || td->type != GGML_TYPE_F32 || td->ne[0] != t->ne[0] ||
			    td->ne[1] != t->ne[1]) {
				n_diff++;
				continue;
			}
			uint64_t block, bytes;
			ggml_type_size(t->type, &block, &bytes);
			size_t rb = t->ne[0] / block * bytes;
			for (uint64_t r = 0; r < t->ne[1]; r++) {
				quant_dequant_row((int)t->type, (const char *)t->data + r * rb, mine,
				    (int64_t)t->ne[0]);
				n_diff += memcmp(mine, (const float *)td->data + r * t->ne[0], t->ne[0] * 4) != 0;
				n_el += t->ne[0];
			}
			n_t++;
		}
		ok(n_t > 0 && n_diff == 0, "all %zu elements of %zu quantized matrices equal the F32 "
		    "values mkmodel's quantizer wrote beside them (%zu rows differ)", n_el, n_t, n_diff);
		gguf_close(gd);
	}
	free(line);
	free(mine);
	gguf_close(g);
}

/* --- logits ------------------------------------------------------------------------------ */

/* last-position logits of ids into a fresh array (ctx left holding the sequence) */
static float *
run_ids(struct ctx *cx, const int32_t *ids, int n, int nv)
{
	struct err e;
	float *l = malloc(sizeof(float) * (size_t)nv);

	if (ctx_eval(cx, 0, ids, n, &e) == -1) {
		diag("%s", e.msg);
		free(l);
		return NULL;
	}
	memcpy(l, ctx_logits(cx, 0), sizeof(float) * (size_t)nv);
	return l;
}

static void
ref_file(const char *name)
{
	const char *shared = ref_shared();
	char path[4400];
	struct err e;

	json_t *tj = ref_json("quant/tolerances.json");
	json_t *ref = ref_json("quant/%s/reference.json", name);
	json_t *fj = json_object_get(json_object_get(tj, "files"), name);
	if (!ok(tj && ref && fj, "%s: reference.json and its tolerances.json entry load", name))
		return;
	double tol = json_real_value(json_object_get(fj, "llamacpp_max_abs"));
	snprintf(path, sizeof(path), "%s/reference/quant/%s.gguf", shared, name);
	struct model *m = model_open(path, &e);
	if (!ok(m != NULL, "%s opens", path)) {
		diag("%s", e.msg);
		return;
	}
	int nv = model_hparams(m)->n_vocab;
	diag("%s: %s weights, %s kernels; llama.cpp's deviation on this file %.4g", name,
	    model_weight_type(m), matmul_kernel_name(), tol);
	json_t *cases = json_object_get(ref, "cases");
	double worst = 0;
	for (size_t k = 0; k < json_array_size(cases); k++) {
		json_t *c = json_array_get(cases, k);
		const char *cn = json_string_value(json_object_get(c, "name"));
		int n, ng;
		int32_t *ids = ref_ids(json_object_get(c, "ids"), &n);
		int32_t *greedy = ref_ids(json_object_get(c, "greedy"), &ng);
		json_t *margins = json_object_get(c, "greedy_top2_margin");
		double lc = json_real_value(json_object_get(json_object_get(fj,
		    "llamacpp_max_abs_per_case"), cn));
		struct ctx_params p = ctx_params_default();
		p.n_ctx = n + ng + 1;
		p.n_batch = n;
		struct ctx *cx = ctx_new(m, &p, &e);
		float *got = cx ? run_ids(cx, ids, n, nv) : NULL;
		snprintf(path, sizeof(path), "%s/reference/quant/%s/%s", shared, name,
		    json_string_value(json_object_get(c, "last_logits_file")));
		float *want = ref_read_f32(path, (size_t)nv);
		double d = ref_max_abs(got, want, nv);
		worst = fmax(worst, d);
		ok(got && want && d <= tol, "%s/%s: max|dlogit| %.4g over %d logits; llama.cpp %.4g "
		    "here, %.4g on the file (the bound)", name, cn, d, nv, lc, tol);
		/* free-running greedy: ours against the reference's until they part; they may only
		 * part where the reference's top-2 margin is within 2 d (d: our deviation, 2x for
		 * positions other than the one measured, at most the tolerance) */
		double dd = fmin(2 * d, tol);
		int same = 0, parted = -1;
		const float *l = got;
		for (int g = 0; l && g < ng; g++) {
			int32_t me = sample_greedy(l, nv);
			if (me != greedy[g]) {
				parted = g;
				break;
			}
			same++;
			if (g + 1 < ng && ctx_eval(cx, 0, &me, 1, &e) == -1)
				break;
			l = ctx_logits(cx, 0);
		}
		double mg = parted >= 0 ? json_real_value(json_array_get(margins, (size_t)parted)) : 0;
		if (parted < 0)
			ok(same == ng, "%s/%s: greedy: all %d tokens as the reference", name, cn, ng);
		else
			ok(mg <= 2 * dd, "%s/%s: greedy: %d of %d tokens as the reference, then a step "
			    "whose reference top-2 margin %.3g is within 2 x %.3g", name, cn, same, ng, mg, dd);
		free(ids); free(greedy); free(got); free(want);
		ctx_free(cx);
	}
	diag("%s: worst max|dlogit| %.4g, llama.cpp %.4g (ours/llama.cpp %.2f)", name, worst, tol,
	    worst / tol);
	model_close(m);
	json_decref(ref);
	json_decref(tj);
}

static void
pair_files(const char *qpath, const char *fpath, double tol)
{
	struct err e;

	json_t *ref = ref_json("tiny-l2/reference.json");
	struct model *q = model_open(qpath, &e), *f = NULL;
	if (q == NULL)
		diag("%s", e.msg);
	else if ((f = model_open(fpath, &e)) == NULL)
		diag("%s", e.msg);
	if (!ok(ref && q && f, "%s and %s open", qpath, fpath))
		return;
	int nv = model_hparams(q)->n_vocab;
	diag("%s: %s weights, %s kernels", qpath, model_weight_type(q), matmul_kernel_name());
	json_t *cases = json_object_get(ref, "cases");
	for (size_t k = 0; k < json_array_size(cases); k++) {
		json_t *c = json_array_get(cases, k);
		const char *cn = json_string_value(json_object_get(c, "name"));
		int n;
		int32_t *ids = ref_ids(json_object_get(c, "ids"), &n);
		struct ctx_params p = ctx_params_default();
		p.n_ctx = n + 1;
		p.n_batch = n;
		struct ctx *cq = ctx_new(q, &p, &e), *cf = ctx_new(f, &p, &e);
		float *lq = cq ? run_ids(cq, ids, n, nv) : NULL, *lf = cf ? run_ids(cf, ids, n, nv) : NULL;
		double d = ref_max_abs(lq, lf, nv);
		ok(lq && lf && d <= tol, "%s: max|dlogit| %.4g <= %g against the same weights in "
		    "float32 over %d logits", cn, d, tol, nv);
		free(ids); free(lq); free(lf);
		ctx_free(cq);
		ctx_free(cf);
	}
	model_close(q);
	model_close(f);
	json_decref(ref);
}

int
main(int argc, char **argv)
{
	if (getenv("GUARDD_GENERIC"))
		matmul_force_generic(1);
	if (argc == 2 && strcmp(argv[1], "kernels") == 0) {
		qact_known();
		matmul_random();
	} else if (argc >= 3 && argc <= 4 && strcmp(argv[1], "deq") == 0) {
		if (access(argv[2], R_OK) != 0)
			skip_all("the file is absent (../shared or the test models missing)");
		deq_file(argv[2], argc == 4 ? argv[3] : NULL);
	} else if (argc == 3 && strcmp(argv[1], "ref") == 0)
		ref_file(argv[2]);
	else if (argc == 5 && strcmp(argv[1], "pair") == 0) {
		if (access(argv[2], R_OK) != 0)
			skip_all("the test models are absent (no ../shared)");
		pair_files(argv[2], argv[3], atof(argv[4]));
	} else {
		fprintf(stderr, "usage: t_quant kernels | deq FILE [F32] | ref NAME | pair Q F32 TOL\n");
		return 2;
	}
	return done_testing();
}
