/* t_gen.c - the sampler, the text release (UTF-8 repair, stop strings) and the generator.
 *   t_gen unit                 sampler chain on hand-made logits; stop.c on hand-made bytes
 *   t_gen model GUARD MODEL    the generator on a real model against `GUARD generate`, alone
 *                              vs batched, stop strings, limits, end tokens, cancellation
 *                              (with "parity" after MODEL: the `guard generate` checks only) */
#include <math.h>
#include <sys/wait.h>

#include "core/model.h"
#include "core/sample.h"
#include "core/tok.h"
#include "generator/gen.h"
#include "generator/stop.h"
#include "util/buf.h"
#include "tap.h"

/* ---- sampler ---- */

/* ids drawn by samplers seeded 1..n_seeds, one draw each: a bit mask of the ids seen */
static unsigned
draws(const struct sampler_params *base, const float *l, int n, int n_seeds)
{
	unsigned seen = 0;

	for (int seed = 1; seed <= n_seeds; seed++) {
		struct sampler_params p = *base;
		p.seed = (uint64_t)seed;
		struct sampler *s = sampler_new(&p, n);
		int32_t id = sampler_sample(s, l);
		seen |= id >= 0 && id < 32 ? 1u << id : 1u << 31;
		sampler_free(s);
	}
	return seen;
}

static int32_t
pick_hist(float pen, int last_n, const float *l, int n, const int32_t *h, size_t nh)
{
	struct sampler_params p = { .temperature = 0, .repeat_penalty = pen,
		.repeat_last_n = last_n };
	struct sampler *s = sampler_new(&p, n);
	int32_t id = sampler_sample_hist(s, l, h, nh);

	sampler_free(s);
	return id;
}

/* The sampler as it was before min-p and the penalty (a full sort, then top-k, softmax at
 * the temperature, top-p, draw): sampler_sample must still pick the same ids. */
struct rc { float l; int32_t id; };
static int
rc_cmp(const void *a, const void *b)
{
	const struct rc *x = a, *y = b;

	if (x->l != y->l)
		return x->l > y->l ? -1 : 1;
	return x->id - y->id;
}

static int32_t
reference_pick(const float *l, int n, int top_k, float temp, float top_p, uint64_t *state,
    struct rc *c, double *w)
{
	for (int i = 0; i < n; i++)
		c[i] = (struct rc){ l[i], i };
	qsort(c, (size_t)n, sizeof(*c), rc_cmp);
	int k = top_k > 0 && top_k < n ? top_k : n;
	double sum = 0;
	for (int i = 0; i < k; i++)
		sum += w[i] = exp((c[i].l - c[0].l) / temp);
	if (top_p > 0 && top_p < 1) {
		double acc = 0;
		for (int i = 0; i < k; i++)
			if ((acc += w[i] / sum) >= top_p) {
				k = i + 1;
				break;
			}
		sum = 0;
		for (int i = 0; i < k; i++)
			sum += w[i];
	}
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	double r = (double)(z >> 11) * 0x1p-53 * sum;
	for (int i = 0; i < k; i++)
		if ((r -= w[i]) < 0)
			return c[i].id;
	return c[k - 1].id;
}

static void
test_sampler(void)
{
	/* probabilities .5 .3 .1 .1 at temperature 1 */
	float l4[4] = { logf(0.5f), logf(0.3f), logf(0.1f), logf(0.1f) };
	struct sampler_params p = { .temperature = 1, .top_k = 0, .top_p = 1 };

	ok(draws(&p, l4, 4, 400) == 0xF, "no limits: 400 draws see all 4 ids");
	p.top_k = 2;
	ok(draws(&p, l4, 4, 400) == 0x3, "top-k 2: draws only {0,1}, both seen");
	p.top_k = 0;
	p.top_p = 0.7f;
	ok(draws(&p, l4, 4, 400) == 0x3, "top-p 0.7 (mass .5, .8): draws only {0,1}, both seen");
	p.top_p = 0.85f;
	ok(draws(&p, l4, 4, 400) == 0x7, "top-p 0.85 (mass .5, .8, .9): draws only {0,1,2}");
	p.top_p = 1;
	p.min_p = 0.25f;
	ok(draws(&p, l4, 4, 400) == 0x3, "min-p 0.25 (p >= .125): draws only {0,1}, both seen");
	p.min_p = 0.19f;
	ok(draws(&p, l4, 4, 400) == 0xF, "min-p 0.19 (p >= .095): all 4 kept");
	p.min_p = 0.7f;
	ok(draws(&p, l4, 4, 400) == 0x1, "min-p 0.7 (p >= .35): only the best");
	/* min-p comes after the temperature: at 0.5 the probabilities are .5^2 .3^2 .1^2 .1^2
	 * over their sum, so p/p(best) = .36 for id 1 */
	p.min_p = 0.4f;
	p.temperature = 0.5f;
	ok(draws(&p, l4, 4, 400) == 0x1, "min-p 0.4 at temperature 0.5 (ratio .36): only the best");
	p.temperature = 2;
	ok(draws(&p, l4, 4, 400) == 0xF, "min-p 0.4 at temperature 2 (ratios .77, .45, .45): all");
	p.temperature = 1;
	p.min_p = 0.25f;
	p.top_k = 1;
	ok(draws(&p, l4, 4, 400) == 0x1, "top-k 1 then min-p: only the best");

	/* ties: the lowest ids win the top-k places */
	float flat[16];
	for (int i = 0; i < 16; i++)
		flat[i] = 1.5f;
	struct sampler_params q = { .temperature = 1, .top_k = 3, .top_p = 1 };
	ok(draws(&q, flat, 16, 400) == 0x7, "top-k 3 of 16 equal logits: ids {0,1,2}, all seen");

	/* greedy and the repetition penalty */
	float a[3] = { 2.0f, 1.9f, -3 };
	int32_t h0[] = { 0 }, h000[] = { 0, 0, 0 }, h022[] = { 0, 2, 2 };
	ok(pick_hist(1, 0, a, 3, h0, 1) == 0, "penalty 1: none, greedy picks 0");
	ok(pick_hist(0, 0, a, 3, h0, 1) == 0, "penalty 0: none, greedy picks 0");
	ok(pick_hist(1.1f, 0, a, 3, h0, 1) == 1, "penalty 1.1 on 0: 2.0/1.1 < 1.9, picks 1");
	ok(pick_hist(1.04f, 0, a, 3, h0, 1) == 0, "penalty 1.04 on 0: 2.0/1.04 > 1.9, keeps 0");
	ok(pick_hist(1.1f, 0, a, 3, NULL, 0) == 0, "penalty 1.1, empty history: picks 0");
	float b[2] = { 2.0f, 1.7f };
	ok(pick_hist(1.1f, 0, b, 2, h000, 3) == 0,
	    "a token three times in the history is penalized once (2.0/1.1 > 1.7)");
	ok(pick_hist(1.1f, 2, a, 3, h022, 3) == 0, "repeat_last_n 2: token 0 is out of the window");
	ok(pick_hist(1.1f, 3, a, 3, h022, 3) == 1, "repeat_last_n 3: token 0 is in the window");
	float neg[2] = { -1.0f, -1.05f };
	ok(pick_hist(1.1f, 0, neg, 2, h0, 1) == 1, "negative logit multiplied: -1.1 < -1.05");
	ok(pick_hist(1.04f, 0, neg, 2, h0, 1) == 0, "negative logit multiplied: -1.04 > -1.05");
	int32_t hbad[] = { -5, 99, 0 };
	ok(pick_hist(1.1f, 0, a, 3, hbad, 3) == 1, "history ids outside the vocabulary are ignored");
	float keep[3];
	memcpy(keep, a, sizeof(a));
	pick_hist(1.5f, 0, a, 3, h0, 1);
	ok(memcmp(keep, a, sizeof(a)) == 0, "the logits are not modified");
	/* with sampling: penalty 1e4 on tokens 0 and 1 leaves token 2 the only likely one */
	struct sampler_params r = { .temperature = 1, .top_k = 2, .top_p = 1, .seed = 3,
		.repeat_penalty = 1e4f };
	float c3[3] = { 5, 5, 4 };
	int32_t h01[] = { 0, 1 };
	unsigned seen = 0;
	for (int seed = 1; seed <= 200; seed++) {
		r.seed = (uint64_t)seed;
		struct sampler *s = sampler_new(&r, 3);
		seen |= 1u << sampler_sample_hist(s, c3, h01, 2);
		sampler_free(s);
	}
	/* top-k 2 of {5e-4, 5e-4, 4}: token 2, then token 0 (the lower id of the tie) */
	ok((seen & ~0x5u) == 0 && (seen & 0x4u),
	    "penalty before top-k: 1 and 0 fall to 5e-4, draws only {2, 0} (seen mask %#x)", seen);

	/* the top-k selection on a 128k vocabulary picks as the full sort did, draw for draw */
	enum { NV = 128256 };
	float *big = malloc(NV * sizeof(float));
	struct rc *rcs = malloc(NV * sizeof(*rcs));
	double *w = malloc(NV * sizeof(double));
	uint64_t rng = 7;
	for (int i = 0; i < NV; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		big[i] = (float)((rng >> 40) % 2000) / 100.0f;	/* many ties */
	}
	const int ks[] = { 40, 1, 0, 5000 };
	const float ps[] = { 0.95f, 1, 0.9f, 0.5f }, ts[] = { 0.8f, 1, 1.3f, 0.1f };
	for (int t = 0; t < 4; t++) {
		struct sampler_params sp = { .temperature = ts[t], .top_k = ks[t], .top_p = ps[t],
			.seed = 11 };
		struct sampler *s = sampler_new(&sp, NV);
		uint64_t st = 11;
		int same = 1, steps = t == 2 ? 3 : 30;
		for (int i = 0; i < steps; i++) {
			big[(i * 7919) % NV] += 3;	/* a different winner now and then */
			same &= sampler_sample(s, big) ==
			    reference_pick(big, NV, ks[t], ts[t], ps[t], &st, rcs, w);
		}
		ok(same, "128k vocabulary, top-k %d, top-p %g, temp %g: %d picks equal a full sort's",
		    ks[t], ps[t], ts[t], steps);
		sampler_free(s);
	}
	free(big);
	free(rcs);
	free(w);
}

/* ---- stop.c ---- */

static int
text_is(const struct stop *s, const char *want)
{
	size_t n;
	const char *t = stop_text(s, &n);

	if (n == strlen(want) && memcmp(t, want, n) == 0)
		return 1;
	diag("got '%.*s' (%zu bytes), want '%s'", (int)n, t, n, want);
	return 0;
}

static struct stop *
stop_of(const char *a, const char *b)
{
	const char *v[2] = { a, b };
	struct err e;

	return stop_new(v, a == NULL ? 0 : b == NULL ? 1 : 2, &e);
}

static void
test_stop(void)
{
	struct err e;
	struct stop *s = stop_of("world", NULL);

	ok(stop_feed(s, "Hello wor", 9) == 0 && text_is(s, "Hello "),
	    "'Hello wor', stop 'world': 'wor' held back");
	ok(stop_feed(s, "ld!", 3) == 1 && text_is(s, "Hello "), "'ld!': stop, cut before it");
	ok(stop_feed(s, "more", 4) == 1 && text_is(s, "Hello "), "after a stop input is ignored");
	ok(stop_flush(s) == 1 && text_is(s, "Hello ") && stop_matched(s), "flush keeps the cut");
	stop_free(s);

	s = stop_of("world", NULL);
	ok(stop_feed(s, "a wor", 5) == 0 && text_is(s, "a ") && stop_feed(s, "k", 1) == 0 &&
	    text_is(s, "a work"), "'wor' released when 'k' follows");
	ok(stop_feed(s, " w", 2) == 0 && text_is(s, "a work ") && stop_flush(s) == 0 &&
	    text_is(s, "a work w") && !stop_matched(s), "flush releases a held prefix");
	stop_free(s);

	s = stop_of("cd", "bcde");
	ok(stop_feed(s, "ab", 2) == 0 && text_is(s, "a"), "two stops: 'b' held ('bcde')");
	ok(stop_feed(s, "cdef", 4) == 1 && text_is(s, "a"), "the earliest match wins");
	stop_free(s);
	s = stop_of("aab", NULL);
	ok(stop_feed(s, "xaa", 3) == 0 && text_is(s, "x") && stop_feed(s, "a", 1) == 0 &&
	    text_is(s, "xa") && stop_feed(s, "b", 1) == 1 && text_is(s, "xa"),
	    "overlapping prefix: 'xaa'+'a'+'b' cuts at 'xa'");
	stop_free(s);

	/* UTF-8: held until complete, repaired when it cannot be */
	s = stop_of(NULL, NULL);
	ok(stop_feed(s, "a\xe2\x82", 3) == 0 && text_is(s, "a"), "incomplete euro sign held");
	ok(stop_feed(s, "\xac", 1) == 0 && text_is(s, "a\xe2\x82\xac"), "completed: released");
	ok(stop_feed(s, "\xff", 1) == 0 && text_is(s, "a\xe2\x82\xac\xef\xbf\xbd"),
	    "byte FF becomes U+FFFD at once");
	stop_free(s);
	s = stop_of(NULL, NULL);
	ok(stop_feed(s, "\xe2\x82x", 3) == 0 && text_is(s, "\xef\xbf\xbdx"),
	    "a sequence broken by 'x': one U+FFFD, then 'x'");
	ok(stop_feed(s, "\xc0\xaf", 2) == 0 && text_is(s, "\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf\xbd"),
	    "overlong C0 AF: two U+FFFD");
	stop_free(s);
	s = stop_of(NULL, NULL);
	ok(stop_feed(s, "\xed\xa0\x80", 3) == 0 &&
	    text_is(s, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"), "a surrogate ED A0 80: three U+FFFD");
	ok(stop_feed(s, "\xf0\x9f\x98", 3) == 0 && stop_flush(s) == 0 &&
	    text_is(s, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
	    "a 4-byte sequence cut by the end: one U+FFFD at flush");
	stop_free(s);
	s = stop_of(NULL, NULL);
	ok(stop_feed(s, "\xf4\x90\x80\x80", 4) == 0 && stop_flush(s) == 0 &&
	    text_is(s, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
	    "past U+10FFFF (F4 90 80 80): four U+FFFD");
	stop_free(s);

	/* a stop string with a multi-byte character, fed one byte at a time: the released text
	 * is always a prefix of the answer's and never holds a byte of the stop string */
	const char *full = "caf\xc3\xa9 \xe2\x82\xac 12 \xe2\x82\xac\xe2\x82\xac end";
	s = stop_of("\xe2\x82\xac\xe2\x82\xac", NULL);
	int good = 1, r = 0;
	for (size_t i = 0; full[i] && r == 0; i++) {
		r = stop_feed(s, full + i, 1);
		size_t n;
		const char *t = stop_text(s, &n);
		good &= n <= 13 && memcmp(t, full, n) == 0;
	}
	ok(good && r == 1 && text_is(s, "caf\xc3\xa9 \xe2\x82\xac 12 "),
	    "byte by byte: never past the stop string, cut before it");
	stop_free(s);

	const char *many[STOP_MAX_STRINGS + 1];
	for (int i = 0; i <= STOP_MAX_STRINGS; i++)
		many[i] = "x";
	char longs[STOP_MAX_LEN + 2];
	memset(longs, 'a', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	const char *bad[] = { "ok", "" }, *inval[] = { "a\xff" }, *lng[] = { longs };
	ok(stop_new(bad, 2, &e) == NULL && strstr(e.msg, "stop string 1 is empty"),
	    "an empty stop string: '%s'", e.msg);
	ok(stop_new(inval, 1, &e) == NULL && strstr(e.msg, "stop string 0: invalid UTF-8 at byte 1"),
	    "an invalid stop string: '%s'", e.msg);
	ok(stop_new(lng, 1, &e) == NULL && strstr(e.msg, "257 bytes (at most 256)"),
	    "a long stop string: '%s'", e.msg);
	ok(stop_new(many, STOP_MAX_STRINGS + 1, &e) == NULL && strstr(e.msg, "17 stop strings"),
	    "too many stop strings: '%s'", e.msg);
}

/* ---- the generator on a model ---- */

static const struct model *M;
static int NV;

static struct generator *
gen_new(int n_ctx, int n_seq, int chunk)
{
	struct generator_params gp = { .n_ctx = n_ctx, .n_seq = n_seq, .n_threads = 1,
		.prefill_chunk = chunk };
	struct err e;
	struct generator *g = generator_new(M, &gp, &e);

	if (g == NULL)
		diag("generator_new: %s", e.msg);
	return g;
}

static void
prompt_of(int32_t *p, int n, int salt)
{
	for (int i = 0; i < n; i++)
		p[i] = (int32_t)(((i + 1) * 7919 + salt * 104729 + 13) % NV);
}

/* greedy, at most n ids (0: no limit), no stops */
#define GREEDY(n) (&(struct gen_params){ .sp = { .temperature = 0 }, .max_tokens = (n) })

/* One answer alone: its ids, its final text, and the released length after every step. */
struct answer {
	struct tokvec ids, lens;
	struct buf text;
	enum gen_finish fin;
};

static void
answer_free(struct answer *a)
{
	tokvec_free(&a->ids);
	tokvec_free(&a->lens);
	buf_free(&a->text);
	memset(a, 0, sizeof(*a));
}

static void
answer_take(struct answer *a, struct generator *g, int slot)
{
	size_t n, len;
	const int32_t *ids = generator_ids(g, slot, &n);
	const char *t = generator_text(g, slot, &len);

	tokvec_append(&a->ids, ids, n);
	buf_add(&a->text, t, len);
	a->fin = generator_finish(g, slot);
}

static int
run_alone(struct generator *g, const int32_t *prompt, int n, const struct gen_params *gp,
    struct answer *a)
{
	struct err e;
	int slot = generator_start(g, prompt, (size_t)n, gp, &e);

	memset(a, 0, sizeof(*a));
	if (slot < 0) {
		diag("generator_start: %s", e.msg);
		return -1;
	}
	while (generator_finish(g, slot) == GEN_RUNNING) {
		if (generator_step(g, &e) == -1) {
			diag("generator_step: %s", e.msg);
			break;
		}
		size_t len;
		generator_text(g, slot, &len);
		tokvec_push(&a->lens, (int32_t)len);
	}
	answer_take(a, g, slot);
	generator_end(g, slot);
	return 0;
}

/* `guard generate` on the same prompt: its ids */
static int
cli_ids(const char *guard, const char *model, const int32_t *prompt, int n, int count,
    const char *extra, struct tokvec *out)
{
	struct buf cmd = { 0 };
	char line[65536];

	buf_printf(&cmd, "%s generate -m '%s' -t 1 -n %d %s --ids '", guard, model, count, extra);
	for (int i = 0; i < n; i++)
		buf_printf(&cmd, "%s%d", i ? " " : "", prompt[i]);
	buf_adds(&cmd, "'");
	FILE *fp = popen(cmd.p, "r");
	buf_free(&cmd);
	if (fp == NULL)
		return -1;
	size_t got = fread(line, 1, sizeof(line) - 1, fp);
	line[got] = '\0';
	int rc = pclose(fp);
	for (char *p = line, *end; *p != '\0' && *p != '\n'; p = end) {
		long v = strtol(p, &end, 10);
		if (end == p)
			return -1;
		tokvec_push(out, (int32_t)v);
	}
	return rc == 0 ? 0 : -1;
}

static int
same_ids(const struct tokvec *a, const int32_t *b, size_t nb)
{
	return a->n == nb && (nb == 0 || memcmp(a->v, b, nb * sizeof(*b)) == 0);
}

static void
test_cli_parity(const char *guard, const char *path)
{
	int32_t prompt[9];
	struct answer a;
	struct tokvec want = { 0 };
	struct generator *g = gen_new(256, 4, 0);
	const char *sampled = "--temp 0.9 --top-k 40 --top-p 0.95 --min-p 0.05 "
	    "--repeat-penalty 1.3 --repeat-last-n 8 --seed 42";

	prompt_of(prompt, 9, 1);
	run_alone(g, prompt, 9, GREEDY(24), &a);
	int rc = cli_ids(guard, path, prompt, 9, 24, "", &want);
	ok(rc == 0 && want.n == 24 && same_ids(&want, a.ids.v, a.ids.n),
	    "greedy: 24 ids equal `guard generate`'s (%zu ids; first %d, cli %d)", a.ids.n,
	    a.ids.n ? a.ids.v[0] : -1, want.n ? want.v[0] : -1);
	ok(a.fin == GEN_LENGTH, "max_tokens 24: finish %s", gen_finish_name(a.fin));
	answer_free(&a);
	want.n = 0;
	struct gen_params sp = { .sp = { .temperature = 0.9f, .top_k = 40, .top_p = 0.95f,
		.min_p = 0.05f, .repeat_penalty = 1.3f, .repeat_last_n = 8, .seed = 42 },
		.max_tokens = 24 };
	run_alone(g, prompt, 9, &sp, &a);
	rc = cli_ids(guard, path, prompt, 9, 24, sampled, &want);
	ok(rc == 0 && same_ids(&want, a.ids.v, a.ids.n),
	    "sampled with min-p and a repetition penalty: ids equal `guard generate %s`", sampled);
	answer_free(&a);
	tokvec_free(&want);
	generator_free(g);
	/* a malformed value is refused before the model loads */
	char cmd[4500], out[512] = "";
	snprintf(cmd, sizeof(cmd), "%s generate -m '%s' -n 2 --ids 1 --repeat-penalty 1.x 2>&1",
	    guard, path);
	FILE *fp = popen(cmd, "r");
	size_t got = fp ? fread(out, 1, sizeof(out) - 1, fp) : 0;
	out[got] = '\0';
	int st = fp ? pclose(fp) : -1;
	ok(WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
	    strstr(out, "--repeat-penalty: '1.x' is not a number") != NULL,
	    "guard generate --repeat-penalty 1.x: exit %d, '%.60s'", WIFEXITED(st) ?
	    WEXITSTATUS(st) : -1, out);
}

/* the released text is the repaired decoding of the ids (end token excluded) */
static void
test_text(void)
{
	int32_t prompt[6];
	struct answer a = { 0 };
	struct buf dec = { 0 };
	struct err e;
	struct generator *g = gen_new(256, 1, 0);
	struct gen_params sp = { .sp = { .temperature = 3, .top_k = 20000, .top_p = 1 },
		.max_tokens = 24 };

	/* the first of a few seeds whose ids decode to invalid UTF-8 (partial byte-level
	 * pieces), to see them repaired; else the last one */
	prompt_of(prompt, 6, 2);
	size_t valid = 0;
	for (int seed = 1; seed <= 4; seed++) {
		sp.sp.seed = (uint64_t)seed;
		answer_free(&a);
		dec.n = 0;
		run_alone(g, prompt, 6, &sp, &a);
		tok_decode(model_tok(M), a.ids.v, a.ids.n, &dec, &e);
		if ((valid = utf8_valid_prefix(dec.p, dec.n)) < dec.n)
			break;
	}
	ok(utf8_valid_prefix(a.text.p, a.text.n) == a.text.n, "sampled text (%zu bytes) is valid "
	    "UTF-8", a.text.n);
	if (valid == dec.n)
		ok(a.text.n == dec.n && memcmp(a.text.p, dec.p, dec.n) == 0,
		    "the text is tok_decode of the %zu ids, byte for byte", a.ids.n);
	else
		ok(a.text.n >= valid && memcmp(a.text.p, dec.p, valid) == 0,
		    "the text starts with the valid %zu bytes of the decoding", valid);
	/* token by token as generated == the whole decoding repaired at once */
	struct stop *st = stop_new(NULL, 0, &e);
	size_t rn;
	stop_feed(st, dec.p, dec.n);
	stop_flush(st);
	const char *rt = stop_text(st, &rn);
	ok(rn == a.text.n && memcmp(rt, a.text.p, rn) == 0,
	    "the text equals the whole decoding repaired in one pass (seed %d: %zu of %zu bytes "
	    "were valid UTF-8)", (int)sp.sp.seed, valid, dec.n);
	stop_free(st);
	int mono = 1;
	for (size_t i = 1; i < a.lens.n; i++)
		mono &= a.lens.v[i] >= a.lens.v[i - 1];
	ok(mono, "the released length never shrinks over %zu steps", a.lens.n);
	answer_free(&a);
	buf_free(&dec);
	generator_free(g);
}

/* four answers started at different steps, prompts of different lengths (prefill chunks of
 * some beside decoding tokens of others) give each the ids it gets alone */
static void
test_batch(const char *what, const struct gen_params *base, int seeded)
{
	enum { K = 4 };
	const int len[K] = { 5, 37, 3, 21 }, start_at[K] = { 0, 2, 3, 3 };
	int32_t prompt[K][40];
	struct answer alone[K];
	struct gen_params gp[K];
	struct generator *g = gen_new(128, K, 8);
	struct err e;
	int slot[K], started = 0, mixed = 1, step = 0;

	for (int i = 0; i < K; i++) {
		prompt_of(prompt[i], len[i], 10 + i);
		gp[i] = *base;
		gp[i].max_tokens = 10 + 3 * i;
		if (seeded)
			gp[i].sp.seed = 100 + (uint64_t)i;
		run_alone(g, prompt[i], len[i], &gp[i], &alone[i]);
	}
	for (;;) {
		while (started < K && start_at[started] <= step) {
			slot[started] = generator_start(g, prompt[started], (size_t)len[started],
			    &gp[started], &e);
			started++;
		}
		if (started == K && generator_running(g) == 0)
			break;
		int before = generator_n_generated(g, slot[0]);
		int r = generator_step(g, &e);
		if (r == -1) {
			diag("step: %s", e.msg);
			break;
		}
		/* while the 37-token prompt prefills in chunks of 8, the first answer decodes */
		if (step >= 2 && step < 6)
			mixed &= generator_n_generated(g, slot[0]) == before + 1 &&
			    generator_n_generated(g, slot[1]) == 0;
		step++;
	}
	int same = 1;
	for (int i = 0; i < K; i++) {
		size_t n;
		const int32_t *ids = generator_ids(g, slot[i], &n);
		same &= slot[i] >= 0 && same_ids(&alone[i].ids, ids, n) &&
		    generator_finish(g, slot[i]) == alone[i].fin;
		if (!same)
			diag("sequence %d: %zu ids, alone %zu", i, n, alone[i].ids.n);
		answer_free(&alone[i]);
	}
	ok(mixed, "%s: one answer decodes at each step while another's prompt prefills", what);
	ok(same, "%s: 4 staggered answers equal each run alone", what);
	generator_free(g);
}

static void
test_seeds(void)
{
	int32_t prompt[7];
	struct answer a[5];
	struct generator *g = gen_new(128, 1, 0);

	prompt_of(prompt, 7, 3);
	for (int i = 0; i < 5; i++) {
		struct gen_params p = { .sp = { .temperature = 1.5f, .top_k = 40, .top_p = 1,
			.seed = (uint64_t)(i < 4 ? i + 1 : 1) }, .max_tokens = 16 };
		run_alone(g, prompt, 7, &p, &a[i]);
	}
	ok(same_ids(&a[0].ids, a[4].ids.v, a[4].ids.n) && a[0].ids.n == 16,
	    "the same seed gives the same 16 ids");
	int all_same = 1;
	for (int i = 1; i < 4; i++)
		all_same &= same_ids(&a[0].ids, a[i].ids.v, a[i].ids.n);
	ok(!all_same, "seeds 1..4 do not all give the same ids");
	for (int i = 0; i < 5; i++)
		answer_free(&a[i]);
	generator_free(g);
}

static void
test_stops(void)
{
	int32_t prompt[8];
	struct answer ref, a;
	struct generator *g = gen_new(256, 1, 0);
	struct err e;

	prompt_of(prompt, 8, 4);
	struct gen_params rp = { .sp = { .temperature = 1, .top_k = 2000, .top_p = 1, .seed = 9 },
		.max_tokens = 32 };
	run_alone(g, prompt, 8, &rp, &ref);
	const char *T = ref.text.p;
	size_t tn = ref.text.n;
	if (tn < 8) {
		ok(1, "# skip the reference answer is %zu bytes, too short to cut", tn);
		answer_free(&ref);
		generator_free(g);
		return;
	}
	/* a stop string from the middle of the real answer: three characters from a character
	 * boundary near the middle */
	size_t q = tn / 2, sl = 0;
	while (q > 0 && ((unsigned char)T[q] & 0xC0) == 0x80)
		q--;
	for (int nch = 0; q + sl < tn && nch < 3; nch++)	/* three characters */
		sl += (size_t)utf8_len((unsigned char)T[q + sl]);
	char stop[32];
	snprintf(stop, sizeof(stop), "%.*s", (int)sl, T + q);
	size_t p = (size_t)((const char *)memmem(T, tn, stop, sl) - T);
	struct gen_params sp = rp;
	const char *stops[] = { stop };
	sp.stop = stops;
	sp.n_stop = 1;
	int slot = generator_start(g, prompt, 8, &sp, &e), clean = 1, steps = 0;
	while (generator_finish(g, slot) == GEN_RUNNING && generator_step(g, &e) >= 0) {
		size_t len;
		const char *t = generator_text(g, slot, &len);
		clean &= len <= p && memcmp(t, T, len) == 0;
		steps++;
	}
	size_t len;
	const char *t = generator_text(g, slot, &len);
	ok(generator_finish(g, slot) == GEN_STOP && len == p && memcmp(t, T, p) == 0,
	    "stop string '%s' (from the answer, first at byte %zu of %zu): cut there, finish %s",
	    stop, p, tn, gen_finish_name(generator_finish(g, slot)));
	ok(clean, "after each of %d steps the text is a prefix of the answer ending at or before "
	    "byte %zu: no byte of the stop string exposed", steps, p);
	generator_end(g, slot);

	/* a stop string that starts like one step's new text but never completes: held back at
	 * that step, released at the end */
	int at = -1;
	for (size_t i = 1; i + 1 < ref.lens.n && at < 0; i++)
		if (ref.lens.v[i] > ref.lens.v[i - 1])
			at = (int)i;
	ok(at >= 0, "the reference releases text at some step");
	if (at < 0)
		at = 0;
	char held[512];
	int xl = ref.lens.v[at] - (at ? ref.lens.v[at - 1] : 0);
	snprintf(held, sizeof(held), "%.*s\x01\x02", xl, T + ref.lens.v[at] - xl);
	const char *hs[] = { held };
	sp.stop = hs;
	run_alone(g, prompt, 8, &sp, &a);
	ok(a.lens.n == ref.lens.n && a.lens.v[at] < ref.lens.v[at],
	    "step %d's new text (%d bytes) is held back while it may become the stop string "
	    "(released %d, without the stop %d)", at, xl, a.lens.n > (size_t)at ? a.lens.v[at] : -1,
	    ref.lens.v[at]);
	ok(a.fin == GEN_LENGTH && a.text.n == tn && memcmp(a.text.p, T, tn) == 0,
	    "the stop string never completes: the whole answer is released at the end (%s)",
	    gen_finish_name(a.fin));
	answer_free(&a);

	/* an end token: the answer stops before it, without its text */
	int k = -1;
	for (size_t i = 1; i < ref.ids.n && k < 0; i++) {
		int seen = 0;
		for (size_t j = 0; j < i; j++)
			seen |= ref.ids.v[j] == ref.ids.v[i];
		if (!seen)
			k = (int)i;
	}
	if (k < 0) {
		ok(1, "# skip every id of the reference answer is its first");
	} else {
		int32_t end[] = { NV - 1 == ref.ids.v[k] ? 0 : NV - 1, ref.ids.v[k] };
		struct gen_params ep = rp;
		ep.end = end;
		ep.n_end = 2;
		run_alone(g, prompt, 8, &ep, &a);
		struct buf dec = { 0 };
		tok_decode(model_tok(M), ref.ids.v, (size_t)k, &dec, &e);
		ok(a.fin == GEN_STOP && same_ids(&a.ids, ref.ids.v, (size_t)k),
		    "end token %d (at index %d): finish %s after %zu ids", ref.ids.v[k], k,
		    gen_finish_name(a.fin), a.ids.n);
		ok(utf8_valid_prefix(dec.p, dec.n) != dec.n ||
		    (a.text.n == dec.n && memcmp(a.text.p, dec.p, dec.n) == 0),
		    "the text is the decoding of the ids before it (%zu bytes)", a.text.n);
		buf_free(&dec);
		answer_free(&a);
	}
	answer_free(&ref);
	generator_free(g);
}

static int
cancel_once(void *arg)
{
	int *n = arg;

	return (*n)-- > 0;
}

static void
test_limits(const char *guard, const char *path)
{
	enum { C = 48 };
	int32_t prompt[C + 1], alone[4];
	struct answer a;
	struct tokvec want = { 0 };
	struct err e;
	struct generator *g = gen_new(C, 2, 16);

	prompt_of(prompt, C + 1, 5);
	run_alone(g, prompt, C - 4, GREEDY(100), &a);
	ok(a.fin == GEN_LENGTH && a.ids.n == 4, "prompt %d in a context of %d: %zu ids, finish %s",
	    C - 4, C, a.ids.n, gen_finish_name(a.fin));
	int rc = cli_ids(guard, path, prompt, C - 4, 4, "", &want);
	ok(rc == 0 && same_ids(&want, a.ids.v, a.ids.n), "and they are `guard generate -n 4`'s");
	memcpy(alone, a.ids.v, sizeof(alone));
	answer_free(&a);
	run_alone(g, prompt, C - 1, GREEDY(0), &a);
	ok(a.fin == GEN_LENGTH && a.ids.n == 1, "prompt %d: 1 id, finish %s", C - 1,
	    gen_finish_name(a.fin));
	answer_free(&a);
	ok(generator_start(g, prompt, C, GREEDY(0), &e) == -1 &&
	    strstr(e.msg, "the prompt is 48 tokens; the context holds 48"),
	    "prompt %d: '%s'", C, e.msg);
	ok(generator_start(g, prompt, 0, GREEDY(0), &e) == -1 && strstr(e.msg, "empty"),
	    "an empty prompt: '%s'", e.msg);
	int32_t bad[2] = { 1, NV };
	ok(generator_start(g, bad, 2, GREEDY(0), &e) == -1 &&
	    strstr(e.msg, "prompt token 1: id") && strstr(e.msg, "outside the vocabulary"),
	    "an id outside the vocabulary: '%s'", e.msg);
	const char *estop[] = { "" };
	struct gen_params ep = *GREEDY(0);
	ep.stop = estop;
	ep.n_stop = 1;
	ok(generator_start(g, prompt, 4, &ep, &e) == -1 && strstr(e.msg, "empty"),
	    "an empty stop string: '%s'", e.msg);

	/* every slot busy; a slot freed by generator_end is reused, its cache cleared */
	int s0 = generator_start(g, prompt + 1, 10, GREEDY(8), &e);
	int s1 = generator_start(g, prompt, C - 4, GREEDY(0), &e);
	ok(s0 >= 0 && s1 >= 0 && s0 != s1, "two answers in two slots (%d, %d)", s0, s1);
	ok(generator_start(g, prompt, 4, GREEDY(0), &e) == -1 &&
	    strstr(e.msg, "all 2 sequences are busy"), "a third: '%s'", e.msg);
	generator_step(g, &e);
	generator_step(g, &e);
	ok(generator_n_generated(g, s0) == 2 && generator_running(g) == 2,
	    "two steps: 2 ids each, both running");
	generator_end(g, s0);
	ok(generator_running(g) == 1, "generator_end frees a running answer's slot");
	int s2 = generator_start(g, prompt, C - 4, GREEDY(0), &e);
	ok(s2 == s0, "its slot is taken by the next start (%d)", s2);
	/* cancellation: the step stops, nothing changes, the next step goes on */
	int n_cancel = 1;
	generator_set_cancel(g, cancel_once, &n_cancel);
	int before = generator_n_generated(g, s1);
	ok(generator_step(g, &e) == -1 && strcmp(e.msg, "cancelled") == 0 &&
	    generator_running(g) == 2 && generator_n_generated(g, s1) == before,
	    "a cancelled step: '%s', both still running, no id added", e.msg);
	while (generator_running(g) > 0 && generator_step(g, &e) >= 0)
		;
	size_t n1, n2;
	const int32_t *i1 = generator_ids(g, s1, &n1), *i2 = generator_ids(g, s2, &n2);
	ok(n1 == 4 && memcmp(i1, alone, sizeof(alone)) == 0 && n2 == 4 &&
	    memcmp(i2, alone, sizeof(alone)) == 0,
	    "after the cancel, and in the reused slot, the ids are the answer's alone");
	ok(generator_finish(g, -1) == GEN_ERROR && generator_n_generated(g, 7) == 0,
	    "a slot out of range reads as an error, no ids");
	tokvec_free(&want);
	generator_free(g);
}

static int
test_model(const char *guard, const char *path, int parity_only)
{
	struct err e;
	struct model *m = model_open(path, &e);

	if (m == NULL)
		skip_all(e.msg);
	M = m;
	NV = model_hparams(m)->n_vocab;
	diag("%s: vocabulary %d, %s", path, NV, model_weight_type(m));
	test_cli_parity(guard, path);
	if (parity_only) {
		model_close(m);
		return done_testing();
	}
	test_text();
	test_batch("greedy", &(struct gen_params){ .sp = { .temperature = 0 } }, 0);
	test_batch("sampled, seeded",
	    &(struct gen_params){ .sp = { .temperature = 0.9f, .top_k = 40, .top_p = 0.95f,
	    .min_p = 0.02f, .repeat_penalty = 1.2f } }, 1);
	test_seeds();
	test_stops();
	test_limits(guard, path);
	model_close(m);
	return done_testing();
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "unit") == 0) {
		test_sampler();
		test_stop();
		return done_testing();
	}
	if ((argc == 4 || (argc == 5 && strcmp(argv[4], "parity") == 0)) &&
	    strcmp(argv[1], "model") == 0)
		return test_model(argv[2], argv[3], argc == 5);
	fprintf(stderr, "usage: t_gen unit | t_gen model GUARD MODEL [parity]\n");
	return 2;
}
