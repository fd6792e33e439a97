/* t_guardv2.c - Llama Guard 3 11B-Vision on the guard's incremental and cached paths, with
 * tiny-mllama as the vision guard:
 *  - a response stream over a conversation with an image: the image attached and the image
 *    form of the policy prefix evaluated once, at open; each check of the response grown
 *    piece by piece gives the verdict classifier_run gives on [conversation with the image +
 *    assistant message], bit for bit in every field, evaluating only the new tokens and the
 *    closing part; a policy swap restarts from the new policy's image prefix;
 *  - a text-only guard refuses such a stream (never judged without the image); two images
 *    and an image part without its bytes are refused too;
 *  - the image cache: the same request twice, the second restoring the image prefix with
 *    its image (no vision tower), both bit-identical to the uncached path (prefix_cache 0:
 *    the whole prompt evaluated); another role with the same image reuses the image and part
 *    of the prefix; a different image is a miss; the count bound evicts;
 *  - model_hash covers a vision model's preprocessor_config.json (what an image becomes):
 *    sha256sum's listing with it, and a changed mean changes the hash.
 *   t_guardv2 MLLAMA_DIR TEXT_GUARD IMAGE IMAGE2 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "classifier/classifier.h"
#include "classifier/conv.h"
#include "classifier/imgcache.h"
#include "classifier/prompt.h"
#include "core/model.h"
#include "policy/policy.h"
#include "asan.h"
#include "tap.h"

static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *p = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (p = malloc((size_t)n)) != NULL && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	if (p != NULL)
		*len = (size_t)n;
	fclose(f);
	return p;
}

/* user: [text, image] (+ the assistant's resp[0..rlen) when resp != NULL) */
static void
mkconv(struct conv *c, const char *user, const struct conv_image *img, size_t n_img,
    const char *resp, size_t rlen)
{
	struct err e;

	memset(c, 0, sizeof(*c));
	conv_add_msg(c, &e);
	conv_add_part(c, user, strlen(user), &e);
	c->msg[0].n_images = n_img;
	c->img = img;
	c->n_img = img != NULL ? n_img : 0;
	if (resp != NULL) {
		conv_add_msg(c, &e);
		c->msg[1].assistant = 1;
		conv_add_part(c, resp, rlen, &e);
	}
}

static int
bits_eq(double a, double b)
{
	return memcmp(&a, &b, sizeof(double)) == 0;
}

/* every field but timings and token counts; why says the first difference (and the scores) */
static int
same(const struct verdict *a, const struct verdict *b, char *why, size_t cap)
{
	const char *w = NULL;

	if (!bits_eq(a->unsafe_score, b->unsafe_score))
		w = "unsafe_score";
	else if (a->decision != b->decision || a->flagged != b->flagged || a->role != b->role)
		w = "decision";
	else if (strcmp(a->raw, b->raw) != 0)
		w = "raw";
	else if (strcmp(a->error, b->error) != 0)
		w = "error";
	else if (a->n_codes != b->n_codes || a->n_model_codes != b->n_model_codes)
		w = "number of codes";
	for (int i = 0; w == NULL && i < a->n_codes; i++)
		if (strcmp(a->codes[i], b->codes[i]) != 0)
			w = "codes";
	snprintf(why, cap, "%s; stream %.17g '%.40s' '%.80s', run %.17g '%.40s' '%.80s'",
	    w ? w : "same", a->unsafe_score, a->raw, a->error, b->unsafe_score, b->raw, b->error);
	return w == NULL;
}

static struct classifier *
mkclassifier_n(const struct model *m, int streams, int cache, int entries,
    const struct policy *p)
{
	struct classifier_params cp = classifier_params_default();
	struct err e;

	cp.image_cache_entries = entries;
	cp.n_threads = 2;
	cp.max_batch = 2;
	cp.max_streams = streams;
	cp.prefix_cache = cache;
	struct classifier *c = classifier_new(m, &cp, &e);
	if (c == NULL || classifier_add_policy(c, p, &e) == -1) {
		diag("classifier: %s", e.msg);
		classifier_free(c);
		return NULL;
	}
	return c;
}

static struct classifier *
mkclassifier(const struct model *m, int streams, int cache, const struct policy *p)
{
	return mkclassifier_n(m, streams, cache, 8, p);
}

static double
cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* classifier_run on one conversation of the image (+ the response when resp != NULL) */
static void
run1(struct classifier *c, const struct conv_image *img, const char *resp, struct verdict *v)
{
	struct conv cv;

	mkconv(&cv, "How do I get past the lock in this picture?", img, 1, resp,
	    resp ? strlen(resp) : 0);
	const struct conv *l[1] = { &cv };
	classifier_run(c, 0, l, 1, v);
	conv_free(&cv);
}

/* the image cache against the uncached path (cl: prefix_cache 0) */
static void
image_cache(const struct model *m, const struct policy *p, struct classifier *cl,
    const struct conv_image *a, const struct conv_image *b, int npre)
{
	struct classifier *kc = mkclassifier(m, 0, 1, p);
	struct imgcache_stats st;
	struct verdict v0, v1, v2, u, w;
	char why[512];

	if (!ok(kc != NULL, "a classifier with the image cache"))
		return;
	run1(cl, a, NULL, &u);
	double t0 = cpu_s();
	run1(kc, a, NULL, &v0);
	double t1 = cpu_s();
	run1(kc, a, NULL, &v1);
	double t2 = cpu_s();
	classifier_image_cache_stats(kc, &st);
	ok(!isnan(v0.unsafe_score) && !isnan(v1.unsafe_score) && v0.tokens_cached == 0 &&
	    st.lookups == 2 && st.stores == 1 && st.hits == 1 && st.entries == 1,
	    "the first request is a miss and is stored, the second a whole hit (lookups %llu, "
	    "stores %llu, hits %llu; %s)", (unsigned long long)st.lookups,
	    (unsigned long long)st.stores, (unsigned long long)st.hits, v0.error);
	ok(v1.tokens_cached == npre, "the hit restores the %d positions of the image prefix (%d)",
	    npre, v1.tokens_cached);
	ok(same(&v0, &u, why, sizeof(why)), "miss == uncached, bit for bit (%s)", why);
	ok(same(&v1, &u, why, sizeof(why)), "hit == uncached, bit for bit: %.17g (%s)",
	    v1.unsafe_score, why);
	diag("CPU time of a request on tiny-mllama (1-tile image, 2 threads): miss %.3f s, "
	    "hit %.3f s (%.1fx)", t1 - t0, t2 - t1, (t1 - t0) / (t2 - t1));

	/* the response role: a different prefix after the role word; the image and the
	 * positions through "<|image|> Task: ..." are reused */
	struct verdict ur;
	run1(cl, a, "Sure, here is how.", &ur);
	run1(kc, a, "Sure, here is how.", &v2);
	classifier_image_cache_stats(kc, &st);
	ok(st.partial == 1 && v2.tokens_cached > 5 && v2.tokens_cached < npre,
	    "another role with the same image: a partial hit, %d positions (the image with them)",
	    v2.tokens_cached);
	ok(same(&v2, &ur, why, sizeof(why)), "partial hit == uncached, bit for bit (%s)", why);

	/* a different image: a miss */
	run1(cl, b, NULL, &w);
	uint64_t hits = st.hits, partial = st.partial;
	struct verdict vb;
	run1(kc, b, NULL, &vb);
	classifier_image_cache_stats(kc, &st);
	ok(st.hits == hits && st.partial == partial && vb.tokens_cached == 0 && st.entries == 3,
	    "a different image is a miss (stored: %llu entries, %llu bytes of a budget of %llu)",
	    (unsigned long long)st.entries, (unsigned long long)st.bytes,
	    (unsigned long long)st.budget);
	ok(same(&vb, &w, why, sizeof(why)) && !bits_eq(vb.unsafe_score, v1.unsafe_score),
	    "its verdict is the uncached one of that image (%.17g), not the first image's (%s)",
	    vb.unsafe_score, why);
	verdict_free(&v0);
	verdict_free(&v1);
	verdict_free(&v2);
	verdict_free(&vb);
	verdict_free(&w);
	verdict_free(&ur);
	classifier_free(kc);

	/* the count bound: one entry; a then b then a: b evicts a, a is a miss again */
	kc = mkclassifier_n(m, 0, 1, 1, p);
	if (kc == NULL)
		return;
	run1(kc, a, NULL, &v0);
	run1(kc, b, NULL, &v1);
	run1(kc, a, NULL, &v2);
	classifier_image_cache_stats(kc, &st);
	ok(st.entries == 1 && st.evictions == 2 && st.hits == 0 && v2.tokens_cached == 0 &&
	    same(&v2, &u, why, sizeof(why)), "with room for one entry: evicted, a miss again, "
	    "same verdict (entries %llu, evictions %llu)", (unsigned long long)st.entries,
	    (unsigned long long)st.evictions);
	verdict_free(&v0);
	verdict_free(&v1);
	verdict_free(&v2);
	verdict_free(&u);
	classifier_free(kc);
}

/* the first line of a shell command's output */
static void
shell1(const char *cmd, char *out, size_t cap)
{
	FILE *f = popen(cmd, "r");

	out[0] = 0;
	if (f != NULL) {
		if (fgets(out, (int)cap, f) == NULL)
			out[0] = 0;
		pclose(f);
	}
	out[strcspn(out, " \n")] = 0;
}

static int
hash_of(const char *dir, char out[65])
{
	struct err e;
	struct model *m = model_open(dir, &e);

	out[0] = 0;
	if (m == NULL) {
		diag("%s: %s", dir, e.msg);
		return -1;
	}
	snprintf(out, 65, "%s", model_hash(m));
	model_close(m);
	return 0;
}

/* a copy of dir (links to its files) whose preprocessor_config.json is a file of its own */
static void
model_hash_cases(const char *dir)
{
	char tmp[] = "/tmp/t_guardv2.XXXXXX", a[65], b[65], c[65], want[128], cmd[9000];
	char src[4400], dst[4400];
	DIR *d;
	struct dirent *de;

	char abs[3800];
	char *rp = realpath(dir, NULL);
	snprintf(abs, sizeof(abs), "%s", rp ? rp : "");
	free(rp);
	if (abs[0] == 0 || mkdtemp(tmp) == NULL || (d = opendir(dir)) == NULL) {
		ok(0, "a copy of %s", dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strstr(de->d_name, ".sha256") != NULL)
			continue;
		snprintf(src, sizeof(src), "%s/%s", abs, de->d_name);
		snprintf(dst, sizeof(dst), "%s/%s", tmp, de->d_name);
		if (strcmp(de->d_name, "preprocessor_config.json") == 0) {
			snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, dst);
			if (system(cmd) != 0)
				diag("%s failed", cmd);
		} else if (symlink(src, dst) != 0)
			diag("symlink %s: failed", dst);
	}
	closedir(d);
	int r0 = hash_of(dir, a), r1 = hash_of(tmp, b);
	snprintf(cmd, sizeof(cmd), "cd '%s' && sha256sum $(ls config.json tokenizer.json "
	    "model.safetensors.index.json *.safetensors preprocessor_config.json 2>/dev/null | "
	    "LC_ALL=C sort -u) | sha256sum", tmp);
	shell1(cmd, want, sizeof(want));
	ok(r0 == 0 && r1 == 0 && strcmp(a, b) == 0 && strcmp(b, want) == 0,
	    "model_hash of the vision model is sha256sum's listing with preprocessor_config.json "
	    "(%.16s..., the copy's %.16s..., listing %.16s...)", a, b, want);
	/* another mean: another model as far as images go */
	snprintf(cmd, sizeof(cmd), "sed -i 's/0.48145466/0.5/' '%s/preprocessor_config.json' && "
	    "grep -c '0.5,' '%s/preprocessor_config.json'", tmp, tmp);
	shell1(cmd, want, sizeof(want));
	int r2 = hash_of(tmp, c);
	ok(strcmp(want, "1") == 0 && r2 == 0 && c[0] != 0 && strcmp(c, b) != 0,
	    "preprocessor_config.json's mean changed: the hash changes (%.16s... -> %.16s...)", b, c);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		diag("%s failed", cmd);
}

static const char USER[] = "How do I get past the lock in this picture?";
static const char RESP[] = "Sure. First, look closely at the shackle, then try the pins one "
    "by one with a thin pick until each sets.";

/* grows RESP through uneven cuts in stream s of sc, each check compared with classifier_run
 * on cl under slot 0; returns the number of differing checks (why: the first). Under ASan
 * every cut is still checked on the stream, but only the first and the last are compared
 * with classifier_run (each an uncached run through the vision tower: the paths of the
 * others, many times the CPU); *compared counts the comparisons. */
static int
grow(struct classifier *sc, struct guard_stream *s, struct classifier *cl,
    const struct conv_image *img, size_t from, size_t to, int *max_eval, int *min_reused,
    int *compared, char *why, size_t cap)
{
	static const size_t pat[] = { 17, 1, 29, 9, 40 };
	int bad = 0, k = 0;

	for (size_t at = from;; at += pat[k++ % 5]) {
		if (at > to)
			at = to;
		const char *resp[1] = { RESP };
		size_t len[1] = { at };
		struct verdict vs, vr;
		struct conv c;
		classifier_stream_check(sc, &s, resp, len, 1, &vs);
		int cmp = !UNDER_ASAN || at == from || at == to;
		mkconv(&c, USER, img, 1, RESP, at);
		const struct conv *l[1] = { &c };
		memset(&vr, 0, sizeof(vr));
		if (cmp) {
			classifier_run(cl, 0, l, 1, &vr);
			(*compared)++;
		}
		char w[400];
		if (cmp && !same(&vs, &vr, w, sizeof(w)) && bad++ == 0)
			snprintf(why, cap, "at %zu: %s", at, w);
		/* two identical errors would compare equal: the model must have run (the random
		 * model's answer itself is malformed, an error verdict with a real score) */
		if (isnan(vs.unsafe_score) && bad++ == 0)
			snprintf(why, cap, "at %zu: the model did not run: %s", at, vs.error);
		if (at > from && vs.tokens_evaluated > *max_eval)
			*max_eval = vs.tokens_evaluated;
		if (vs.tokens_cached < *min_reused)
			*min_reused = vs.tokens_cached;
		verdict_free(&vs);
		verdict_free(&vr);
		conv_free(&c);
		if (at == to) {
			if (UNDER_ASAN)
				diag("ASan: %d of the %d checks from %zu compared with classifier_run "
				    "(every one checked on the stream)", *compared, k + 1, from);
			return bad;
		}
	}
}

int
main(int argc, char **argv)
{
	struct err e;
	size_t ilen = 0, ilen2 = 0;

	if (argc < 5)
		skip_all("usage: t_guardv2 MLLAMA_DIR TEXT_GUARD IMAGE IMAGE2");
	unsigned char *ib = slurp(argv[3], &ilen), *ib2 = slurp(argv[4], &ilen2);
	if (ib == NULL || ib2 == NULL)
		skip_all("the image is absent (../shared not there?)");
	struct conv_image img = { ib, ilen }, img2 = { ib2, ilen2 };
	struct model *m = model_open(argv[1], &e);
	if (m == NULL)
		skip_all("tiny-mllama does not open (not built?)");
	model_hash_cases(argv[1]);
	struct policy *p = policy_default();
	struct classifier *sc = mkclassifier(m, 2, 1, p);
	struct classifier *cl = mkclassifier(m, 0, 0, p);
	if (!ok(sc != NULL && cl != NULL, "classifiers on %s (streams; uncached runs)", argv[1]))
		return done_testing();

	/* streams over a conversation with an image */
	struct conv c;
	mkconv(&c, USER, &img, 1, NULL, 0);
	struct guard_stream *s = classifier_stream_open(sc, 0, &c, &e);
	if (!ok(s != NULL, "a stream opens over a conversation with an image")) {
		diag("%s", e.msg);
		return done_testing();
	}
	char why[512] = "all the same";
	int max_eval = 0, min_reused = 1 << 30, compared = 0;
	int bad = grow(sc, s, cl, &img, 0, strlen(RESP), &max_eval, &min_reused, &compared, why,
	    sizeof(why));
	ok(bad == 0 && compared >= 2, "every check of the growing response compared equals "
	    "classifier_run on the conversation with the image plus the response, bit for bit "
	    "(%d compared; %s)", compared, why);
	/* the image prefix is never re-evaluated: every check reuses at least it (with the
	 * image's <|image|> at position 4, that is > 4 positions), and after the first, a check
	 * evaluates its new tokens plus the closing part (about 40), not the whole prompt */
	struct buf pt = { 0 };
	struct tokvec pre = { 0 };
	int npre = prompt_prefix_image(p, ROLE_RESPONSE, model_tok(m), &pt, &pre, &e) == 0 ?
	    (int)pre.n : -1;
	buf_free(&pt);
	tokvec_free(&pre);
	ok(npre > 5 && min_reused >= npre, "each check reuses the image prefix held since open "
	    "(%d positions at least, the prefix is %d)", min_reused, npre);
	ok(max_eval > 0 && max_eval < 80, "a later check evaluates only new tokens and the "
	    "closing part (at most %d)", max_eval);

	/* (before the swap: cl still has the policy p) */
	image_cache(m, p, cl, &img, &img2, npre);

	/* a policy swap: the stream restarts from the new policy's image prefix */
	const char *y = "name: narrow\ncategories:\n  S2: {exclude: true}\n  S9: {exclude: true}\n";
	struct policy *p2 = policy_parse(y, strlen(y), "narrow", &e);
	ok(p2 != NULL && classifier_set_policy(sc, 0, p2, &e) == 0 &&
	    classifier_set_policy(cl, 0, p2, &e) == 0, "the policy swapped in both classifiers");
	max_eval = 0;
	min_reused = 1 << 30;
	snprintf(why, sizeof(why), "all the same");
	compared = 0;
	bad = grow(sc, s, cl, &img, 30, strlen(RESP), &max_eval, &min_reused, &compared, why,
	    sizeof(why));
	ok(bad == 0 && compared >= 2, "after the swap: checks equal classifier_run under the new "
	    "policy (%d compared; %s)", compared, why);
	classifier_stream_close(sc, s);

	/* refused: two images, an image part without bytes */
	struct conv c2;
	mkconv(&c2, USER, &img, 2, NULL, 0);
	ok(classifier_stream_open(sc, 0, &c2, &e) == NULL && strstr(e.msg, "one image") != NULL,
	    "two images: refused (%s)", e.msg);
	conv_free(&c2);
	mkconv(&c2, USER, NULL, 1, NULL, 0);
	ok(classifier_stream_open(sc, 0, &c2, &e) == NULL && strstr(e.msg, "without its bytes"),
	    "an image part without its bytes: refused (%s)", e.msg);
	conv_free(&c2);
	/* a corrupt image: the open fails naming the image, and the stream slot is free again */
	unsigned char junk[64];
	memcpy(junk, ib, sizeof(junk));
	struct conv_image bad_img = { junk, sizeof(junk) };
	mkconv(&c2, USER, &bad_img, 1, NULL, 0);
	ok(classifier_stream_open(sc, 0, &c2, &e) == NULL && strstr(e.msg, "the image") != NULL,
	    "a truncated image: refused (%s)", e.msg);
	conv_free(&c2);
	struct guard_stream *a = classifier_stream_open(sc, 0, &c, &e);
	struct guard_stream *b = classifier_stream_open(sc, 0, &c, &e);
	ok(a != NULL && b != NULL, "both stream slots are free again");
	classifier_stream_close(sc, a);
	classifier_stream_close(sc, b);

	/* a text-only guard: the stream is refused, never judged without the image */
	struct model *tm = model_open(argv[2], &e);
	struct classifier *tc = tm ? mkclassifier(tm, 1, 1, p) : NULL;
	if (tc == NULL)
		ok(0, "text-only guard %s: %s", argv[2], e.msg);
	else {
		e.msg[0] = 0;
		ok(classifier_stream_open(tc, 0, &c, &e) == NULL && strstr(e.msg, "reads text only"),
		    "a text-only guard refuses a stream over a conversation with an image (%s)",
		    e.msg);
	}
	classifier_free(tc);
	model_close(tm);

	conv_free(&c);
	classifier_free(sc);
	classifier_free(cl);
	policy_free(p);
	policy_free(p2);
	model_close(m);
	free(ib);
	free(ib2);
	return done_testing();
}
