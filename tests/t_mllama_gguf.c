/* t_mllama_gguf.c - Llama 3.2-Vision as one GGUF made by `guard quantize` (core/mllama_gguf.c),
 * against ../shared/reference/tiny-mllama: the tensor types (the text stack quantized with
 * llama-quantize's choices, the vision tower and projector as stored, vectors F32), the F16
 * file's logits bit for bit those of the F16 Hugging Face directory it came from, and the
 * Q8_0 and Q4_K_M files' last logits within a measured bound of the float64 reference for all
 * 6 cases, with the reference's greedy tokens wherever its top-2 margin is wider than twice
 * that bound. A truncated file is refused with its name.
 *   t_mllama_gguf F16_DIR F16_GGUF Q8_0_GGUF Q4_K_M_GGUF TRUNCATED_GGUF */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/ctx.h"
#include "core/gguf.h"
#include "core/image.h"
#include "core/imgprep.h"
#include "core/mllama.h"
#include "core/model.h"
#include "core/sample.h"
#include "tap.h"

/* How far a file's last logits may be from the float64 reference (max |d| over the
 * vocabulary, any case). Measured here (the last diagnostic line): Q8_0 0.0272, Q4_K_M 0.220
 * at worst over the 6 cases; this is the quantization's own effect (the weights differ), of
 * the order it has on tiny-l2 in ../shared/reference/README.md (0.013 and 0.205 there, "quantization
 * itself moved the logits by"). The bounds are 1.5x the measured worst: a broken block,
 * scale, row order or tensor type moves logits by far more (a Q4_K_M file read as if its Q6_K
 * tensors were Q4_K does not load; a vision tower off by one feature moves them by 0.01-0.3
 * on top of this). */
#define BOUND_Q8_0 0.041
#define BOUND_Q4_K_M 0.33

static const char *ref_dir;

static float *
read_f32(const char *name, size_t n)
{
	char path[4400];
	FILE *fp;
	float *v = malloc(n * sizeof(float));

	snprintf(path, sizeof(path), "%s/%s", ref_dir, name);
	if ((fp = fopen(path, "rb")) == NULL || v == NULL || fread(v, sizeof(float), n, fp) != n) {
		if (fp)
			fclose(fp);
		free(v);
		return NULL;
	}
	fclose(fp);
	return v;
}

/* pixel_values of a reference image with Meta's preprocessing values (the Hub's
 * preprocessor_config.json, core/imgprep.h's defaults) */
static float *
pixels(const char *png, int *ar, int *nt, struct err *e)
{
	char path[4400];
	struct imgprep_config cfg;
	struct imgprep_out out;
	struct image img = { 0 };

	imgprep_config_default(&cfg);
	snprintf(path, sizeof(path), "%s/images/%s", ref_dir, png);
	if (image_load(&img, path, NULL, e) == -1)
		return NULL;
	int rc = imgprep_run(&cfg, &img, &out, e);
	image_free(&img);
	if (rc == -1)
		return NULL;
	*ar = out.aspect_ratio_id;
	*nt = (int)out.num_tiles;
	float *px = out.pixels;
	out.pixels = NULL;
	imgprep_out_free(&out);
	return px;
}

static double
margin(const float *l, int n)
{
	float a = -INFINITY, b = -INFINITY;

	for (int i = 0; i < n; i++)
		if (l[i] > a) {
			b = a;
			a = l[i];
		} else if (l[i] > b)
			b = l[i];
	return a - b;
}

/* each model's encoded images by name, so that an image shared by cases is encoded once per
 * model (the tower runs all 4 tiles of every image: it is most of this test's time) */
struct enc {
	const struct model *m;
	char name[64];
	struct mllama_image *im;
};
static struct enc encs[64];
static int n_encs;

static struct mllama_image *
encode(struct ctx *cx, const struct model *m, const char *png, struct err *e)
{
	int ar = 0, nt = 0;

	for (int i = 0; i < n_encs; i++)
		if (encs[i].m == m && strcmp(encs[i].name, png) == 0)
			return encs[i].im;
	float *px = pixels(png, &ar, &nt, e);
	if (px == NULL)
		return NULL;
	struct mllama_image *im = mllama_encode(cx, px, ar, nt, NULL, NULL, e);
	free(px);
	if (im != NULL && n_encs < 64) {
		encs[n_encs].m = m;
		snprintf(encs[n_encs].name, sizeof(encs[n_encs].name), "%s", png);
		encs[n_encs++].im = im;
	}
	return im;
}

/* one case on one model: its last logits (nv floats, the caller frees) and 8 greedy tokens
 * (each step's top-2 margin in marg) */
static float *
run(struct model *m, json_t *c, int32_t *greedy, double *marg, struct err *e)
{
	json_t *ids = json_object_get(c, "ids"), *images = json_object_get(c, "images");
	int n = (int)json_array_size(ids), nv = model_hparams(m)->n_vocab;
	float *last = NULL;
	struct mllama_image *im = NULL;

	int32_t *tok = malloc((size_t)n * sizeof(int32_t));
	for (int i = 0; i < n; i++)
		tok[i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)i));
	struct ctx_params p = ctx_params_default();
	p.n_ctx = n + 9;
	p.n_batch = n;
	struct ctx *cx = ctx_new(m, &p, e);
	if (cx == NULL)
		goto out;
	for (size_t k = 0; k < json_array_size(images); k++) {
		im = encode(cx, m, json_string_value(json_array_get(images, k)), e);
		if (im == NULL || ctx_seq_add_image(cx, 0, im, e) == -1)
			goto out;
	}
	if (ctx_eval(cx, 0, tok, n, e) == -1)
		goto out;
	last = malloc((size_t)nv * sizeof(float));
	memcpy(last, ctx_logits(cx, 0), (size_t)nv * sizeof(float));
	for (int g = 0; g < 8; g++) {
		const float *l = ctx_logits(cx, 0);
		greedy[g] = sample_greedy(l, nv);
		marg[g] = margin(l, nv);
		if (g < 7 && ctx_eval(cx, 0, &greedy[g], 1, e) == -1) {
			free(last);
			last = NULL;
			goto out;
		}
	}
out:
	ctx_free(cx);
	free(tok);
	return last;
}

/* every tensor's type: vision ("v.") and projector ("mm.") as in the source (stored), vectors
 * F32, text matrices of the expected types; the counts of each */
static void
check_types(const char *path, const char *what, uint32_t stored, const uint32_t *text, int n_text)
{
	struct err e;
	struct gguf *g = gguf_open(path, &e);
	int bad = 0, count[32] = { 0 }, vis = 0;
	char first[160] = "";

	if (!ok(g != NULL, "%s: %s opens as GGUF", what, path)) {
		diag("%s", e.msg);
		return;
	}
	for (size_t i = 0; i < gguf_n_tensors(g); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);
		int good = 0;
		if (t->n_dims == 1)
			good = t->type == GGML_TYPE_F32;
		else if (strncmp(t->name, "v.", 2) == 0 || strncmp(t->name, "mm.", 3) == 0)
			good = t->type == stored, vis++;
		else
			for (int k = 0; k < n_text; k++)
				good |= t->type == text[k];
		if (t->n_dims > 1 && t->type < 32)
			count[t->type]++;
		if (!good && bad++ == 0)
			snprintf(first, sizeof(first), "%s is %s", t->name, ggml_type_name(t->type));
	}
	ok(bad == 0 && vis > 0, "%s: vision/projector matrices as stored (%d, %s), vectors F32, "
	    "text matrices of the file type%s%s", what, vis, ggml_type_name(stored), bad ? ": " : "",
	    first);
	for (int t = 0; t < 32; t++)
		if (count[t])
			diag("%s: %s x%d", what, ggml_type_name((uint32_t)t), count[t]);
	gguf_close(g);
}

/* The KV cache holds the self-attention layers only (2 of tiny-mllama's 4; the
 * cross-attention layers attend to their images' keys): a snapshot of n text positions is
 * 2 x 2 layers x kv_dim x n floats, and restored into another sequence it continues to the
 * same logits bit for bit. */
static void
kv_layers(struct model *m, json_t *c)
{
	json_t *ids = json_object_get(c, "ids");
	int n = (int)json_array_size(ids), nv = model_hparams(m)->n_vocab;
	const struct hparams *h = model_hparams(m);
	struct ctx_params p = ctx_params_default();
	struct err e;

	p.n_ctx = n + 1;
	p.n_seq = 2;
	p.n_batch = n;
	struct ctx *cx = ctx_new(m, &p, &e);
	int32_t *tok = malloc((size_t)n * sizeof(int32_t));
	for (int i = 0; i < n; i++)
		tok[i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)i));
	int run = cx != NULL && ctx_eval(cx, 0, tok, n - 1, &e) == 0;
	struct kv_snapshot *s = run ? ctx_snapshot_save(cx, 0, n - 1, &e) : NULL;
	size_t want = 2 * 2 * (size_t)h->n_head_kv * (size_t)h->head_dim * (size_t)(n - 1) * sizeof(float);
	ok(s != NULL && kv_snapshot_bytes(s) == want, "KV cache: a snapshot of %d positions is %zu "
	    "bytes, 2 of the 4 layers (none for the cross-attention layers)", n - 1,
	    s ? kv_snapshot_bytes(s) : 0);
	float *a = malloc((size_t)nv * sizeof(float));
	int same = run && ctx_eval(cx, 0, tok + n - 1, 1, &e) == 0;
	if (same)
		memcpy(a, ctx_logits(cx, 0), (size_t)nv * sizeof(float));
	same = same && s != NULL && ctx_snapshot_restore(cx, 1, s, &e) == 0 &&
	    ctx_eval(cx, 1, tok + n - 1, 1, &e) == 0 &&
	    memcmp(a, ctx_logits(cx, 0), (size_t)nv * sizeof(float)) == 0;
	ok(same, "and restored into another sequence it continues to the same logits bit for bit");
	free(a);
	free(tok);
	kv_snapshot_free(s);
	ctx_free(cx);
}

int
main(int argc, char **argv)
{
	struct err e;

	if (argc != 6)
		skip_all("usage: t_mllama_gguf F16_DIR F16_GGUF Q8_0_GGUF Q4_K_M_GGUF TRUNCATED");
	static char rd[4200];
	if (shared_dir() == NULL)
		skip_all("../shared is absent");
	snprintf(rd, sizeof(rd), "%s/reference/tiny-mllama", shared_dir());
	ref_dir = rd;
	char rpath[4400];
	snprintf(rpath, sizeof(rpath), "%s/reference.json", ref_dir);
	json_t *ref = json_load_file(rpath, 0, NULL);
	if (ref == NULL)
		skip_all("the tiny-mllama reference.json is absent");
	json_t *cases = json_object_get(ref, "cases");

	uint32_t q8[] = { GGML_TYPE_Q8_0 }, q4[] = { GGML_TYPE_Q4_K, GGML_TYPE_Q6_K },
	    f16[] = { GGML_TYPE_F16 };
	check_types(argv[2], "F16", GGML_TYPE_F16, f16, 1);
	check_types(argv[3], "Q8_0", GGML_TYPE_F32, q8, 1);
	check_types(argv[4], "Q4_K_M", GGML_TYPE_F32, q4, 2);

	struct model *hf = model_open(argv[1], &e), *gf = NULL, *q[2] = { NULL, NULL };
	if (!ok(hf != NULL, "the F16 Hugging Face directory loads"))
		diag("%s", e.msg);
	gf = model_open(argv[2], &e);
	if (!ok(gf != NULL, "the F16 GGUF loads"))
		diag("%s", e.msg);
	for (int k = 0; k < 2; k++) {
		q[k] = model_open(argv[3 + k], &e);
		ok(q[k] != NULL, "%s loads: %s", argv[3 + k], q[k] ? model_weight_type(q[k]) : e.msg);
	}
	ok(gf != NULL && strcmp(model_format(gf), "gguf") == 0 && model_image_token(gf) == 128256,
	    "the GGUF is an mllama model (image token %d)", gf ? model_image_token(gf) : -1);
	if (hf != NULL)
		kv_layers(hf, json_array_get(cases, 0));
	const char *qname[2] = { "Q8_0", "Q4_K_M" };
	double bound[2] = { BOUND_Q8_0, BOUND_Q4_K_M }, worst[2] = { 0, 0 };
	/* MLLAMA_CASE=K[,K...]: those cases only (the sanitizer build runs one) */
	const char *only = getenv("MLLAMA_CASE");
	char list[64];
	snprintf(list, sizeof(list), ",%s,", only ? only : "");
	for (size_t ci = 0; ci < json_array_size(cases); ci++) {
		char key[24];
		snprintf(key, sizeof(key), ",%zu,", ci);
		if (only != NULL && strstr(list, key) == NULL)
			continue;
		json_t *c = json_array_get(cases, ci);
		const char *name = json_string_value(json_object_get(c, "name"));
		int nv = 128256;
		int32_t g1[8], g2[8], gq[8];
		double m1[8], m2[8], mq[8];
		float *a = hf ? run(hf, c, g1, m1, &e) : NULL;
		if (hf && a == NULL)
			diag("%s: %s", name, e.msg);
		float *b = gf ? run(gf, c, g2, m2, &e) : NULL;
		if (gf && b == NULL)
			diag("%s: %s", name, e.msg);
		ok(a != NULL && b != NULL && memcmp(a, b, (size_t)nv * sizeof(float)) == 0 &&
		    memcmp(g1, g2, sizeof(g1)) == 0, "%s: F16 GGUF = F16 directory, last logits and "
		    "8 greedy tokens bit for bit", name);
		free(a);
		free(b);
		float *r = read_f32(json_string_value(json_object_get(c, "last_logits_file")), (size_t)nv);
		json_t *greedy = json_object_get(c, "greedy");
		for (int k = 0; k < 2; k++) {
			float *l = q[k] ? run(q[k], c, gq, mq, &e) : NULL;
			double d = 0;
			for (int i = 0; l && r && i < nv; i++)
				d = fmax(d, fabs((double)l[i] - r[i]));
			worst[k] = fmax(worst[k], d);
			ok(l != NULL && r != NULL && d <= bound[k], "%s: %s last logits: max |d| %.4f <= %g "
			    "from the float64 reference", name, qname[k], d, bound[k]);
			/* greedy: equal while the F16 model's margin is wider than 2 bounds (a
			 * narrower one may flip under quantization; then the paths part) */
			int same = 0, decided = 0;
			for (int g = 0; l && g < 8; g++) {
				if (hf == NULL || m1[g] <= 2 * bound[k])
					break;
				decided++;
				same += gq[g] == (int32_t)json_integer_value(json_array_get(greedy, (size_t)g));
				if (gq[g] != (int32_t)json_integer_value(json_array_get(greedy, (size_t)g)))
					break;
			}
			ok(l != NULL && same == decided, "%s: %s greedy tokens equal the reference's for "
			    "the %d step(s) whose margin exceeds %g", name, qname[k], decided, 2 * bound[k]);
			free(l);
		}
		free(r);
	}
	diag("worst last-logit deviation over the 6 cases: Q8_0 %.4f, Q4_K_M %.4f", worst[0], worst[1]);
	/* a file cut short: refused, naming it */
	struct model *t = model_open(argv[5], &e);
	ok(t == NULL && strstr(e.msg, argv[5]) != NULL, "a truncated mllama GGUF is refused: %s",
	    t ? "(loaded)" : e.msg);
	model_close(t);
	for (int i = 0; i < n_encs; i++)
		mllama_image_free(encs[i].im);
	model_close(hf);
	model_close(gf);
	model_close(q[0]);
	model_close(q[1]);
	json_decref(ref);
	return done_testing();
}
