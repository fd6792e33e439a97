/* vision.c - Llama 3.2-Vision's image encoder (MllamaVisionModel, Meta's semantics) and the
 * multi_modal_projector: patch embedding as a matmul, pre-tile embedding, CLS, gated
 * positional + tile embedding, layernorm_pre, padding of each tile to a multiple of 8
 * tokens, the local transformer (saving the INPUT of the intermediate layers), layernorm_post,
 * post-tile embedding, the gated global transformer, then [global | intermediate] per token
 * without the padding, projected to the text width. All max_tiles tiles are computed (padded
 * tiles are zero pixels); in attention only (invalid, invalid) pairs are masked, an invalid
 * token being a padding token or one of a tile beyond num_tiles. The attention is blocked in
 * vision_attn.c, LayerNorm and GELU are vectorised in vision_ops.c. */
#include "core/mllama_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/matmul.h"
#include "core/pool.h"
#include "core/vision_attn.h"
#include "core/vision_ops.h"
#include "core/vision_int.h"

struct venc {
	const struct mllama *M;
	struct pool *pool;
	int T, D, nt;			/* tokens (max_tiles * n_padded), width, valid tiles */
	float *h, *xn, *q, *k, *v, *att, *f;
	uint8_t *valid;			/* per token */
	struct vattn *attn;
	void *mm;
	/* the current job */
	const float *ln_w, *ln_b;
	const float *bias;
	float *buf;
	int rows, cols;
	mllama_stage_fn stage;
	void *arg;
};

static void
do_ln(void *arg, int ith, int nth)
{
	struct venc *V = arg;

	for (int i = V->rows * ith / nth; i < V->rows * (ith + 1) / nth; i++)
		vision_layernorm(V->buf + (size_t)i * V->D, V->h + (size_t)i * V->D, V->ln_w, V->ln_b,
		    V->D, V->M->eps);
}

/* buf (rows, cols) += bias, then exact-erf GELU when ln_w is set (a flag here) */
static void
do_bias(void *arg, int ith, int nth)
{
	struct venc *V = arg;

	for (int i = V->rows * ith / nth; i < V->rows * (ith + 1) / nth; i++) {
		float *y = V->buf + (size_t)i * V->cols;
		if (V->ln_w != NULL) {
			vision_gelu_bias(y, V->bias, V->cols);
			continue;
		}
		for (int j = 0; j < V->cols; j++)
			y[j] += V->bias[j];
	}
}

static void
run_ln(struct venc *V, const float *w, const float *b, float *out, int rows)
{
	V->ln_w = w;
	V->ln_b = b;
	V->buf = out;
	V->rows = rows;
	pool_run(V->pool, do_ln, V);
}

static void
add_bias(struct venc *V, float *y, const float *b, int rows, int cols, int gelu)
{
	V->buf = y;
	V->bias = b;
	V->rows = rows;
	V->cols = cols;
	V->ln_w = gelu ? b : NULL;
	pool_run(V->pool, do_bias, V);
}

static void
vlayer_run(struct venc *V, const struct vlayer *L)
{
	int T = V->T, D = V->D, F = V->M->ff;

	run_ln(V, L->ln1_w, L->ln1_b, V->xn, T);
	matmul(V->pool, &L->wq, V->xn, T, V->q, V->mm);
	matmul(V->pool, &L->wk, V->xn, T, V->k, V->mm);
	matmul(V->pool, &L->wv, V->xn, T, V->v, V->mm);
	vattn_run(V->attn, V->pool, V->q, V->k, V->v, V->valid,
	    1.0f / sqrtf((float)(D / V->M->heads)), V->att);
	matmul(V->pool, &L->wo, V->att, T, V->xn, V->mm);
	for (size_t i = 0; i < (size_t)T * D; i++)
		V->h[i] += L->gate_attn * V->xn[i];
	run_ln(V, L->ln2_w, L->ln2_b, V->xn, T);
	matmul(V->pool, &L->fc1, V->xn, T, V->f, V->mm);
	add_bias(V, V->f, L->fc1_b, T, F, 1);
	matmul(V->pool, &L->fc2, V->f, T, V->xn, V->mm);
	add_bias(V, V->xn, L->fc2_b, T, D, 0);
	for (size_t i = 0; i < (size_t)T * D; i++)
		V->h[i] += L->gate_ffn * V->xn[i];
}

/* the stage callback with rows [r0, r0 + n) of each tile of a (tiles, stride, dim) buffer */
static void
stage_tiles(struct venc *V, const char *name, const float *x, int stride, int r0, int n, int dim,
    float *tmp)
{
	const struct mllama *M = V->M;
	size_t k = 0;

	if (V->stage == NULL)
		return;
	for (int t = 0; t < M->max_tiles; t++)
		for (int r = r0; r < r0 + n; r++, k += (size_t)dim)
			memcpy(tmp + k, x + ((size_t)t * stride + r) * dim, (size_t)dim * sizeof(float));
	V->stage(V->arg, name, tmp, k);
}

static void
venc_free(struct venc *V)
{
	free(V->h); free(V->xn); free(V->q); free(V->k); free(V->v); free(V->att); free(V->f);
	free(V->valid); free(V->mm);
	vattn_free(V->attn);
}

/* (1 row of a weight as floats) */
static float *
row_of(const struct weight *w, int r)
{
	float *x = malloc((size_t)w->cols * sizeof(float));

	if (x != NULL)
		weight_row(w, r, x);
	return x;
}

struct mllama_image *
mllama_encode(struct ctx *c, const float *pixels, int ar, int nt, mllama_stage_fn stage,
    void *arg, struct err *e)
{
	if (c->m->mm == NULL) {
		err_set(e, "%s: a text-only model has no vision tower", c->m->path);
		return NULL;
	}
	return vision_encode(c->m->mm, c->m->hp.n_embd, c->pool, pixels, ar, nt, stage, arg, e);
}

struct mllama_image *
vision_encode(const struct mllama *M, int E, struct pool *pool, const float *pixels, int ar,
    int nt, mllama_stage_fn stage, void *arg, struct err *e)
{
	struct venc V = { 0 };
	struct mllama_image *im = NULL;
	float *tile_pos = NULL, *pre = NULL, *post = NULL, **inter = NULL, *out = NULL, *X = NULL;

	if (ar < 1 || ar > M->n_ar || nt < 1 || nt > M->max_tiles) {
		err_set(e, "image: aspect_ratio_id %d (1 to %d) or %d tiles (1 to %d) out of range",
		    ar, M->n_ar, nt, M->max_tiles);
		return NULL;
	}
	int D = M->dim, T = M->max_tiles * M->n_padded, NP = M->max_tiles * M->n_patch;
	int P = M->patch, G = M->grid, S = M->image, OD = M->out_dim;
	int K = M->n_inter, maxc = M->pk > M->ff ? M->pk : M->ff;
	size_t TD = (size_t)T * D;
	maxc = maxc > OD ? maxc : OD;
	V.M = M;
	V.pool = pool;
	V.T = T;
	V.D = D;
	V.nt = nt;
	V.stage = stage;
	V.arg = arg;
	size_t big = (size_t)T * (size_t)(M->ff > D ? M->ff : D);
	size_t xrows = (size_t)(NP > M->max_tiles * M->n_tok ? NP : M->max_tiles * M->n_tok);
	V.h = calloc(TD, sizeof(float));
	V.xn = calloc(big > xrows * OD ? big : xrows * OD, sizeof(float));
	V.q = malloc(TD * sizeof(float));
	V.k = malloc(TD * sizeof(float));
	V.v = malloc(TD * sizeof(float));
	V.att = malloc(TD * sizeof(float));
	V.f = malloc(big * sizeof(float));
	V.attn = vattn_new(T, D, M->heads, pool_size(pool));
	V.valid = calloc((size_t)T, 1);
	V.mm = malloc(matmul_scratch_size(T > (int)xrows ? T : (int)xrows, maxc));
	X = malloc(xrows * (size_t)(M->pk > OD ? M->pk : OD) * sizeof(float));
	inter = calloc((size_t)K + 1, sizeof(float *));
	tile_pos = row_of(&M->tile_pos, ar);
	pre = row_of(&M->pre_tile, ar);
	post = row_of(&M->post_tile, ar);
	im = calloc(1, sizeof(*im));
	int fail = V.h == NULL || V.xn == NULL || V.q == NULL || V.k == NULL || V.v == NULL ||
	    V.att == NULL || V.f == NULL || V.attn == NULL || V.valid == NULL || V.mm == NULL ||
	    X == NULL || inter == NULL ||
	    tile_pos == NULL || pre == NULL || post == NULL || im == NULL;
	for (int k = 0; !fail && k < K; k++)
		fail = (inter[k] = malloc(TD * sizeof(float))) == NULL;
	if (fail || (im->x = malloc((size_t)M->max_tiles * M->n_tok * E * sizeof(float))) == NULL) {
		err_set(e, "image encoder: out of memory");
		goto fail;
	}
	/* patches as rows (c, ky, kx), then the convolution as one matmul */
	memset(X, 0, (size_t)NP * M->pk * sizeof(float));
	for (int t = 0; t < M->max_tiles; t++)
		for (int py = 0; py < G; py++)
			for (int px = 0; px < G; px++) {
				float *r = X + ((size_t)t * M->n_patch + (size_t)py * G + px) * M->pk;
				for (int ch = 0; ch < 3; ch++)
					for (int ky = 0; ky < P; ky++)
						memcpy(r + (ch * P + ky) * P, pixels + (((size_t)t * 3 + ch) * S +
						    (size_t)py * P + ky) * S + (size_t)px * P, (size_t)P * sizeof(float));
			}
	matmul(pool, &M->patch_w, X, NP, V.xn, V.mm);
	if (stage != NULL) {	/* Conv2d layout (tiles, dim, grid, grid) */
		for (int t = 0; t < M->max_tiles; t++)
			for (int p = 0; p < M->n_patch; p++)
				for (int d = 0; d < D; d++)
					X[((size_t)t * D + d) * M->n_patch + p] = V.xn[((size_t)t * M->n_patch + p) * D + d];
		stage(arg, "vision_model.patch_embedding", X, (size_t)NP * D);
	}
	/* into the padded layout: tile t's token i at row t * n_padded + i, CLS at i = 0 */
	for (int t = 0; t < M->max_tiles; t++)
		for (int p = 0; p < M->n_patch; p++) {
			float *h = V.h + ((size_t)t * M->n_padded + 1 + p) * D;
			const float *x = V.xn + ((size_t)t * M->n_patch + p) * D;
			for (int d = 0; d < D; d++)
				h[d] = x[d] + M->pre_gate * pre[t * D + d];
		}
	stage_tiles(&V, "vision_model.pre_tile_positional_embedding", V.h, M->n_padded, 1,
	    M->n_patch, D, X);
	for (int t = 0; t < M->max_tiles; t++) {
		memcpy(V.h + (size_t)t * M->n_padded * D, M->cls, (size_t)D * sizeof(float));
		for (int i = 0; i < M->n_tok; i++) {
			float *h = V.h + ((size_t)t * M->n_padded + i) * D;
			const float *tp = tile_pos + ((size_t)t * M->n_tok + i) * D;
			for (int d = 0; d < D; d++)
				h[d] += (1 - M->pos_gate) * M->pos[(size_t)i * D + d] + M->pos_gate * tp[d];
		}
	}
	stage_tiles(&V, "vision_model.gated_positional_embedding", V.h, M->n_padded, 0, M->n_tok, D, X);
	run_ln(&V, M->ln_pre_w, M->ln_pre_b, V.xn, T);
	for (int t = 0; t < M->max_tiles; t++) {
		memcpy(V.h + (size_t)t * M->n_padded * D, V.xn + (size_t)t * M->n_padded * D,
		    (size_t)M->n_tok * D * sizeof(float));
		memset(V.h + ((size_t)t * M->n_padded + M->n_tok) * D, 0,
		    (size_t)(M->n_padded - M->n_tok) * D * sizeof(float));
		for (int i = 0; i < M->n_tok; i++)
			V.valid[t * M->n_padded + i] = t < nt;
	}
	stage_tiles(&V, "vision_model.layernorm_pre", V.h, M->n_padded, 0, M->n_tok, D, X);
	char name[96];
	for (int l = 0, k = 0; l < M->n_local; l++) {
		while (k < K && M->inter[k] == l)	/* Meta's: the layer's input */
			memcpy(inter[k++], V.h, TD * sizeof(float));
		vlayer_run(&V, &M->local[l]);
		snprintf(name, sizeof(name), "vision_model.transformer.layers.%d", l);
		if (stage)
			stage(arg, name, V.h, TD);
	}
	run_ln(&V, M->ln_post_w, M->ln_post_b, V.xn, T);
	memcpy(V.h, V.xn, TD * sizeof(float));
	if (stage)
		stage(arg, "vision_model.layernorm_post", V.h, TD);
	for (int t = 0; t < M->max_tiles; t++)
		for (int i = 0; i < M->n_padded; i++)
			for (int d = 0; d < D; d++)
				V.h[((size_t)t * M->n_padded + i) * D + d] += M->post_gate * post[t * D + d];
	if (stage)
		stage(arg, "vision_model.post_tile_positional_embedding", V.h, TD);
	for (int l = 0; l < M->n_global; l++) {
		vlayer_run(&V, &M->global[l]);
		snprintf(name, sizeof(name), "vision_model.global_transformer.layers.%d", l);
		if (stage)
			stage(arg, name, V.h, TD);
	}
	/* [global | intermediate, interleaved: column D + d * K + k] without the padding */
	out = X;
	for (int t = 0; t < M->max_tiles; t++)
		for (int i = 0; i < M->n_tok; i++) {
			size_t src = ((size_t)t * M->n_padded + i) * D;
			float *o = out + ((size_t)t * M->n_tok + i) * OD;
			memcpy(o, V.h + src, (size_t)D * sizeof(float));
			for (int d = 0; d < D; d++)
				for (int k = 0; k < K; k++)
					o[D + d * K + k] = inter[k][src + d];
		}
	int rows = M->max_tiles * M->n_tok;
	if (stage)
		stage(arg, "vision_model", out, (size_t)rows * OD);
	matmul(pool, &M->proj, out, rows, im->x, V.mm);
	for (int r = 0; r < rows; r++)
		for (int j = 0; j < E; j++)
			im->x[(size_t)r * E + j] += M->proj_b[j];
	if (stage)
		stage(arg, "multi_modal_projector", im->x, (size_t)rows * E);
	im->num_tiles = nt;
	im->max_tiles = M->max_tiles;
	im->n_tok = M->n_tok;
	im->n_embd = E;
	goto done;
fail:
	mllama_image_free(im);
	im = NULL;
done:
	venc_free(&V);
	for (int k = 0; inter != NULL && k < K; k++)
		free(inter[k]);
	free(inter); free(X); free(tile_pos); free(pre); free(post);
	return im;
}

void
mllama_image_free(struct mllama_image *im)
{
	if (im == NULL)
		return;
	free(im->x);
	free(im);
}
