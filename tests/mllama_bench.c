/* mllama_bench.c - one Llama 3.2-Vision request, timed stage by stage, for tests/bench_11b.sh
 * (not part of make check): load, encode one image (wall and CPU seconds), attach it (the
 * cross-attention keys and values of every cross layer), prefill N tokens (<|begin_of_text|>,
 * <|image|>, then fixed pseudo-random text ids), decode G tokens greedily; then the peak RSS
 * and the RSS split into file-backed (the mapped weights) and anonymous (KV cache, scratch,
 * image keys) pages. One line per figure, "key value". IMAGE "none": text only (no image
 * token; the cross-attention layers are skipped), for a machine too busy for the tower.
 *   mllama_bench MODEL IMAGE|none [N=32] [G=8] [N_CTX=512] [THREADS=0] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/ctx.h"
#include "core/image.h"
#include "core/imgprep.h"
#include "core/mllama.h"
#include "core/model.h"
#include "core/sample.h"

static double
now(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* VmRSS, RssFile and RssAnon of /proc/self/status, in MiB */
static void
rss_split(const char *when)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	long kb;

	if (fp == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			printf("rss_%s_mib %.1f\n", when, kb / 1024.0);
		else if (sscanf(line, "RssFile: %ld", &kb) == 1)
			printf("rss_file_%s_mib %.1f\n", when, kb / 1024.0);
		else if (sscanf(line, "RssAnon: %ld", &kb) == 1)
			printf("rss_anon_%s_mib %.1f\n", when, kb / 1024.0);
	fclose(fp);
}

static int
fail(const char *what, const struct err *e)
{
	fprintf(stderr, "mllama_bench: %s: %s\n", what, e->msg);
	return 1;
}

static int encode(struct ctx *c, struct model *m, const char *path);

int
main(int argc, char **argv)
{
	struct err e;

	if (argc < 3) {
		fprintf(stderr, "usage: mllama_bench MODEL IMAGE|none [N=32] [G=8] [N_CTX=512] [THREADS=0]\n");
		return 2;
	}
	int np = argc > 3 ? atoi(argv[3]) : 32, ng = argc > 4 ? atoi(argv[4]) : 8;
	int n_ctx = argc > 5 ? atoi(argv[5]) : 512, threads = argc > 6 ? atoi(argv[6]) : 0;
	if (np < 3 || ng < 1 || n_ctx < np + ng) {
		fprintf(stderr, "mllama_bench: N >= 3, G >= 1, N_CTX >= N + G\n");
		return 2;
	}
	double t0 = now(CLOCK_MONOTONIC);
	struct model *m = model_open(argv[1], &e);
	if (m == NULL)
		return fail(argv[1], &e);
	printf("model %s\nweights %s\nload_s %.3f\n", argv[1], model_weight_type(m),
	    now(CLOCK_MONOTONIC) - t0);
	if (model_image_token(m) < 0) {
		fprintf(stderr, "mllama_bench: %s is not a vision model\n", argv[1]);
		return 1;
	}
	struct ctx_params p = ctx_params_default();
	p.n_ctx = n_ctx;
	p.n_batch = np;
	p.n_threads = threads;
	struct ctx *c = ctx_new(m, &p, &e);
	if (c == NULL)
		return fail("context", &e);
	printf("threads %d\nn_ctx %d\n", ctx_n_threads(c), n_ctx);

	int with_image = strcmp(argv[2], "none") != 0;
	if (with_image && encode(c, m, argv[2]) == -1)
		return 1;

	int32_t *ids = malloc((size_t)np * sizeof(int32_t));
	uint64_t z = 12345;
	ids[0] = 128000;
	ids[1] = with_image ? model_image_token(m) : 9906;
	for (int i = 2; i < np; i++) {	/* fixed pseudo-random text ids: the same work every run */
		z = z * 6364136223846793005ull + 1442695040888963407ull;
		ids[i] = (int32_t)((z >> 33) % 128000);
	}
	t0 = now(CLOCK_MONOTONIC);
	if (ctx_eval(c, 0, ids, np, &e) == -1)
		return fail("prefill", &e);
	double pw = now(CLOCK_MONOTONIC) - t0;
	printf("prefill_tokens %d\nprefill_s %.3f\nprefill_tok_s %.3f\n", np, pw, np / pw);
	int32_t tok;
	t0 = now(CLOCK_MONOTONIC);
	for (int i = 0; i < ng; i++) {
		tok = sample_greedy(ctx_logits(c, 0), ctx_n_vocab(c));
		if (ctx_eval(c, 0, &tok, 1, &e) == -1)
			return fail("decode", &e);
	}
	double dw = now(CLOCK_MONOTONIC) - t0;
	printf("decode_tokens %d\ndecode_s %.3f\ndecode_tok_s %.3f\n", ng, dw, ng / dw);
	rss_split("end");
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("peak_rss_mib %.1f\n", ru.ru_maxrss / 1024.0);
	free(ids);
	ctx_free(c);
	model_close(m);
	return 0;
}

/* encodes the image (timed) and attaches it to sequence 0 (timed) */
static int
encode(struct ctx *c, struct model *m, const char *path)
{
	struct imgprep_config cfg;
	struct imgprep_out out;
	struct image img = { 0 };
	struct err e;
	double t0;
	imgprep_config_default(&cfg);
	if (image_load(&img, path, NULL, &e) == -1 || imgprep_run(&cfg, &img, &out, &e) == -1)
		return fail(path, &e), -1;
	image_free(&img);
	t0 = now(CLOCK_MONOTONIC);
	double c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	struct mllama_image *im = mllama_encode(c, out.pixels, out.aspect_ratio_id,
	    (int)out.num_tiles, NULL, NULL, &e);
	if (im == NULL)
		return fail("encode", &e), -1;
	double ew = now(CLOCK_MONOTONIC) - t0, ec = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	int max_tiles = 0;
	model_image_size(m, &max_tiles);
	printf("image_tiles %d\nencode_wall_s %.3f\nencode_cpu_s %.3f\n"
	    "encode_wall_s_per_tile %.3f\n", (int)out.num_tiles, ew, ec, ew / (double)out.num_tiles);
	printf("# the tower runs all %d tile slots of an image, padded ones too: an image of any "
	    "tile count costs the same\n", max_tiles);
	t0 = now(CLOCK_MONOTONIC);
	if (ctx_seq_add_image(c, 0, im, &e) == -1)
		return fail("attach", &e), -1;
	printf("attach_s %.3f\n", now(CLOCK_MONOTONIC) - t0);
	mllama_image_free(im);
	imgprep_out_free(&out);
	return 0;
}
