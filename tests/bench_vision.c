/* bench_vision.c - the vision tower's encode time per tile (issue 12), wall and process CPU,
 * with the GFLOP it computes and the rate reached. Two shapes:
 *
 *   bench_vision tiny MODEL_DIR [threads [reps]]
 *       the tiny-mllama checkpoint, loaded as guard loads it (mllama_encode on a context);
 *   bench_vision 11b [threads [reps [local [global]]]]
 *       Llama 3.2 11B-Vision's tower and projector (dim 1280, 16 heads, ff 5120, 4 tiles of
 *       1601 + 7 tokens, output 7680 -> 4096) with BF16 hash-noise weights built in memory,
 *       `local` + `global` layers (default 2 + 1); the full tower (32 + 8) is extrapolated
 *       from the per-layer times measured here, and says so.
 *
 * A 4-tile image (the tower always runs all 4 tiles; valid tiles only change the mask), one
 * warm-up encode when reps > 1, then reps timed ones; prints the median. Not part of the test suite: it
 * asserts nothing about time. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ctx.h"
#include "core/gguf.h"
#include "core/half.h"
#include "core/matmul.h"
#include "core/mllama_int.h"
#include "core/model.h"
#include "core/pool.h"
#include "core/vision_int.h"
#include "util/median.h"

#include "benchutil.h"
#include "hashnoise.h"

/* hash noise, uniform in [-a, a] */
static float
noise(uint64_t *z, float a)
{
	*z += 0x9e3779b97f4a7c15ull;
	return a * ((float)(hashnoise_mix(*z) >> 40) / (float)(1 << 23) - 1.0f);
}

static float *
floats(size_t n, float base, float a, uint64_t *z)
{
	float *x = malloc(n * sizeof(float));

	if (x == NULL) {
		fprintf(stderr, "bench_vision: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		x[i] = base + noise(z, a);
	return x;
}

static struct weight
bf16_weight(int64_t rows, int64_t cols, uint64_t *z)
{
	uint16_t *w = malloc((size_t)(rows * cols) * sizeof(uint16_t));
	float a = 1.7320508f / sqrtf((float)cols);	/* unit variance out for unit variance in */

	if (w == NULL) {
		fprintf(stderr, "bench_vision: out of memory\n");
		exit(1);
	}
	for (int64_t i = 0; i < rows * cols; i++)
		w[i] = f32_to_bf16(noise(z, a));
	return (struct weight){ w, GGML_TYPE_BF16, rows, cols };
}

static void
layer_11b(struct vlayer *L, const struct mllama *M, int gated, uint64_t *z)
{
	int D = M->dim, F = M->ff;

	L->ln1_w = floats((size_t)D, 1, 0.1f, z);
	L->ln1_b = floats((size_t)D, 0, 0.1f, z);
	L->ln2_w = floats((size_t)D, 1, 0.1f, z);
	L->ln2_b = floats((size_t)D, 0, 0.1f, z);
	L->wq = bf16_weight(D, D, z);
	L->wk = bf16_weight(D, D, z);
	L->wv = bf16_weight(D, D, z);
	L->wo = bf16_weight(D, D, z);
	L->fc1 = bf16_weight(F, D, z);
	L->fc2 = bf16_weight(D, F, z);
	L->fc1_b = floats((size_t)F, 0, 0.1f, z);
	L->fc2_b = floats((size_t)D, 0, 0.1f, z);
	L->gate_attn = gated ? tanhf(0.5f) : 1;
	L->gate_ffn = gated ? tanhf(0.3f) : 1;
}

/* Llama 3.2 11B-Vision's vision_config (Meta's config.json), n_local + n_global layers */
static void
tower_11b(struct mllama *M, int n_local, int n_global)
{
	static const int inter[] = { 3, 7, 15, 23, 30 };
	uint64_t z = 12;

	memset(M, 0, sizeof(*M));
	M->dim = 1280, M->heads = 16, M->ff = 5120, M->image = 560, M->patch = 14;
	M->max_tiles = 4, M->n_ar = 8, M->eps = 1e-5f;
	M->n_local = n_local, M->n_global = n_global;
	M->n_inter = 5;
	M->out_dim = M->dim * (1 + M->n_inter);
	/* the same 5 features; with fewer layers than the full 32 the later ones repeat the
	 * last layer's input (same copies, same projector width) */
	for (int k = 0; k < M->n_inter; k++)
		M->inter[k] = inter[k] < n_local ? inter[k] : n_local - 1;
	M->grid = M->image / M->patch;
	M->n_patch = M->grid * M->grid;
	M->n_tok = M->n_patch + 1;
	M->n_padded = (M->n_tok + 7) / 8 * 8;
	M->pk = (3 * M->patch * M->patch + 7) / 8 * 8;
	int D = M->dim;
	M->patch_f32 = floats((size_t)D * M->pk, 0, 1.7320508f / sqrtf((float)M->pk), &z);
	M->patch_w = (struct weight){ M->patch_f32, GGML_TYPE_F32, D, M->pk };
	M->cls = floats((size_t)D, 0, 0.5f, &z);
	M->pos = floats((size_t)M->n_tok * D, 0, 0.5f, &z);
	M->pos_gate = tanhf(0.4f);
	M->tile_pos = bf16_weight(M->n_ar + 1, (int64_t)M->max_tiles * M->n_tok * D, &z);
	M->pre_tile = bf16_weight(M->n_ar + 1, (int64_t)M->max_tiles * D, &z);
	M->post_tile = bf16_weight(M->n_ar + 1, (int64_t)M->max_tiles * D, &z);
	M->pre_gate = tanhf(0.2f), M->post_gate = tanhf(0.1f);
	M->ln_pre_w = floats((size_t)D, 1, 0.1f, &z);
	M->ln_pre_b = floats((size_t)D, 0, 0.1f, &z);
	M->ln_post_w = floats((size_t)D, 1, 0.1f, &z);
	M->ln_post_b = floats((size_t)D, 0, 0.1f, &z);
	M->local = calloc((size_t)n_local, sizeof(struct vlayer));
	M->global = calloc((size_t)n_global, sizeof(struct vlayer));
	if (M->local == NULL || M->global == NULL) {
		fprintf(stderr, "bench_vision: out of memory\n");
		exit(1);
	}
	for (int l = 0; l < n_local; l++)
		layer_11b(&M->local[l], M, 0, &z);
	for (int l = 0; l < n_global; l++)
		layer_11b(&M->global[l], M, 1, &z);
	M->proj = bf16_weight(4096, M->out_dim, &z);
	M->proj_b = floats(4096, 0, 0.1f, &z);
}

/* FLOPs of one encode (multiply-add = 2): matmuls, and attention's two products over the
 * pairs it computes (a valid token sees all T tokens, an invalid one the valid ones) */
static double
flops_stem(const struct mllama *M, int n_embd)
{
	double NP = (double)M->max_tiles * M->n_patch, rows = (double)M->max_tiles * M->n_tok;

	return 2 * NP * M->pk * M->dim + 2 * rows * M->out_dim * n_embd;
}

static double
flops_layer(const struct mllama *M, int nt)
{
	double T = (double)M->max_tiles * M->n_padded, D = M->dim, F = M->ff;
	double nv = (double)nt * M->n_tok, pairs = nv * T + (T - nv) * nv;

	return 2 * T * (4 * D * D + 2 * D * F) + 4 * pairs * D;
}

/* stage timestamps: the end of each transformer layer, wall and process CPU */
struct clock {
	int n, cap;
	double *wall, *cpu;
	double t0w, t0c;
};

static void
on_stage(void *arg, const char *stage, const float *x, size_t n)
{
	struct clock *C = arg;

	(void)x, (void)n;
	if (strstr(stage, "layers.") == NULL || C->n >= C->cap)
		return;
	C->wall[C->n] = bench_clock_s(CLOCK_MONOTONIC);
	C->cpu[C->n++] = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

static void
pixels_fill(float *px, size_t n)
{
	uint64_t z = 7;

	for (size_t i = 0; i < n; i++)
		px[i] = noise(&z, 2.0f);
}

int
main(int argc, char **argv)
{
	struct err e;
	struct model *m = NULL;
	struct ctx *c = NULL;
	struct mllama M11;
	const struct mllama *M;
	struct pool *pool;
	int n_embd, big = argc > 1 && strcmp(argv[1], "11b") == 0, ai = big ? 2 : 3;

	if (argc < 2 || (!big && (strcmp(argv[1], "tiny") != 0 || argc < 3))) {
		fprintf(stderr, "usage: bench_vision tiny MODEL_DIR [threads [reps]]\n"
		    "       bench_vision 11b [threads [reps [local [global]]]]\n");
		return 2;
	}
	const char *me = "bench_vision";
	int threads = (int)bench_arg(me, argc, argv, ai, 2, 1024);
	int reps = (int)bench_arg(me, argc, argv, ai + 1, 3, 100);
	if (big) {
		tower_11b(&M11, (int)bench_arg(me, argc, argv, 4, 2, 32),
		    (int)bench_arg(me, argc, argv, 5, 1, 8));
		M = &M11;
		n_embd = 4096;
		if ((pool = pool_new(threads)) == NULL) {
			fprintf(stderr, "bench_vision: cannot start %d threads\n", threads);
			return 1;
		}
	} else {
		struct ctx_params p = ctx_params_default();
		p.n_ctx = 64, p.n_seq = 1, p.n_batch = 64, p.n_outputs = 1, p.n_threads = threads;
		if ((m = model_open(argv[2], &e)) == NULL || (c = ctx_new(m, &p, &e)) == NULL) {
			fprintf(stderr, "bench_vision: %s\n", e.msg);
			return 1;
		}
		if ((M = m->mm) == NULL) {
			fprintf(stderr, "bench_vision: %s has no vision tower\n", argv[2]);
			return 1;
		}
		n_embd = m->hp.n_embd;
		pool = c->pool;
	}
	int nt = M->max_tiles, nl = M->n_local + M->n_global;
	size_t npx = (size_t)M->max_tiles * 3 * M->image * M->image;
	float *px = malloc(npx * sizeof(float));
	double *wall = calloc((size_t)reps, sizeof(double)), *cpu = calloc((size_t)reps, sizeof(double));
	double *lw = calloc((size_t)reps * nl, sizeof(double)), *lc = calloc((size_t)reps * nl, sizeof(double));
	struct clock C = { 0, nl, malloc((size_t)nl * sizeof(double)), malloc((size_t)nl * sizeof(double)), 0, 0 };
	if (px == NULL || wall == NULL || cpu == NULL || lw == NULL || lc == NULL || C.wall == NULL ||
	    C.cpu == NULL) {
		fprintf(stderr, "bench_vision: out of memory\n");
		return 1;
	}
	pixels_fill(px, npx);
	double x0 = 0;
	for (int r = reps > 1 ? -1 : 0; r < reps; r++) {	/* a warm-up when repeating */
		C.n = 0;
		C.t0w = bench_clock_s(CLOCK_MONOTONIC);
		C.t0c = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
		/* the stage hook (timestamps after each layer) only in big runs: it costs copies */
		struct mllama_image *im = vision_encode(M, n_embd, pool, px, 1, nt,
		    big ? on_stage : NULL, &C, &e);
		double w = bench_clock_s(CLOCK_MONOTONIC) - C.t0w;
		double u = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID) - C.t0c;
		if (im == NULL) {
			fprintf(stderr, "bench_vision: %s\n", e.msg);
			return 1;
		}
		x0 = im->x[0];
		mllama_image_free(im);
		if (r < 0)
			continue;
		wall[r] = w, cpu[r] = u;
		for (int l = 0; big && l < nl; l++) {	/* each layer's own time */
			lw[(size_t)l * reps + r] = C.wall[l] - (l ? C.wall[l - 1] : C.t0w);
			lc[(size_t)l * reps + r] = C.cpu[l] - (l ? C.cpu[l - 1] : C.t0c);
		}
	}
	double fl = flops_stem(M, n_embd) + nl * flops_layer(M, nt);
	double w = median_of(wall, (size_t)reps), u = median_of(cpu, (size_t)reps);
	printf("{\"shape\": \"%s\", \"threads\": %d, \"reps\": %d, \"tiles\": %d, \"layers\": [%d, %d], "
	    "\"kernels\": \"%s\", \"wall_s\": %.3f, \"cpu_s\": %.3f, \"wall_s_per_tile\": %.3f, "
	    "\"cpu_s_per_tile\": %.3f, \"gflop\": %.1f, \"gflops_wall\": %.1f, "
	    "\"gflops_per_cpu_s\": %.1f, \"x0\": %.6g",
	    big ? "11b" : "tiny", threads, reps, nt, M->n_local, M->n_global, matmul_kernel_name(),
	    w, u, w / nt, u / nt, fl / 1e9, fl / 1e9 / w, fl / 1e9 / u, (double)x0);
	if (big) {
		/* layer times: the first local layer also holds the stem (patch embedding, tile
		 * and positional embeddings, layernorm_pre); the first global one layernorm_post */
		double lwm[64], lcm[64];
		for (int l = 0; l < nl; l++) {
			lwm[l] = median_of(lw + (size_t)l * reps, (size_t)reps);
			lcm[l] = median_of(lc + (size_t)l * reps, (size_t)reps);
		}
		double loc_w = lwm[M->n_local - 1], loc_c = lcm[M->n_local - 1];
		double glo_w = lwm[nl - 1], glo_c = lcm[nl - 1];
		double full_w = w + (32 - M->n_local) * loc_w + (8 - M->n_global) * glo_w;
		double full_c = u + (32 - M->n_local) * loc_c + (8 - M->n_global) * glo_c;
		double full_fl = flops_stem(M, n_embd) + 40 * flops_layer(M, nt);
		printf(", \"local_layer_wall_s\": %.3f, \"local_layer_cpu_s\": %.3f, "
		    "\"global_layer_wall_s\": %.3f, \"global_layer_cpu_s\": %.3f, "
		    "\"layer_gflop\": %.1f, \"layer_gflops_wall\": %.1f, \"layer_gflops_per_cpu_s\": %.1f, "
		    "\"extrapolated_32_8\": {\"wall_s_per_tile\": %.2f, \"cpu_s_per_tile\": %.2f, "
		    "\"gflop\": %.0f}", loc_w, loc_c, glo_w, glo_c, flops_layer(M, nt) / 1e9,
		    flops_layer(M, nt) / 1e9 / loc_w, flops_layer(M, nt) / 1e9 / loc_c, full_w / nt,
		    full_c / nt, full_fl / 1e9);
	}
	printf("}\n");
	return 0;
}
