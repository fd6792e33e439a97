/* guard_inspect.c - guard tokenize, logits, generate: the core seen from the command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/ctx.h"
#include "core/imgprep.h"
#include "core/mllama.h"
#include "core/mllama_image.h"
#include "core/model.h"
#include "core/sample.h"
#include "core/tok.h"
#include "util/mapfile.h"

int
cmd_tokenize(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' }, { "special", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	const char *mpath = NULL;
	int special = 0, c, rc = EXIT_BAD;
	struct tokvec ids = { 0 };
	struct err e;
	size_t len;
	char *text;

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:sh", lo, NULL)) != -1)
		switch (c) {
		case 'm': mpath = optarg; break;
		case 's': special = 1; break;
		default: return usage_of("tokenize");
		}
	if (mpath == NULL || optind != argc)
		return usage_of("tokenize");
	struct model *m = open_model(mpath);
	if (m == NULL)
		return EXIT_BAD;
	if (model_tok(m) == NULL) {
		warnx_("%s: the model has no tokenizer", mpath);
		goto out;
	}
	if ((text = read_stdin(&len)) == NULL)
		goto out;
	if (tok_encode(model_tok(m), text, len, special, &ids, &e) == -1)
		warnx_("stdin: %s", e.msg);
	else {
		for (size_t i = 0; i < ids.n; i++)
			printf("%s%d", i ? " " : "", ids.v[i]);
		printf("\n");
		rc = EXIT_OK;
	}
	free(text);
	tokvec_free(&ids);
out:
	model_close(m);
	return rc;
}

/* the options logits and generate share */
enum { MAX_IMAGES = 64 };

struct run_opts {
	const char *model, *ids, *out;
	const char *images[MAX_IMAGES];	/* --image, in order for the <|image|> tokens */
	int n_images;
	long top, n, threads, top_k, seed, repeat_last_n;
	double temp, top_p, min_p, repeat_penalty;
};

/* Attaches each --image to sequence 0, in order, through the code the guard and the
 * generator use (core/mllama_image.c: decode, the model's preprocessing, vision tower), so
 * that an image is seen here as they see it. A vision model with no preprocessor config
 * (a GGUF without the stored copy, a directory without the file) gets Meta's values: said
 * on stderr. */
static int
attach_images(const struct run_opts *o, struct ctx *c, const struct model *m,
    const struct tokvec *ids)
{
	struct imgprep_config cfg;
	struct err e;
	char note[4600];
	int n_tok = 0;

	if (o->n_images == 0)
		return 0;
	if (model_image_token(m) < 0) {
		warnx_("%s: a text-only model takes no --image", o->model);
		return -1;
	}
	for (size_t i = 0; i < ids->n; i++)
		n_tok += ids->v[i] == model_image_token(m);
	if (n_tok != o->n_images) {
		warnx_("--image: %d image(s) for %d <|image|> token(s) (%d) in --ids", o->n_images,
		    n_tok, model_image_token(m));
		return -1;
	}
	int src = mllama_prep_config(m, &cfg, note, sizeof(note), &e);
	if (src == -1) {
		warnx_("%s", e.msg);
		return -1;
	}
	if (src == 0)
		warnx_("warning: %s", note);
	for (int k = 0; k < o->n_images; k++) {
		size_t len;
		char *data = file_read_all(o->images[k], &len, (size_t)64 << 20, &e);
		if (data == NULL || mllama_attach_bytes(c, 0, data, len, &e) == -1) {
			warnx_("--image %s: %s", o->images[k], e.msg);
			free(data);
			return -1;
		}
		free(data);
	}
	return 0;
}

static struct ctx *
prepare(const struct run_opts *o, struct model **mp, struct tokvec *ids, int extra)
{
	struct ctx_params p = ctx_params_default();
	struct err e;
	struct ctx *c;

	if (parse_ids(o->ids, ids) == -1)
		return NULL;
	if ((*mp = open_model(o->model)) == NULL)
		return NULL;
	p.n_ctx = (int)ids->n + extra;
	p.n_threads = (int)o->threads;
	if ((c = ctx_new(*mp, &p, &e)) == NULL) {
		warnx_("%s", e.msg);
		model_close(*mp);
		return NULL;
	}
	if (attach_images(o, c, *mp, ids) == -1) {
		ctx_free(c);
		model_close(*mp);
		return NULL;
	}
	if (ctx_eval(c, 0, ids->v, (int)ids->n, &e) == -1) {
		warnx_("--ids: %s", e.msg);
		ctx_free(c);
		model_close(*mp);
		return NULL;
	}
	return c;
}

static int
parse_run(int argc, char **argv, const char *cmd, struct run_opts *o)
{
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' }, { "ids", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' }, { "top", required_argument, NULL, 'T' },
		{ "threads", required_argument, NULL, 't' }, { "temp", required_argument, NULL, 'x' },
		{ "top-k", required_argument, NULL, 'k' }, { "top-p", required_argument, NULL, 'P' },
		{ "seed", required_argument, NULL, 'S' }, { "min-p", required_argument, NULL, 'M' },
		{ "repeat-penalty", required_argument, NULL, 'R' },
		{ "repeat-last-n", required_argument, NULL, 'N' }, { "help", no_argument, NULL, 'h' },
		{ "image", required_argument, NULL, 'I' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	char *end;

	memset(o, 0, sizeof(*o));
	o->top_k = 40;
	o->top_p = 0.95;
	o->seed = 1;
	o->repeat_penalty = 1;
	o->repeat_last_n = 64;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:i:o:T:t:n:h", lo, NULL)) != -1)
		switch (c) {
		case 'm': o->model = optarg; break;
		case 'i': o->ids = optarg; break;
		case 'o': o->out = optarg; break;
		case 'I':
			if (o->n_images == MAX_IMAGES) {
				warnx_("--image: at most %d images", MAX_IMAGES);
				return -1;
			}
			o->images[o->n_images++] = optarg;
			break;
		case 'T': if (parse_int("--top", optarg, 0, 1 << 24, &o->top)) return -1; break;
		case 't': if (parse_int("-t", optarg, 0, 1024, &o->threads)) return -1; break;
		case 'n': if (parse_int("-n", optarg, 0, 1 << 20, &o->n)) return -1; break;
		case 'k': if (parse_int("--top-k", optarg, 0, 1 << 24, &o->top_k)) return -1; break;
		case 'S': if (parse_int("--seed", optarg, 0, 1L << 62, &o->seed)) return -1; break;
		case 'N':
			if (parse_int("--repeat-last-n", optarg, 0, 1 << 20, &o->repeat_last_n))
				return -1;
			break;
		case 'x':
		case 'P':
		case 'M':
		case 'R': {
			const char *name = c == 'x' ? "--temp" : c == 'P' ? "--top-p" :
			    c == 'M' ? "--min-p" : "--repeat-penalty";
			double v = strtod(optarg, &end);
			if (*end != '\0' || end == optarg || v != v) {
				warnx_("%s: '%s' is not a number", name, optarg);
				return -1;
			}
			*(c == 'x' ? &o->temp : c == 'P' ? &o->top_p : c == 'M' ? &o->min_p :
			    &o->repeat_penalty) = v;
			break;
		}
		default: return -1;
		}
	if (o->model == NULL || o->ids == NULL || optind != argc)
		return -1;
	(void)cmd;
	return 0;
}

int
cmd_logits(int argc, char **argv)
{
	struct run_opts o;
	struct tokvec ids = { 0 };
	struct model *m;
	int rc = EXIT_BAD;

	if (parse_run(argc, argv, "logits", &o) == -1 || (o.out == NULL && o.top == 0))
		return usage_of("logits");
	struct ctx *c = prepare(&o, &m, &ids, 0);
	if (c == NULL) {
		tokvec_free(&ids);
		return EXIT_BAD;
	}
	const float *l = ctx_logits(c, 0);
	int nv = ctx_n_vocab(c);
	if (o.out != NULL) {
		FILE *fp = strcmp(o.out, "-") == 0 ? stdout : fopen(o.out, "wb");
		if (fp == NULL || fwrite(l, sizeof(float), (size_t)nv, fp) != (size_t)nv ||
		    (fp != stdout && fclose(fp) != 0)) {
			warnx_("%s: cannot write the logits", o.out);
			goto out;
		}
	}
	if (o.top > 0) {
		/* repeated selection: top is small */
		char *taken = calloc((size_t)nv, 1);
		for (long k = 0; k < o.top && k < nv; k++) {
			int best = -1;
			for (int i = 0; i < nv; i++)
				if (!taken[i] && (best < 0 || l[i] > l[best]))
					best = i;
			taken[best] = 1;
			printf("%d %.6f\n", best, l[best]);
		}
		free(taken);
	}
	rc = EXIT_OK;
out:
	ctx_free(c);
	model_close(m);
	tokvec_free(&ids);
	return rc;
}

int
cmd_generate(int argc, char **argv)
{
	struct run_opts o;
	struct tokvec ids = { 0 };
	struct model *m;
	struct err e;
	int rc = EXIT_BAD;

	if (parse_run(argc, argv, "generate", &o) == -1 || o.n <= 0)
		return usage_of("generate");
	struct ctx *c = prepare(&o, &m, &ids, (int)o.n);
	if (c == NULL) {
		tokvec_free(&ids);
		return EXIT_BAD;
	}
	struct sampler_params sp = { .temperature = (float)o.temp, .top_k = (int)o.top_k,
	    .top_p = (float)o.top_p, .seed = (uint64_t)o.seed, .min_p = (float)o.min_p,
	    .repeat_penalty = (float)o.repeat_penalty, .repeat_last_n = (int)o.repeat_last_n };
	struct sampler *s = sampler_new(&sp, ctx_n_vocab(c));
	struct tokvec out = { 0 };	/* the history of the repetition penalty */
	if (s == NULL) {
		warnx_("out of memory");
		goto out;
	}
	for (long i = 0; i < o.n; i++) {
		int32_t next = sampler_sample_hist(s, ctx_logits(c, 0), out.v, out.n);
		if (tokvec_push(&out, next) == -1) {
			warnx_("out of memory");
			goto out;
		}
		printf("%s%d", i ? " " : "", next);
		fflush(stdout);
		if (i + 1 < o.n && ctx_eval(c, 0, &next, 1, &e) == -1) {
			warnx_("%s", e.msg);
			goto out;
		}
	}
	printf("\n");
	rc = EXIT_OK;
out:
	tokvec_free(&out);
	sampler_free(s);
	ctx_free(c);
	model_close(m);
	tokvec_free(&ids);
	return rc;
}
