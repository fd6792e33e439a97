/* guard_quantize.c - guard quantize IN OUT TYPE: an F32/F16/BF16 GGUF or Hugging Face
 * directory into a quantized GGUF that llama.cpp loads, with llama-quantize's per-tensor type
 * choices (llama_tensor_get_type in src/llama-quant.cpp at upstream 34af94cd, for a Llama
 * without an importance matrix) and its reference quantizers (core/quant_make.c). A Llama
 * 3.2-Vision directory becomes one mllama GGUF (core/mllama_gguf.c) whose text stack is
 * quantized with the same choices and whose vision tower and projector stay as stored. */
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/gguf.h"
#include "core/gguf_write.h"
#include "core/half.h"
#include "core/model.h"
#include "core/model_export.h"
#include "core/pool.h"
#include "core/quant.h"
#include "core/quant_make.h"

/* llama_ftype values (llama.h) and their default tensor type */
static const struct qtype {
	const char *name;
	uint32_t ftype, type;
	int k_m;		/* Q4_K_M / Q5_K_M: more bits for some attn_v and ffn_down */
} qtypes[] = {
	{ "Q8_0", 7, GGML_TYPE_Q8_0, 0 }, { "Q4_0", 2, GGML_TYPE_Q4_0, 0 },
	{ "Q4_1", 3, GGML_TYPE_Q4_1, 0 }, { "Q5_0", 8, GGML_TYPE_Q5_0, 0 },
	{ "Q5_1", 9, GGML_TYPE_Q5_1, 0 }, { "Q4_K_M", 15, GGML_TYPE_Q4_K, 1 },
	{ "Q5_K_M", 17, GGML_TYPE_Q5_K, 1 }, { "Q6_K", 18, GGML_TYPE_Q6_K, 0 },
	{ "F16", 1, GGML_TYPE_F16, 0 },
};
#define N_QTYPES (sizeof(qtypes) / sizeof(qtypes[0]))
#define QUANT_VERSION 2		/* GGML_QNT_VERSION */

enum cat { C_OTHER, C_OUTPUT, C_TOKEN_EMBD, C_ATTN_V, C_FFN_DOWN };

static int
usage(void)
{
	fprintf(stderr, "usage: guard quantize [-q] [-t threads] IN OUT TYPE\n"
	    "  IN: an F32, F16 or BF16 GGUF file, or a Hugging Face model directory\n"
	    "  TYPE:");
	for (size_t i = 0; i < N_QTYPES; i++)
		fprintf(stderr, " %s", qtypes[i].name);
	fprintf(stderr, "\n");
	return EXIT_USAGE;
}

static int
ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);

	return n >= k && strcmp(s + n - k, suf) == 0;
}

static enum cat
category(const char *nm)
{
	if (strcmp(nm, "output.weight") == 0)
		return C_OUTPUT;
	if (strcmp(nm, "token_embd.weight") == 0)
		return C_TOKEN_EMBD;
	if (strstr(nm, "attn_qkv.weight") || strstr(nm, "attn_kv_b.weight") ||
	    strstr(nm, "attn_v.weight"))
		return C_ATTN_V;
	if (strstr(nm, "ffn_down"))
		return C_FFN_DOWN;
	return C_OTHER;
}

static int
use_more_bits(int i, int n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static uint64_t
block_of(uint32_t type)
{
	uint64_t b, by;

	return ggml_type_size(type, &b, &by) ? b : 1;
}

/* llama-quantize's choice for each tensor (0 when it stays as it is: then types[i] = its
 * stored type); -1 with a message when no type fits */
static int
plan_types(const struct xtensors *x, const struct qtype *q, int n_layer, uint32_t *types)
{
	int n_wv = 0, i_wv = 0, i_down = 0, tied = 1;

	for (size_t i = 0; i < x->n; i++) {
		if (category(x->t[i].name) == C_ATTN_V)
			n_wv++;
		if (category(x->t[i].name) == C_OUTPUT)
			tied = 0;
	}
	for (size_t i = 0; i < x->n; i++) {
		const struct xtensor *t = &x->t[i];
		enum cat c = category(t->name);
		uint32_t nt = q->type;

		/* Llama 3.2-Vision: the vision tower ("v.") and the projector ("mm.") stay as
		 * stored; only the text stack is quantized */
		if (t->n_dims < 2 || !ends_with(t->name, "weight") ||
		    strstr(t->name, "_norm.weight") != NULL || strncmp(t->name, "v.", 2) == 0 ||
		    strncmp(t->name, "mm.", 3) == 0) {
			types[i] = t->out_type;
			continue;
		}
		if (nt == GGML_TYPE_F16) {	/* F16: every matrix, no mix */
			types[i] = nt;
			continue;
		}
		if (c == C_OUTPUT || (tied && c == C_TOKEN_EMBD)) {
			if (t->ne[0] % block_of(nt) != 0)
				nt = GGML_TYPE_Q8_0;
			else if (nt != GGML_TYPE_Q8_0)
				nt = GGML_TYPE_Q6_K;
		} else if (c == C_ATTN_V) {
			if (q->k_m && use_more_bits(i_wv, n_wv))
				nt = GGML_TYPE_Q6_K;
			i_wv++;
		} else if (c == C_FFN_DOWN) {
			if (q->k_m && use_more_bits(i_down, n_layer))
				nt = GGML_TYPE_Q6_K;
			i_down++;
		}
		/* tensor_type_fallback: a row that is not a whole number of blocks */
		if (t->ne[0] % block_of(nt) != 0) {
			if (nt == GGML_TYPE_Q4_K)
				nt = GGML_TYPE_Q5_0;
			else if (nt == GGML_TYPE_Q5_K)
				nt = GGML_TYPE_Q5_1;
			else if (nt == GGML_TYPE_Q6_K)
				nt = GGML_TYPE_Q8_0;
			else {
				warnx_("tensor '%s': %llu columns: no fallback for %s (llama-quantize "
				    "refuses it too)", t->name, (unsigned long long)t->ne[0],
				    ggml_type_name(nt));
				return -1;
			}
			if (t->ne[0] % block_of(nt) != 0)
				nt = GGML_TYPE_F16;
		}
		types[i] = nt;
	}
	return 0;
}

struct stats {
	double sq;		/* sum of squared errors */
	uint64_t n;
	size_t tensors;
};

/* the progress line of a tensor, with the share of its rows done (a big embedding matrix
 * takes a while) */
static void
show(const char *line, uint64_t done, uint64_t rows)
{
	if (line != NULL)
		fprintf(stderr, "\r%s %3d%%", line, (int)(rows ? done * 100 / rows : 100));
}

/* one batch of rows, split between the pool's threads; each row's blocks depend on that row
 * alone, so the bytes do not depend on the thread count */
struct batch {
	const struct xtensor *t;
	uint32_t type;
	uint64_t r0, n, k;
	size_t rowb;
	unsigned char *out;	/* n rows of rowb bytes */
	float *buf;		/* per thread: 2 k floats */
	double *sq;		/* per thread: squared error */
	int failed;
};

static void
run_batch(void *arg, int ith, int nth)
{
	struct batch *b = arg;
	float *x = b->buf + (size_t)ith * 2 * b->k, *y = x + b->k;
	uint64_t lo = b->n * (uint64_t)ith / (uint64_t)nth;
	uint64_t hi = b->n * (uint64_t)(ith + 1) / (uint64_t)nth;

	for (uint64_t r = lo; r < hi; r++) {
		unsigned char *q = b->out + r * b->rowb;
		model_export_row(b->t, b->r0 + r, x);
		if (b->type == GGML_TYPE_F16) {	/* the fallback of an odd shape */
			for (uint64_t i = 0; i < b->k; i++) {
				uint16_t h = f32_to_f16(x[i]);
				memcpy(q + 2 * i, &h, 2);
				y[i] = f16_to_f32(h);
			}
		} else if (quant_make_row((int)b->type, x, q, (int64_t)b->k) != b->rowb) {
			b->failed = 1;
			return;
		} else
			quant_dequant_row((int)b->type, q, y, (int64_t)b->k);
		for (uint64_t i = 0; i < b->k; i++) {
			double d = (double)y[i] - (double)x[i];
			b->sq[ith] += d * d;
		}
	}
}

static int
write_quantized(struct gguf_writer *w, struct pool *pool, const struct xtensor *t,
    uint32_t type, struct stats *st, const char *line, struct err *e)
{
	uint64_t k = t->ne[0], rows = 1, blk, bytes;
	int nth = pool_size(pool), rc = -1;

	for (uint32_t d = 1; d < t->n_dims; d++)
		rows *= t->ne[d];
	if (!ggml_type_size(type, &blk, &bytes))
		return err_set(e, "tensor '%s': unknown type", t->name);
	struct batch b = { .t = t, .type = type, .k = k, .rowb = (size_t)(k / blk * bytes) };
	/* about 1M weights per batch: progress moves, memory stays small */
	uint64_t per = (1u << 20) / (k ? k : 1) + 1;
	if (per > rows)
		per = rows;
	b.out = malloc((size_t)per * b.rowb + 1);
	b.buf = reallocarray(NULL, (size_t)nth * 2 * (size_t)k + 1, sizeof(float));
	b.sq = calloc((size_t)nth, sizeof(double));
	if (b.out == NULL || b.buf == NULL || b.sq == NULL) {
		err_set(e, "out of memory");
		goto out;
	}
	for (b.r0 = 0; b.r0 < rows; b.r0 += b.n) {
		show(line, b.r0, rows);
		b.n = rows - b.r0 < per ? rows - b.r0 : per;
		pool_run(pool, run_batch, &b);
		if (b.failed) {
			err_set(e, "tensor '%s': cannot quantize to %s", t->name, ggml_type_name(type));
			goto out;
		}
		if (gguf_writer_write(w, b.out, (size_t)b.n * b.rowb, e) == -1)
			goto out;
	}
	show(line, rows, rows);
	for (int i = 0; i < nth; i++)
		st->sq += b.sq[i];
	st->n += k * rows;
	st->tensors++;
	rc = 0;
out:
	free(b.out);
	free(b.buf);
	free(b.sq);
	return rc;
}

/* a tensor that keeps its type: its bytes (an HF 1-D tensor becomes F32) */
static int
write_copy(struct gguf_writer *w, const struct xtensor *t, struct err *e)
{
	uint64_t blk, bytes, n = 1;

	for (uint32_t d = 0; d < t->n_dims; d++)
		n *= t->ne[d];
	if (t->type == t->out_type) {
		if (!ggml_type_size(t->type, &blk, &bytes))
			return err_set(e, "tensor '%s': unknown type %u", t->name, t->type);
		return gguf_writer_write(w, t->data, (size_t)(n / blk * bytes), e);
	}
	float *v = reallocarray(NULL, (size_t)t->ne[0], sizeof(float));
	int rc = 0;
	if (v == NULL)
		return err_set(e, "out of memory");
	for (uint64_t r = 0; rc == 0 && r < n / t->ne[0]; r++) {
		model_export_row(t, r, v);
		rc = gguf_writer_write(w, v, (size_t)t->ne[0] * 4, e);
	}
	free(v);
	return rc;
}

static int
quantize(const char *in, const char *out, const struct qtype *q, int progress, long threads)
{
	struct model *m = open_model(in);
	struct xtensors x = { 0 };
	struct gguf_writer *w = NULL;
	struct pool *pool = NULL;
	uint32_t *types = NULL;
	struct stats st[GGML_TYPE_BF16 + 1];
	struct err e;
	int rc = EXIT_BAD;

	memset(st, 0, sizeof(st));
	if (m == NULL)
		return EXIT_BAD;
	if ((pool = pool_new(threads > 0 ? (int)threads : pool_default_threads())) == NULL) {
		warnx_("cannot start threads");
		goto out;
	}
	if (model_export_tensors(m, &x, &e) == -1) {
		warnx_("%s", e.msg);
		goto out;
	}
	if ((types = calloc(x.n ? x.n : 1, sizeof(*types))) == NULL) {
		warnx_("out of memory");
		goto out;
	}
	if (plan_types(&x, q, model_hparams(m)->n_layer, types) == -1)
		goto out;
	for (size_t i = 0; i < x.n; i++)
		if (types[i] != x.t[i].out_type && x.t[i].type != GGML_TYPE_F32 &&
		    x.t[i].type != GGML_TYPE_F16 && x.t[i].type != GGML_TYPE_BF16) {
			warnx_("%s: tensor '%s' is %s: quantizing an already quantized model is not "
			    "supported (start from F32, F16 or BF16)", in, x.t[i].name,
			    ggml_type_name(x.t[i].type));
			goto out;
		}
	if ((w = gguf_writer_new(out, &e)) == NULL ||
	    model_export_meta(m, w, &e) == -1 ||
	    gguf_writer_kv_u32(w, "general.quantization_version", QUANT_VERSION, &e) == -1 ||
	    gguf_writer_kv_u32(w, "general.file_type", q->ftype, &e) == -1) {
		warnx_("%s", e.msg);
		goto out;
	}
	for (size_t i = 0; i < x.n; i++)
		if (gguf_writer_tensor(w, x.t[i].name, types[i], x.t[i].n_dims, x.t[i].ne, &e)) {
			warnx_("%s", e.msg);
			goto out;
		}
	if (gguf_writer_begin(w, &e) == -1) {
		warnx_("%s", e.msg);
		goto out;
	}
	for (size_t i = 0; i < x.n; i++) {
		const struct xtensor *t = &x.t[i];
		char line[160];
		snprintf(line, sizeof(line), "[%3zu/%3zu] %-28s %-5s -> %-5s", i + 1, x.n, t->name,
		    ggml_type_name(t->type), ggml_type_name(types[i]));
		if (progress)
			show(line, 0, 1);
		int r = types[i] == t->out_type ? write_copy(w, t, &e) :
		    write_quantized(w, pool, t, types[i], &st[types[i]], progress ? line : NULL, &e);
		if (r == 0 && progress)
			show(line, 1, 1);
		if (r == -1) {
			if (progress)
				fprintf(stderr, "\n");
			warnx_("%s: %s", out, e.msg);
			goto out;
		}
	}
	if (progress)
		fprintf(stderr, "\n");
	if (gguf_writer_finish(w, &e) == -1) {
		warnx_("%s", e.msg);
		goto out;
	}
	printf("%s: %s from %s\n", out, q->name, in);
	for (uint32_t ty = 0; ty <= GGML_TYPE_BF16; ty++)
		if (st[ty].tensors > 0)
			printf("  %-5s %3zu tensors  %10llu weights  rmse %.6e\n", ggml_type_name(ty),
			    st[ty].tensors, (unsigned long long)st[ty].n, sqrt(st[ty].sq / (double)st[ty].n));
	rc = EXIT_OK;
out:
	gguf_writer_free(w);
	pool_free(pool);
	free(types);
	model_export_free(&x);
	model_close(m);
	return rc;
}

int
cmd_quantize(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "quiet", no_argument, NULL, 'q' }, { "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int c, quiet = 0;
	long threads = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "qt:h", lo, NULL)) != -1)
		switch (c) {
		case 'q': quiet = 1; break;
		case 't': if (parse_int("-t", optarg, 0, 1024, &threads)) return usage(); break;
		case 'h': usage(); return EXIT_OK;
		default: return usage();
		}
	if (argc - optind != 3)
		return usage();
	const char *ty = argv[optind + 2];
	for (size_t i = 0; i < N_QTYPES; i++)
		if (strcasecmp(ty, qtypes[i].name) == 0)
			return quantize(argv[optind], argv[optind + 1], &qtypes[i],
			    !quiet && isatty(STDERR_FILENO), threads);
	warnx_("quantize: unknown TYPE '%s' (one of Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K_M, Q5_K_M, "
	    "Q6_K, F16)", ty);
	return EXIT_USAGE;
}
