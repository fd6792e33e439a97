/* t_pruned.c - pruned output heads (README "Pruned output heads"): a GGUF or Hugging Face
 * checkpoint whose head has fewer rows than the vocabulary, with the token id of each row.
 *   - its logits for the mapped tokens equal, bit for bit, those of the unpruned model the
 *     rows were cut from (tiny-l3's tied embedding, rig-l3's lm_head), every other token's
 *     are -inf, with the SIMD and the portable kernels;
 *   - the classifier's unsafe_score is P(unsafe) of the softmax restricted to the head's
 *     tokens, computed here by hand, and the verdicts are the unpruned model's;
 *   - a sampler only ever picks a token of the head;
 *   - bad maps (wrong length, out of range, duplicate, wrong type, none for a smaller head,
 *     one for a tied head) are refused with messages naming the key and the row.
 *   t_pruned MODELS_DIR   (tiny-l3-*, rig-l3*, built by tests/mkmodels.sh) */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "classifier/conv.h"
#include "classifier/prompt.h"
#include "core/ctx.h"
#include "core/gguf.h"
#include "core/matmul.h"
#include "core/model.h"
#include "core/sample.h"
#include "core/tok.h"
#include "policy/policy.h"
#include "tap.h"

/* tests/mkmodel.c's pruned_ids: the head's rows, in order */
static const int32_t ids20[] = { 19193, 39257, 198, 50, 16, 17, 18, 19, 20, 21, 22, 23, 24,
	605, 806, 717, 1032, 975, 11, 128009 };
enum { N20 = 20, TK_UNSAFE = 39257, TK_NN = 271 };

static const char *dir;
static char tmp[4096];

static int
in_head(int32_t t)
{
	for (int i = 0; i < N20; i++)
		if (ids20[i] == t)
			return 1;
	return 0;
}

/* Logits at 3 positions of one prefill (n_out = 3 rows) of a fixed token sequence. */
static float *
logits3(const struct model *m, struct err *e)
{
	enum { N = 24 };
	int nv = model_hparams(m)->n_vocab;
	int32_t toks[N], seq[N] = { 0 };
	uint8_t want[N] = { 0 };
	struct ctx_params p = ctx_params_default();

	p.n_ctx = 64;
	p.n_outputs = 3;
	p.n_threads = 2;
	struct ctx *c = ctx_new(m, &p, e);
	float *out = malloc((size_t)nv * 3 * sizeof(float));
	if (c == NULL || out == NULL) {
		ctx_free(c);
		free(out);
		return NULL;
	}
	for (int i = 0; i < N; i++)
		toks[i] = (int32_t)((i * 7919 + 13) % nv);
	want[5] = want[17] = want[N - 1] = 1;
	struct batch b = { N, toks, seq, want };
	if (ctx_decode(c, &b, e) == -1) {
		ctx_free(c);
		free(out);
		return NULL;
	}
	for (int k = 0; k < 3; k++)
		memcpy(out + (size_t)k * nv, ctx_logits(c, k), (size_t)nv * sizeof(float));
	ctx_free(c);
	return out;
}

/* The pruned model's rows against the full model's: mapped tokens bit-identical, the others
 * -inf. */
static void
compare(const char *pruned, const char *full, const char *what, int noise)
{
	char pp[4200], fp[4200];
	struct err e;

	snprintf(pp, sizeof(pp), "%s/%s", dir, pruned);
	snprintf(fp, sizeof(fp), "%s/%s", dir, full);
	struct model *mp = model_open(pp, &e);
	if (!ok(mp != NULL, "%s: %s loads (%s)", what, pruned, mp ? "ok" : e.msg))
		return;
	struct model *mf = model_open(fp, &e);
	if (!ok(mf != NULL, "%s: %s loads (%s)", what, full, mf ? "ok" : e.msg)) {
		model_close(mp);
		return;
	}
	const int32_t *map, *fmap;
	int rows = model_head(mp, &map), frows = model_head(mf, &fmap);
	int nv = model_hparams(mp)->n_vocab;
	ok(rows == N20 && map != NULL && memcmp(map, ids20, sizeof(ids20)) == 0,
	    "%s: the head has %d rows mapped to the spec's token ids", what, rows);
	ok(frows == nv && fmap == NULL && nv == model_hparams(mf)->n_vocab,
	    "%s: the full model's head has every token's row (%d)", what, frows);
	for (int gen = 0; gen < 2; gen++) {
		matmul_force_generic(gen);
		float *lp = logits3(mp, &e), *lf = lp ? logits3(mf, &e) : NULL;
		long same = 0, diff = 0, inf = 0, notinf = 0;
		for (int k = 0; lp && lf && k < 3; k++)
			for (int t = 0; t < nv; t++) {
				float a = lp[(size_t)k * nv + t], b = lf[(size_t)k * nv + t];
				if (in_head(t))
					memcmp(&a, &b, sizeof(a)) == 0 ? same++ : diff++;
				else
					a == -INFINITY ? inf++ : notinf++;
			}
		ok(lp && lf && same == 3 * N20 && diff == 0,
		    "%s, %s kernels: the %d mapped logits of 3 rows equal the full head's bit for bit "
		    "(%ld equal, %ld differ)", what, matmul_kernel_name(), N20, same, diff);
		ok(lp && lf && inf == 3L * (nv - N20) && notinf == 0,
		    "%s, %s kernels: every other logit is -inf (%ld, %ld not)", what,
		    matmul_kernel_name(), inf, notinf);
		if (noise)	/* (rig-l3's head reads special tokens only: equal rows here) */
			ok(lp && memcmp(lp, lp + nv, (size_t)nv * sizeof(float)) != 0,
			    "%s: the 3 rows differ (each position its own)", what);
		free(lp);
		free(lf);
	}
	matmul_force_generic(0);
	model_close(mf);
	model_close(mp);
}

/* P(unsafe) over the softmax of the head's tokens: as the classifier sums over the whole
 * vocabulary in token order (-inf adds exact zeros), summing the head's tokens in ascending
 * order gives the same double */
static double
restricted_p(const float *l, int32_t tok)
{
	int32_t s[N20];
	double mx = -INFINITY, sum = 0;

	memcpy(s, ids20, sizeof(s));
	for (int i = 0; i < N20; i++)
		for (int j = i + 1; j < N20; j++)
			if (s[j] < s[i]) {
				int32_t t = s[i];
				s[i] = s[j];
				s[j] = t;
			}
	for (int i = 0; i < N20; i++)
		mx = l[s[i]] > mx ? l[s[i]] : mx;
	for (int i = 0; i < N20; i++)
		sum += exp((double)l[s[i]] - mx);
	return exp((double)l[tok] - mx) / sum;
}

/* the prompt as the classifier builds it (prefix, body, then the model's "\n\n"), evaluated
 * straight through, and P(unsafe) from its logits */
static double
by_hand(const struct model *m, const struct policy *pol, const struct conv *cv, struct err *e)
{
	struct buf text = { 0 };
	struct tokvec ids = { 0 };
	enum role r;
	double p = NAN;

	if (prompt_prefix(pol, ROLE_REQUEST, model_tok(m), &text, &ids, e) == -1 ||
	    prompt_body(cv, model_tok(m), &text, &ids, &r, e) == -1 || tokvec_push(&ids, TK_NN) == -1)
		goto out;
	struct ctx_params cp = ctx_params_default();
	cp.n_ctx = (int)ids.n + 8;
	cp.n_threads = 2;
	struct ctx *c = ctx_new(m, &cp, e);
	if (c != NULL && ctx_eval(c, 0, ids.v, (int)ids.n, e) == 0)
		p = restricted_p(ctx_logits(c, 0), TK_UNSAFE);
	ctx_free(c);
out:
	buf_free(&text);
	tokvec_free(&ids);
	return p;
}

static int
bits_eq(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

/* classifier_run on the pruned model: the score by hand, the verdict of the full model */
static void
classify(const char *pruned, const char *full, const char *text, const char *raw,
    enum decision want)
{
	char pp[4200], fp[4200];
	struct err e;
	struct conv cv;
	struct policy *pol = policy_default();

	snprintf(pp, sizeof(pp), "%s/%s", dir, pruned);
	snprintf(fp, sizeof(fp), "%s/%s", dir, full ? full : "");
	struct model *m = model_open(pp, &e);
	if (!ok(m != NULL && conv_simple(&cv, text, strlen(text), NULL, 0, &e) == 0,
	    "%s loads (%s)", pruned, m ? "ok" : e.msg)) {
		model_close(m);
		policy_free(pol);
		return;
	}
	struct classifier_params cpar = classifier_params_default();
	cpar.n_threads = 2;
	cpar.n_ctx = 1024;
	struct classifier *c = classifier_new(m, &cpar, &e);
	struct verdict v;
	const struct conv *one = &cv;
	memset(&v, 0, sizeof(v));
	ok(c != NULL && classifier_add_policy(c, pol, &e) == 0, "%s: a classifier", pruned);
	if (c != NULL)
		classifier_run(c, 0, &one, 1, &v);
	double hand = by_hand(m, pol, &cv, &e);
	ok(c != NULL && bits_eq(v.unsafe_score, hand) && hand > 0 && hand < 1,
	    "%s, '%s': unsafe_score %.17g is P(unsafe) of the softmax over the head's %d tokens, "
	    "by hand %.17g", pruned, text, v.unsafe_score, N20, hand);
	if (raw != NULL)
		ok(strcmp(v.raw, raw) == 0 && v.decision == want, "%s, '%s': answers '%s' (%s)",
		    pruned, text, v.raw, decision_name(v.decision));
	else {
		/* hash noise: whatever it says, it is spelled with the head's tokens only */
		int only = 1;
		for (const char *s = v.raw; *s; s++)
			only &= strchr("safeun\nS0123456789,", *s) != NULL;
		ok(only, "%s, '%s': the answer '%s' uses the head's tokens only (%s)", pruned, text,
		    v.raw, decision_name(v.decision));
	}
	if (full != NULL) {
		struct model *mf = model_open(fp, &e);
		struct classifier *cf = mf ? classifier_new(mf, &cpar, &e) : NULL;
		struct verdict vf;
		memset(&vf, 0, sizeof(vf));
		if (cf != NULL && classifier_add_policy(cf, pol, &e) == 0)
			classifier_run(cf, 0, &one, 1, &vf);
		ok(cf != NULL && strcmp(vf.raw, v.raw) == 0 && vf.decision == v.decision &&
		    vf.n_codes == v.n_codes, "%s, '%s': the unpruned %s gives the same verdict ('%s', "
		    "%s; its score over the whole vocabulary %.6g)", pruned, text, full, vf.raw,
		    decision_name(vf.decision), vf.unsafe_score);
		verdict_free(&vf);
		classifier_free(cf);
		model_close(mf);
	}
	verdict_free(&v);
	classifier_free(c);
	conv_free(&cv);
	model_close(m);
	policy_free(pol);
}

/* a sampler over pruned rows picks only the head's tokens */
static void
sample_check(void)
{
	char pp[4200];
	struct err e;

	snprintf(pp, sizeof(pp), "%s/tiny-l3-pruned-bf16.gguf", dir);
	struct model *m = model_open(pp, &e);
	float *l = m ? logits3(m, &e) : NULL;
	int nv = m ? model_hparams(m)->n_vocab : 0, bad = 0, seen = 0;
	/* the whole vocabulary sorted (top_k 0; slow, so fewer draws), and top-k 40: 20 finite
	 * candidates and 20 at -inf */
	for (int pass = 0; pass < 2; pass++) {
		struct sampler_params sp = sampler_params_default();
		int draws = pass ? 2000 : 60;
		sp.temperature = 1.5f;
		sp.top_k = pass ? 40 : 0;
		sp.top_p = 1;
		sp.seed = 7;
		struct sampler *s = l ? sampler_new(&sp, nv) : NULL;
		unsigned char hit[N20] = { 0 };
		bad = seen = 0;
		for (int i = 0; s && i < draws; i++) {
			int32_t t = sampler_sample(s, l + (size_t)(i % 3) * nv);
			bad += !in_head(t);
			for (int j = 0; j < N20; j++)
				if (ids20[j] == t && !hit[j]++)
					seen++;
		}
		ok(s && bad == 0 && seen > 1, "%d samples at temperature 1.5, top-k %d over the whole "
		    "vocabulary: all among the head's tokens (%d outside), %d distinct", draws,
		    sp.top_k, bad, seen);
		sampler_free(s);
	}
	ok(l && in_head(sample_greedy(l, nv)), "greedy picks a head token");
	free(l);
	model_close(m);
}

/* ---- refused maps ------------------------------------------------------------------------ */

static char *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long len;

	if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (p = malloc((size_t)len + 1)) && fread(p, 1, (size_t)len, f) == (size_t)len) {
		p[len] = '\0';
		*n = (size_t)len;
	} else {
		free(p);
		p = NULL;
	}
	if (f)
		fclose(f);
	return p;
}

static int
spit(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int rc = f && fwrite(p, 1, n, f) == n ? 0 : -1;

	if (f && fclose(f) != 0)
		rc = -1;
	return rc;
}

/* A copy of an HF directory (weights and tokenizer linked) whose config.json has `ids` in
 * place of the output_token_ids line (NULL: no such key), and tie as given; loads it and
 * expects a message holding every `want` (NULL want: expects success, returns the model). */
static struct model *
hf_case(const char *src, const char *ids, int tie, const char *what, const char *w1,
    const char *w2)
{
	char path[4200], cfg[4400], link[4400];
	struct err e;
	size_t n;

	snprintf(path, sizeof(path), "%s/hf", tmp);
	mkdir(path, 0755);
	const char *files[] = { "model.safetensors", "tokenizer.json" };
	for (int i = 0; i < 2; i++) {
		snprintf(link, sizeof(link), "%s/%s", path, files[i]);
		snprintf(cfg, sizeof(cfg), "%s/%s/%s", dir, src, files[i]);
		unlink(link);
		if (symlink(cfg, link) == -1)
			return ok(0, "%s: symlink %s", what, link), NULL;
	}
	snprintf(cfg, sizeof(cfg), "%s/%s/config.json", dir, src);
	char *c = slurp(cfg, &n), *line = c ? strstr(c, " \"output_token_ids\"") : NULL;
	char *end = line ? strchr(line, '\n') : NULL;
	struct buf b = { 0 };
	if (end == NULL) {
		free(c);
		return ok(0, "%s: %s has no output_token_ids line", what, cfg), NULL;
	}
	buf_add(&b, c, (size_t)(line - c));
	if (ids != NULL)
		buf_printf(&b, " \"output_token_ids\": %s,", ids);
	buf_adds(&b, end);
	free(c);
	char *tf = strstr(b.p, "\"tie_word_embeddings\": false");
	if (tie && tf != NULL)
		memcpy(tf + 23, "true ", 5);
	snprintf(cfg, sizeof(cfg), "%s/config.json", path);
	spit(cfg, b.p, b.n);
	buf_free(&b);
	struct model *m = model_open(path, &e);
	if (w1 == NULL) {
		ok(m != NULL, "%s: loads (%s)", what, m ? "ok" : e.msg);
		return m;
	}
	ok(m == NULL && strstr(e.msg, w1) && (w2 == NULL || strstr(e.msg, w2)),
	    "%s: refused (%s)", what, m ? "loaded" : e.msg);
	model_close(m);
	return NULL;
}

static void
hf_rejects(void)
{
	char arr[512], bad[512];
	size_t o = 0;

	for (int i = 0; i < N20; i++)
		o += (size_t)snprintf(arr + o, sizeof(arr) - o, "%s%d", i ? ", " : "[", ids20[i]);
	snprintf(arr + o, sizeof(arr) - o, "]");
	hf_case("rig-l3-pruned", NULL, 0, "HF, no output_token_ids for a 20-row lm_head",
	    "fewer than vocab_size 128256", "needs \"output_token_ids\"");
	/* 19 and 21 ids */
	snprintf(bad, sizeof(bad), "%.*s]", (int)(strrchr(arr, ',') - arr), arr);
	hf_case("rig-l3-pruned", bad, 0, "HF, 19 ids for 20 rows", "output_token_ids has 19 token ids",
	    "20 rows");
	snprintf(bad, sizeof(bad), "%.*s, 7]", (int)strlen(arr) - 1, arr);
	hf_case("rig-l3-pruned", bad, 0, "HF, 21 ids for 20 rows", "has 21 token ids", "20 rows");
	/* 20 ids, one of them bad */
	static const struct {
		const char *ids, *what, *want;
	} bad_ids[] = {
		{ "[19193, 39257, 198, 50, 16, 128256, 18, 19, 20, 21, 22, 23, 24, 605, 806, 717, 1032, "
		  "975, 11, 128009]", "HF, an id past the vocabulary",
		  "output_token_ids[5]: token id 128256 is outside the vocabulary (0..128255)" },
		{ "[19193, 39257, 198, 50, 16, 17, 18, 19, 20, 21, 22, 23, 24, 605, 806, 717, 1032, "
		  "975, -1, 128009]", "HF, a negative id", "output_token_ids[18]: token id -1 is outside" },
		{ "[19193, 39257, 198, 50, 16, 17, 18, 198, 20, 21, 22, 23, 24, 605, 806, 717, 1032, "
		  "975, 11, 128009]", "HF, a token given two rows",
		  "output_token_ids[7]: token id 198 is already row 2's" },
		{ "[19193, 39257, 198, 50, 16, 17, 18, 19, 20, 21, 22, 23, 24, 605, 806, 717, 1032, "
		  "975, 11.5, 128009]", "HF, a fractional id", "output_token_ids[18] must be an integer" },
	};
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
		hf_case("rig-l3-pruned", bad_ids[i].ids, 0, bad_ids[i].what, bad_ids[i].want, NULL);
	hf_case("rig-l3-pruned", "\"19193\"", 0, "HF, a string", "'output_token_ids' must be an array",
	    NULL);
	hf_case("rig-l3-pruned", arr, 1, "HF, a map with tie_word_embeddings true",
	    "output_token_ids is set but tie_word_embeddings is true", NULL);
	hf_case("rig-l3-pruned", "{\"0\": 19193, \"01\": 39257}", 0, "HF, a token_map key with a "
	    "leading zero", "key \"01\" is not a row number", NULL);
	hf_case("rig-l3-pruned", "{\"0\": 19193, \"2\": 39257}", 0, "HF, a token_map key past its "
	    "rows", "key \"2\" is not a row number (0 to 1", NULL);

	/* the ExecuTorch token_map.json form, keys shuffled: the same model as the array */
	o = 0;
	for (int i = N20 - 1; i >= 0; i--)
		o += (size_t)snprintf(bad + o, sizeof(bad) - o, "%s\"%d\": %d", i == N20 - 1 ? "{" : ", ",
		    i, ids20[i]);
	snprintf(bad + o, sizeof(bad) - o, "}");
	struct model *mo = hf_case("rig-l3-pruned", bad, 0, "HF, ExecuTorch's token_map object "
	    "{\"19\": 128009, ..., \"0\": 19193}", NULL, NULL);
	const int32_t *map;
	ok(mo && model_head(mo, &map) == N20 && memcmp(map, ids20, sizeof(ids20)) == 0,
	    "the object's rows map to the same ids as the array");
	model_close(mo);
}

/* a patched copy of a GGUF file: loads it, expects a message holding w1 (and w2) */
static void
gguf_case(const char *img, size_t n, const char *what, const char *w1, const char *w2)
{
	char path[4300];
	struct err e;

	snprintf(path, sizeof(path), "%s/p.gguf", tmp);
	if (spit(path, img, n) == -1) {
		ok(0, "%s: write %s", what, path);
		return;
	}
	struct model *m = model_open(path, &e);
	if (w1 == NULL)
		ok(m != NULL && model_head(m, NULL) == N20, "%s: loads (%s)", what, m ? "ok" : e.msg);
	else
		ok(m == NULL && strstr(e.msg, w1) && (w2 == NULL || strstr(e.msg, w2)),
		    "%s: refused (%s)", what, m ? "loaded" : e.msg);
	model_close(m);
	unlink(path);
	snprintf(path, sizeof(path), "%s/p.gguf.sha256", tmp);
	unlink(path);
}

static void
gguf_rejects(void)
{
	char path[4300];
	size_t n;

	snprintf(path, sizeof(path), "%s/rig-l3-pruned.gguf", dir);
	char *img = slurp(path, &n);
	static const char key[] = "guardd.output_token_ids";
	char *k = NULL, *t = NULL;
	/* the key: its name, u32 value type (array), u32 element type, u64 count, the ids */
	for (size_t i = 0; img && i + sizeof(key) + 16 < n && k == NULL; i++)
		if (memcmp(img + i, key, sizeof(key) - 1) == 0)
			k = img + i + sizeof(key) - 1;
	/* the tensor output.weight in the index: u64 name length 13, the name, n_dims, ne[0..1] */
	static const char tn[] = "\x0d\0\0\0\0\0\0\0output.weight";
	for (size_t i = 0; img && i + sizeof(tn) + 24 < n && t == NULL; i++)
		if (memcmp(img + i, tn, sizeof(tn) - 1) == 0)
			t = img + i + sizeof(tn) - 1;
	if (!ok(k != NULL && t != NULL, "the GGUF's key and its output.weight found")) {
		free(img);
		return;
	}
	char *save = malloc(n);
	memcpy(save, img, n);
	uint32_t u, v[N20];
	memcpy(v, k + 16, sizeof(v));	/* GGUF values are unaligned */
	ok(memcmp(v, ids20, sizeof(v)) == 0, "the file holds the 20 ids as u32");
	size_t off = (size_t)(k + 16 - img);

	gguf_case(img, n, "GGUF as written", NULL, NULL);
	img[k - img - 1] = 'X';	/* guardd.output_token_idX: an unknown key, ignored */
	gguf_case(img, n, "GGUF, no map for a 20-row output.weight", "has 20 rows, fewer than the "
	    "vocabulary's 128256", "needs the metadata key guardd.output_token_ids");
	memcpy(img, save, n);
	u = 128256;
	memcpy(k + 16 + 5 * 4, &u, 4);
	char want[128];
	snprintf(want, sizeof(want), "guardd.output_token_ids[5] (offset %zu): token id 128256 is "
	    "outside the vocabulary (0..128255)", off + 20);
	gguf_case(img, n, "GGUF, an id past the vocabulary", want, NULL);
	memcpy(img, save, n);
	u = 198;
	memcpy(k + 16 + 7 * 4, &u, 4);
	gguf_case(img, n, "GGUF, a token given two rows", "guardd.output_token_ids[7]",
	    "token id 198 is already row 2's");
	memcpy(img, save, n);
	u = GGUF_I32;
	memcpy(k + 4, &u, 4);
	gguf_case(img, n, "GGUF, the ids as i32", NULL, NULL);
	u = 0xffffffffu;
	memcpy(k + 16 + 3 * 4, &u, 4);
	gguf_case(img, n, "GGUF, a negative i32 id", "guardd.output_token_ids[3]",
	    "token id -1 is outside");
	memcpy(img, save, n);
	u = GGUF_F32;
	memcpy(k + 4, &u, 4);
	gguf_case(img, n, "GGUF, the ids as f32", "guardd.output_token_ids must be an array of u32 "
	    "or i32", NULL);
	memcpy(img, save, n);
	uint64_t rows = 19;
	memcpy(t + 4 + 8, &rows, 8);
	gguf_case(img, n, "GGUF, 20 ids for a 19-row output.weight", "guardd.output_token_ids has "
	    "20 token ids", "19 rows");
	memcpy(img, save, n);
	t[-7] = 'X';	/* outpuX.weight: no head tensor, so the embedding is the head */
	gguf_case(img, n, "GGUF, a map with no output.weight", "guardd.output_token_ids is set but "
	    "the file has no output.weight", NULL);
	free(save);
	free(img);
}

int
main(int argc, char **argv)
{
	char probe[4200];
	struct stat st;

	if (argc != 2)
		return 2;
	static char abs[PATH_MAX];
	if (realpath(argv[1], abs) == NULL)
		skip_all("no models directory (../shared absent, tests/mkmodels.sh built none)");
	dir = abs;	/* the symlinks of the HF cases point here from /tmp */
	snprintf(probe, sizeof(probe), "%s/rig-l3-pruned.gguf", dir);
	if (stat(probe, &st) == -1)
		skip_all("no pruned test models (../shared absent, tests/mkmodels.sh built none)");
	snprintf(tmp, sizeof(tmp), "/tmp/t_pruned.XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return 1;

	compare("tiny-l3-pruned-bf16.gguf", "tiny-l3-bf16.gguf", "GGUF BF16, tied source", 1);
	compare("tiny-l3-pruned-bf16", "tiny-l3-bf16", "HF BF16, tied source", 1);
	compare("rig-l3-pruned.gguf", "rig-l3.gguf", "GGUF F32, untied source", 0);
	classify("rig-l3-pruned.gguf", "rig-l3.gguf", "How do I bake bread?", "safe", DECISION_ALLOW);
	classify("rig-l3-pruned.gguf", "rig-l3.gguf", "How do I build a bomb?", "unsafe\nS1",
	    DECISION_BLOCK);
	classify("rig-l3-pruned", "rig-l3.gguf", "How do I build a bomb?", "unsafe\nS1",
	    DECISION_BLOCK);
	classify("rig-l3-pruned", NULL, "How do I bake bread?", "safe", DECISION_ALLOW);
	classify("tiny-l3-pruned-bf16.gguf", NULL, "How do I bake bread?", NULL, DECISION_ALLOW);
	sample_check();
	hf_rejects();
	gguf_rejects();

	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
	return done_testing();
}
