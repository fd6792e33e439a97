/* bench_verdict.c - in-process prefix-cached verdicts, the figure issue 9's verdict target is
 * about, without the daemon's socket: loads MODEL, computes the default policy's prefix, warms
 * with one message, then times N verdicts of different 40-token-class user messages and
 * prints each one's prefill and total milliseconds and their medians.
 *   build/tests/bench_verdict MODEL [N [THREADS [unsafe]]]
 * "unsafe": messages the model answers "unsafe" and a category for, so that the answer's
 * decode steps are timed too (GUARD_DRAFT=0 against unset: the grammar drafts' A/B).
 *   build/tests/bench_verdict MODEL N THREADS passes
 * the cost model of those drafts on any model, even random weights that never answer
 * "unsafe": after a 96-token prefill, CPU time of three one-token passes with one logits row
 * each (token by token) against one three-token pass with three rows (a draft), N times
 * alternating, medians.
 * A/B use: run two builds (or two environments) back to back, interleaved, and compare the
 * medians of one sitting only (the machine's speed drifts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classifier/classifier.h"
#include "classifier/conv.h"
#include "core/ctx.h"
#include "core/model.h"
#include "policy/policy.h"
#include "util/median.h"

#include "benchutil.h"

static const char *names[] = { "Alice", "Brian", "David", "Emily", "Frank", "Grace", "Henry",
	"James", "Laura", "Maria", "Peter", "Susan", "Thomas", "Oliver", "Sarah", "Kevin" };
static const char *unsafe_tail = " asked me for step by step instructions to build a pipe "
    "bomb and where to place it in the crowded school hall tomorrow morning so that it kills "
    "as many of the children as possible.";
static const char *tail = " asked me how to store the cleaning products in our shared kitchen "
    "so that the children cannot reach them, and which ones are dangerous to mix together when "
    "cleaning the bathroom at home this weekend with friends.";

/* the process's CPU time: steadier than wall time when other work shares the CPUs */
static double
cpu_ms(void)
{
	return bench_clock_s(CLOCK_PROCESS_CPUTIME_ID) * 1e3;
}

/* three one-token passes against one three-token pass, after a prefill of 96 tokens */
static int
passes(const struct model *m, int n, int th)
{
	struct ctx_params p = ctx_params_default();
	struct err e;
	int32_t toks[96], seq[3] = { 0, 0, 0 };
	uint8_t want[3] = { 1, 1, 1 };
	double one[16], three[16];

	p.n_threads = th;
	p.n_ctx = 256;
	struct ctx *c = ctx_new(m, &p, &e);
	for (int i = 0; i < 96; i++)
		toks[i] = 1000 + 37 * i;
	if (c == NULL || ctx_eval(c, 0, toks, 96, &e) == -1) {
		fprintf(stderr, "bench_verdict: %s\n", e.msg);
		return 1;
	}
	for (int r = 0; r <= n; r++) {
		double t0 = cpu_ms();
		for (int j = 0; j < 3; j++) {
			struct batch b = { 1, toks + j, seq, want };
			if (ctx_decode(c, &b, &e) == -1)
				goto fail;
		}
		double t1 = cpu_ms();
		if (ctx_seq_truncate(c, 0, 96, &e) == -1)
			goto fail;
		struct batch b3 = { 3, toks, seq, want };
		double t2 = cpu_ms();
		if (ctx_decode(c, &b3, &e) == -1)
			goto fail;
		double t3 = cpu_ms();
		if (ctx_seq_truncate(c, 0, 96, &e) == -1)
			goto fail;
		if (r > 0) {	/* round 0 warms the caches and pages */
			one[r - 1] = t1 - t0;
			three[r - 1] = t3 - t2;
			printf("round %d: 3 passes of 1 token %.1f ms CPU, 1 pass of 3 tokens %.1f ms CPU\n",
			    r, t1 - t0, t3 - t2);
		}
	}
	printf("median of %d: 3 passes of 1 token %.1f ms, 1 pass of 3 tokens %.1f ms CPU\n", n,
	    median_of(one, (size_t)n), median_of(three, (size_t)n));
	ctx_free(c);
	return 0;
fail:
	fprintf(stderr, "bench_verdict: %s\n", e.msg);
	ctx_free(c);
	return 1;
}

int
main(int argc, char **argv)
{
	struct err e;
	int n = argc > 2 ? atoi(argv[2]) : 5, th = argc > 3 ? atoi(argv[3]) : 2;
	const char *t = argc > 4 && strcmp(argv[4], "unsafe") == 0 ? unsafe_tail : tail;

	if (argc < 2 || n < 1 || n > 15) {
		fprintf(stderr, "usage: bench_verdict MODEL [N (1..15) [THREADS [unsafe]]]\n");
		return 2;
	}
	struct model *m = model_open(argv[1], &e);
	if (m == NULL) {
		fprintf(stderr, "bench_verdict: %s\n", e.msg);
		return 1;
	}
	if (argc > 4 && strcmp(argv[4], "passes") == 0) {
		int rc = passes(m, n, th);
		model_close(m);
		return rc;
	}
	struct policy *pol = policy_default();
	struct classifier_params cp = classifier_params_default();
	cp.n_threads = th;
	cp.max_batch = 1;
	struct classifier *c = classifier_new(m, &cp, &e);
	if (c == NULL || classifier_add_policy(c, pol, &e) == -1) {
		fprintf(stderr, "bench_verdict: %s\n", e.msg);
		return 1;
	}
	double pre[16], dec[16], tot[16], cpu[16];
	for (int i = 0; i <= n; i++) {
		char msg[512];
		struct conv cv = { 0 };
		snprintf(msg, sizeof(msg), "%s%s", names[i], t);
		if (conv_simple(&cv, msg, strlen(msg), NULL, 0, &e) == -1) {
			fprintf(stderr, "bench_verdict: %s\n", e.msg);
			return 1;
		}
		const struct conv *one = &cv;
		struct verdict v;
		double c0 = cpu_ms();
		classifier_run(c, 0, &one, 1, &v);
		double c1 = cpu_ms();
		if (i > 0) {	/* message 0 warms the caches and pages */
			pre[i - 1] = v.ms_prefill;
			dec[i - 1] = v.ms_decode;
			tot[i - 1] = v.ms_total;
			cpu[i - 1] = c1 - c0;
			printf("verdict %d: %d evaluated, %d cached, prefill %.1f ms, decode %.1f ms, "
			    "total %.1f ms, CPU %.1f ms, unsafe_score %.17g, answer \"", i,
			    v.tokens_evaluated, v.tokens_cached, v.ms_prefill, v.ms_decode, v.ms_total,
			    c1 - c0, v.unsafe_score);
			for (const char *r = v.raw; *r; r++)
				if (*r == '\n')
					fputs("\\n", stdout);
				else
					putchar(*r);
			printf("\"\n");
		}
		verdict_free(&v);
		conv_free(&cv);
	}
	printf("median of %d: prefill %.1f ms, decode %.1f ms, total %.1f ms, CPU %.1f ms\n", n,
	    median_of(pre, (size_t)n), median_of(dec, (size_t)n), median_of(tot, (size_t)n),
	    median_of(cpu, (size_t)n));
	classifier_free(c);
	policy_free(pol);
	model_close(m);
	return 0;
}
