/* bench_verdict.c - in-process prefix-cached verdicts, the figure issue 9's verdict target is
 * about, without the daemon's socket: loads MODEL, computes the default policy's prefix, warms
 * with one message, then times N verdicts of different 40-token-class user messages and
 * prints each one's prefill and total milliseconds and their medians.
 *   build/tests/bench_verdict MODEL [N [THREADS]]
 * A/B use: run two builds (or two environments) back to back, interleaved, and compare the
 * medians of one sitting only (the machine's speed drifts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classifier/classifier.h"
#include "classifier/conv.h"
#include "core/model.h"
#include "policy/policy.h"

static const char *names[] = { "Alice", "Brian", "David", "Emily", "Frank", "Grace", "Henry",
	"James", "Laura", "Maria", "Peter", "Susan", "Thomas", "Oliver", "Sarah", "Kevin" };
static const char *tail = " asked me how to store the cleaning products in our shared kitchen "
    "so that the children cannot reach them, and which ones are dangerous to mix together when "
    "cleaning the bathroom at home this weekend with friends.";

/* the process's CPU time: steadier than wall time when other work shares the CPUs */
static double
cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
	struct err e;
	int n = argc > 2 ? atoi(argv[2]) : 5, th = argc > 3 ? atoi(argv[3]) : 2;

	if (argc < 2 || n < 1 || n > 15) {
		fprintf(stderr, "usage: bench_verdict MODEL [N (1..15) [THREADS]]\n");
		return 2;
	}
	struct model *m = model_open(argv[1], &e);
	if (m == NULL) {
		fprintf(stderr, "bench_verdict: %s\n", e.msg);
		return 1;
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
	double pre[16], tot[16], cpu[16];
	for (int i = 0; i <= n; i++) {
		char msg[512];
		struct conv cv = { 0 };
		snprintf(msg, sizeof(msg), "%s%s", names[i], tail);
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
			tot[i - 1] = v.ms_total;
			cpu[i - 1] = c1 - c0;
			printf("verdict %d: %d evaluated, %d cached, prefill %.1f ms, total %.1f ms, "
			    "CPU %.1f ms, unsafe_score %.17g\n", i, v.tokens_evaluated, v.tokens_cached,
			    v.ms_prefill, v.ms_total, c1 - c0, v.unsafe_score);
		}
		verdict_free(&v);
		conv_free(&cv);
	}
	printf("median of %d: prefill %.1f ms, total %.1f ms, CPU %.1f ms\n", n, median(pre, n),
	    median(tot, n), median(cpu, n));
	classifier_free(c);
	policy_free(pol);
	model_close(m);
	return 0;
}
