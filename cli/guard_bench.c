/* guard_bench.c - guard bench: load time, prefill and decode throughput (medians), peak RSS. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "core/ctx.h"
#include "core/kern.h"
#include "core/matmul.h"
#include "core/model.h"
#include "util/median.h"

int
cmd_bench(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' }, { "prompt", required_argument, NULL, 'p' },
		{ "gen", required_argument, NULL, 'n' }, { "runs", required_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	const char *mpath = NULL;
	long np = 512, ng = 128, runs = 3, threads = 0;
	int json = 0, c, rc = EXIT_BAD;
	struct err e;

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:p:n:r:t:jh", lo, NULL)) != -1)
		switch (c) {
		case 'm': mpath = optarg; break;
		case 'p': if (parse_int("-p", optarg, 1, 1 << 20, &np)) return usage_of("bench"); break;
		case 'n': if (parse_int("-n", optarg, 0, 1 << 20, &ng)) return usage_of("bench"); break;
		case 'r': if (parse_int("-r", optarg, 1, 1000, &runs)) return usage_of("bench"); break;
		case 't': if (parse_int("-t", optarg, 0, 1024, &threads)) return usage_of("bench"); break;
		case 'j': json = 1; break;
		default: return usage_of("bench");
		}
	if (mpath == NULL || optind != argc)
		return usage_of("bench");
	double t0 = now_s();
	struct model *m = open_model(mpath);
	if (m == NULL)
		return EXIT_BAD;
	double load = now_s() - t0;
	const struct hparams *h = model_hparams(m);
	struct ctx_params p = ctx_params_default();
	p.n_ctx = (int)(np + ng + 1);
	p.n_batch = (int)(np < 512 ? np : 512);
	p.n_threads = (int)threads;
	struct ctx *cx = ctx_new(m, &p, &e);
	if (cx == NULL) {
		warnx_("%s", e.msg);
		model_close(m);
		return EXIT_BAD;
	}
	int32_t *ids = malloc((size_t)np * sizeof(int32_t));
	double *pre = calloc((size_t)runs, sizeof(double)), *dec = calloc((size_t)runs, sizeof(double));
	uint64_t z = 12345;
	for (long i = 0; i < np; i++) {	/* fixed pseudo-random ids: same work every run */
		z = z * 6364136223846793005ull + 1442695040888963407ull;
		ids[i] = (int32_t)((z >> 33) % (uint64_t)h->n_vocab);
	}
	for (long r = 0; r < runs; r++) {
		ctx_seq_clear(cx, 0);
		t0 = now_s();
		if (ctx_eval(cx, 0, ids, (int)np, &e) == -1) {
			warnx_("%s", e.msg);
			goto out;
		}
		pre[r] = (double)np / (now_s() - t0);
		t0 = now_s();
		for (long i = 0; i < ng; i++) {
			int32_t tok = ids[i % np];
			if (ctx_eval(cx, 0, &tok, 1, &e) == -1) {
				warnx_("%s", e.msg);
				goto out;
			}
		}
		dec[r] = ng > 0 ? (double)ng / (now_s() - t0) : 0;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double pre_m = median_of(pre, (size_t)runs), dec_m = median_of(dec, (size_t)runs);
	double rss = ru.ru_maxrss / 1024.0;
	/* decode reads every matrix once per token: its rate in bytes per second */
	double gbs = (double)model_weight_bytes_per_token(m) * dec_m / 1e9;
	const char *qk = matmul_quant_kernel_name(model_matrix_type(m));
	/* BF16 weights on AMX tiles (the default where they run; GUARD_AMX=0: off) */
	int tiles = strcmp(model_weight_type(m), "BF16") == 0 &&
	    strcmp(matmul_kernel_name(), "avx512bf16") == 0 && kern_bf16_amx_on();
	if (json)
		printf("{\"model\": \"%s\", \"weight_type\": \"%s\", \"kernel\": \"%s\", \"threads\": %d, "
		    "\"prompt_tokens\": %ld, \"gen_tokens\": %ld, \"runs\": %ld, \"prefill_tok_s\": %.2f, "
		    "\"decode_tok_s\": %.2f, \"decode_gb_s\": %.3f, \"load_s\": %.3f, "
		    "\"rss_mb\": %.1f, \"quant_kernel\": \"%s\", \"amx_bf16\": %s}\n", mpath,
		    model_weight_type(m), matmul_kernel_name(), ctx_n_threads(cx), np, ng, runs, pre_m,
		    dec_m, gbs, load, rss, qk, tiles ? "true" : "false");
	else
		printf("model        %s (%s weights, %s kernels%s%s%s)\nthreads      %d\n"
		    "load         %.3f s\nprefill      %.2f tok/s (%ld tokens, median of %ld)\n"
		    "decode       %.2f tok/s (%ld tokens, median of %ld), %.2f GB/s of weights\n"
		    "peak RSS     %.1f MiB\n",
		    mpath, model_weight_type(m), matmul_kernel_name(), *qk ? ", quantized: " : "", qk,
		    tiles ? ", AMX BF16 tiles" : "", ctx_n_threads(cx), load, pre_m, np, runs, dec_m, ng, runs, gbs, rss);
	rc = EXIT_OK;
out:
	free(ids);
	free(pre);
	free(dec);
	ctx_free(cx);
	model_close(m);
	return rc;
}
