/* gen.c - several answers generated together on one context: each step packs one batch
 * (prefill chunks of new prompts, one token for each decoding answer), runs one forward pass
 * and samples every sequence that produced logits. Text release and stop strings are in
 * stop.c. */
#include "generator/gen.h"

#include <stdlib.h>
#include <string.h>

#include "core/ctx.h"
#include "core/mllama.h"
#include "core/mllama_image.h"
#include "core/model.h"
#include "core/tok.h"
#include "generator/stop.h"
#include "util/buf.h"

enum slot_state { SLOT_FREE, SLOT_PREFILL, SLOT_DECODE, SLOT_DONE };

struct slot {
	enum slot_state state;
	enum gen_finish fin;
	int32_t *prompt;
	int n_prompt, fed;		/* prompt tokens, and those already in the cache */
	struct tokvec ids;		/* generated, end token excluded */
	struct sampler *smp;
	struct stop *stop;
	int32_t *end;
	int n_end, max_tokens;
	uint64_t order;			/* start order: older prompts prefill first */
	size_t dec_len;			/* SentencePiece: bytes of the answer already fed */
};

struct generator {
	const struct model *m;
	const struct tok *t;
	struct ctx *c;
	struct generator_params p;
	int n_vocab, n_batch;
	struct slot *s;
	int32_t *btok, *bseq;
	uint8_t *bwant;
	int *row;			/* slot of each logit row */
	int *chunk;			/* prompt tokens of each slot in this step's batch */
	uint64_t next_order;
	struct buf piece;		/* decode scratch */
	int (*cancel)(void *);
	void *cancel_arg;
	int cancelled;
};

static int
on_cancel(void *arg)
{
	struct generator *g = arg;

	if (g->cancel != NULL && g->cancel(g->cancel_arg)) {
		g->cancelled = 1;
		return 1;
	}
	return 0;
}

struct generator *
generator_new(const struct model *m, const struct generator_params *p, struct err *e)
{
	struct generator *g = calloc(1, sizeof(*g));
	struct ctx_params cp = ctx_params_default();

	if (g == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	g->m = m;
	g->p = *p;
	if (g->p.n_ctx == 0)
		g->p.n_ctx = 4096;
	if (g->p.n_seq == 0)
		g->p.n_seq = 4;
	if (g->p.prefill_chunk == 0)
		g->p.prefill_chunk = 256;
	if (g->p.n_seq < 0 || g->p.n_seq > 256 || g->p.prefill_chunk < 0 ||
	    g->p.prefill_chunk > 65536) {
		err_set(e, "generator: n_seq %d (1..256), prefill_chunk %d (1..65536): out of range",
		    g->p.n_seq, g->p.prefill_chunk);
		goto fail;
	}
	if ((g->t = model_tok(m)) == NULL) {
		err_set(e, "%s: the model has no tokenizer", model_path(m));
		goto fail;
	}
	/* decoding answers take one token each, the oldest new prompt a whole chunk */
	g->n_batch = g->p.prefill_chunk + g->p.n_seq;
	cp.n_ctx = g->p.n_ctx;
	cp.n_seq = g->p.n_seq;
	cp.n_batch = g->n_batch;
	cp.n_outputs = g->p.n_seq;
	cp.n_threads = g->p.n_threads;
	cp.pool = g->p.pool;
	if ((g->c = ctx_new(m, &cp, e)) == NULL)
		goto fail;
	g->n_vocab = ctx_n_vocab(g->c);
	g->s = calloc((size_t)g->p.n_seq, sizeof(*g->s));
	g->btok = calloc((size_t)g->n_batch, sizeof(*g->btok));
	g->bseq = calloc((size_t)g->n_batch, sizeof(*g->bseq));
	g->bwant = calloc((size_t)g->n_batch, 1);
	g->row = calloc((size_t)g->p.n_seq, sizeof(*g->row));
	g->chunk = calloc((size_t)g->p.n_seq, sizeof(*g->chunk));
	if (g->s == NULL || g->btok == NULL || g->bseq == NULL || g->bwant == NULL ||
	    g->row == NULL || g->chunk == NULL) {
		err_set(e, "out of memory");
		goto fail;
	}
	ctx_set_cancel(g->c, on_cancel, g);
	return g;
fail:
	generator_free(g);
	return NULL;
}

static void
slot_release(struct slot *s)
{
	free(s->prompt);
	tokvec_free(&s->ids);
	sampler_free(s->smp);
	stop_free(s->stop);
	free(s->end);
	memset(s, 0, sizeof(*s));
}

void
generator_free(struct generator *g)
{
	if (g == NULL)
		return;
	for (int i = 0; g->s != NULL && i < g->p.n_seq; i++)
		slot_release(&g->s[i]);
	free(g->s);
	free(g->btok);
	free(g->bseq);
	free(g->bwant);
	free(g->row);
	free(g->chunk);
	buf_free(&g->piece);
	ctx_free(g->c);
	free(g);
}

int generator_n_seq(const struct generator *g) { return g->p.n_seq; }
int generator_n_ctx(const struct generator *g) { return g->p.n_ctx; }

/* The prompt's ids are in the vocabulary, or <|image|> with an image for each. */
static int
check_prompt(const struct generator *g, const int32_t *prompt, size_t n, size_t n_img,
    struct err *e)
{
	int img = model_image_token(g->m);
	size_t n_tok = 0;

	if (n_img > 0 && img < 0)
		return err_set(e, "%s: a text-only model takes no image (%zu given)",
		    model_path(g->m), n_img);
	for (size_t i = 0; i < n; i++) {
		if (img >= 0 && prompt[i] == img) {
			n_tok++;
			continue;
		}
		if (prompt[i] < 0 || prompt[i] >= g->n_vocab)
			return err_set(e, "prompt token %zu: id %d is outside the vocabulary (0..%d)", i,
			    prompt[i], g->n_vocab - 1);
	}
	if (n_tok != n_img)
		return err_set(e, "%zu image(s) for %zu <|image|> token(s) in the prompt", n_img,
		    n_tok);
	return 0;
}

int
generator_start(struct generator *g, const int32_t *prompt, size_t n, const struct gen_params *p,
    struct err *e)
{
	return generator_start_images(g, prompt, n, NULL, 0, p, e);
}

int
generator_start_images(struct generator *g, const int32_t *prompt, size_t n,
    const struct gen_image *img, size_t n_img, const struct gen_params *p, struct err *e)
{
	struct slot *s = NULL;
	struct err ie;
	int slot = -1;

	for (int i = 0; i < g->p.n_seq && slot < 0; i++)
		if (g->s[i].state == SLOT_FREE)
			slot = i;
	if (slot < 0)
		return err_set(e, "all %d sequences are busy", g->p.n_seq);
	if (n == 0)
		return err_set(e, "the prompt is empty");
	if (n >= (size_t)g->p.n_ctx)
		return err_set(e, "the prompt is %zu tokens; the context holds %d", n, g->p.n_ctx);
	if (check_prompt(g, prompt, n, n_img, e) == -1)
		return -1;
	if (p->n_end < 0 || p->n_end > 1024 || (p->n_end > 0 && p->end == NULL))
		return err_set(e, "%d end tokens (0..1024)", p->n_end);
	s = &g->s[slot];
	if ((s->stop = stop_new(p->stop, p->n_stop, e)) == NULL)
		goto fail;
	s->prompt = malloc(n * sizeof(*s->prompt));
	s->end = malloc(((size_t)p->n_end + 1) * sizeof(*s->end));
	s->smp = sampler_new(&p->sp, g->n_vocab);
	if (s->prompt == NULL || s->end == NULL || s->smp == NULL) {
		err_set(e, "out of memory");
		goto fail;
	}
	/* the previous sequence's keys, values and images go; this one's images come before
	 * any of its tokens is decoded */
	ctx_seq_clear(g->c, slot);
	for (size_t k = 0; k < n_img; k++)
		if (mllama_attach_bytes(g->c, slot, img[k].data, img[k].len, &ie) == -1) {
			err_set(e, "image %zu: %s", k + 1, ie.msg);
			ctx_seq_clear(g->c, slot);
			goto fail;
		}
	memcpy(s->prompt, prompt, n * sizeof(*s->prompt));
	if (p->n_end > 0)
		memcpy(s->end, p->end, (size_t)p->n_end * sizeof(*s->end));
	s->n_end = p->n_end;
	s->n_prompt = (int)n;
	s->max_tokens = p->max_tokens;
	s->order = g->next_order++;
	s->fin = GEN_RUNNING;
	s->state = SLOT_PREFILL;
	return slot;
fail:
	slot_release(s);
	return -1;
}

static int
is_running(const struct slot *s)
{
	return s->state == SLOT_PREFILL || s->state == SLOT_DECODE;
}

/* Ends the answer: the text's held-back tail is released (or a stop string found in it). */
static void
finish(struct slot *s, enum gen_finish f)
{
	int r = stop_flush(s->stop);

	if (r == -1)
		f = GEN_ERROR;
	else if (r == 1 && f == GEN_LENGTH)
		f = GEN_STOP;
	s->fin = f;
	s->state = SLOT_DONE;
}

/* Feeds the new token's bytes to the text. Byte-level BPE pieces concatenate; SentencePiece
 * drops the space of the answer's first piece only, so there the whole answer is decoded
 * and the bytes past what was already fed are new (a prefix never changes). */
static int
feed_text(struct generator *g, struct slot *s, int32_t id)
{
	struct err e;
	size_t from = 0;

	g->piece.n = 0;
	if (tok_kind(g->t) == TOK_SPM) {
		if (tok_decode(g->t, s->ids.v, s->ids.n, &g->piece, &e) == -1)
			return -1;
		from = s->dec_len < g->piece.n ? s->dec_len : g->piece.n;
		s->dec_len = g->piece.n;
	} else if (tok_decode(g->t, &id, 1, &g->piece, &e) == -1)
		return -1;
	return stop_feed(s->stop, g->piece.p + from, g->piece.n - from);
}

static void
accept(struct generator *g, struct slot *s, int32_t id)
{
	int r;

	for (int i = 0; i < s->n_end; i++)
		if (s->end[i] == id) {
			finish(s, GEN_STOP);
			return;
		}
	if (tokvec_push(&s->ids, id) == -1 || (r = feed_text(g, s, id)) == -1) {
		finish(s, GEN_ERROR);
		return;
	}
	if (r == 1)
		finish(s, GEN_STOP);
	else if (s->max_tokens > 0 && s->ids.n >= (size_t)s->max_tokens)
		finish(s, GEN_LENGTH);
	else if ((size_t)s->n_prompt + s->ids.n >= (size_t)g->p.n_ctx)
		finish(s, GEN_LENGTH);	/* prompt + answer fill the context */
	else
		s->state = SLOT_DECODE;
}

/* Packs the step's batch: every decoding answer's last token first (they never wait), then
 * prompt chunks, oldest first, while the batch has room. Returns the token count. */
static int
pack(struct generator *g, int *n_rows)
{
	int n = 0;

	*n_rows = 0;
	memset(g->chunk, 0, (size_t)g->p.n_seq * sizeof(*g->chunk));
	for (int i = 0; i < g->p.n_seq; i++) {
		struct slot *s = &g->s[i];
		if (s->state != SLOT_DECODE)
			continue;
		g->btok[n] = s->ids.v[s->ids.n - 1];
		g->bseq[n] = i;
		g->bwant[n++] = 1;
		g->row[(*n_rows)++] = i;
	}
	for (;;) {
		int pick = -1;
		for (int i = 0; i < g->p.n_seq; i++) {
			struct slot *s = &g->s[i];
			if (s->state == SLOT_PREFILL && g->chunk[i] == 0 && (pick < 0 ||
			    s->order < g->s[pick].order))
				pick = i;
		}
		if (pick < 0 || n == g->n_batch)
			break;
		struct slot *s = &g->s[pick];
		int k = s->n_prompt - s->fed;
		if (k > g->p.prefill_chunk)
			k = g->p.prefill_chunk;
		if (k > g->n_batch - n)
			k = g->n_batch - n;
		memcpy(g->btok + n, s->prompt + s->fed, (size_t)k * sizeof(*g->btok));
		for (int j = 0; j < k; j++) {
			g->bseq[n + j] = pick;
			g->bwant[n + j] = 0;
		}
		n += k;
		g->chunk[pick] = k;
		if (s->fed + k == s->n_prompt) {
			g->bwant[n - 1] = 1;
			g->row[(*n_rows)++] = pick;
		}
	}
	return n;
}

int
generator_step(struct generator *g, struct err *e)
{
	int n_rows, running = 0;
	int n = pack(g, &n_rows);
	if (n == 0)
		return 0;
	struct batch b = { n, g->btok, g->bseq, g->bwant };
	g->cancelled = 0;
	if (ctx_decode(g->c, &b, e) == -1) {
		if (g->cancelled)
			return -1;	/* nothing changed: the caller may step again */
		for (int i = 0; i < g->p.n_seq; i++)
			if (is_running(&g->s[i]))
				finish(&g->s[i], GEN_ERROR);
		return -1;
	}
	for (int i = 0; i < g->p.n_seq; i++)
		g->s[i].fed += g->chunk[i];
	for (int r = 0; r < n_rows; r++) {
		struct slot *s = &g->s[g->row[r]];
		const float *l = ctx_logits(g->c, r);
		accept(g, s, sampler_sample_hist(s->smp, l, s->ids.v, s->ids.n));
	}
	for (int i = 0; i < g->p.n_seq; i++)
		running += is_running(&g->s[i]);
	return running;
}

static const struct slot *
slot_at(const struct generator *g, int slot)
{
	if (slot < 0 || slot >= g->p.n_seq || g->s[slot].state == SLOT_FREE)
		return NULL;
	return &g->s[slot];
}

const char *
generator_text(const struct generator *g, int slot, size_t *len)
{
	const struct slot *s = slot_at(g, slot);

	*len = 0;
	return s != NULL ? stop_text(s->stop, len) : "";
}

enum gen_finish
generator_finish(const struct generator *g, int slot)
{
	const struct slot *s = slot_at(g, slot);

	return s != NULL ? s->fin : GEN_ERROR;
}

int
generator_n_generated(const struct generator *g, int slot)
{
	const struct slot *s = slot_at(g, slot);

	return s != NULL ? (int)s->ids.n : 0;
}

int
generator_n_prompt(const struct generator *g, int slot)
{
	const struct slot *s = slot_at(g, slot);

	return s != NULL ? s->n_prompt : 0;
}

const int32_t *
generator_ids(const struct generator *g, int slot, size_t *n)
{
	const struct slot *s = slot_at(g, slot);

	*n = s != NULL ? s->ids.n : 0;
	return s != NULL ? s->ids.v : NULL;
}

void
generator_end(struct generator *g, int slot)
{
	if (slot >= 0 && slot < g->p.n_seq)
		slot_release(&g->s[slot]);
}

int
generator_running(const struct generator *g)
{
	int n = 0;

	for (int i = 0; i < g->p.n_seq; i++)
		n += is_running(&g->s[i]);
	return n;
}

void
generator_set_cancel(struct generator *g, int (*cb)(void *), void *arg)
{
	g->cancel = cb;
	g->cancel_arg = arg;
}

const char *
gen_finish_name(enum gen_finish f)
{
	switch (f) {
	case GEN_RUNNING: return "running";
	case GEN_STOP: return "stop";
	case GEN_LENGTH: return "length";
	case GEN_ERROR: return "error";
	}
	return "?";
}
