/* classifier.c - the classifier's lifetime, its policy slots (the policy prefix of each role
 * computed once and kept as a KV snapshot) and classifier_run: a batch of conversations,
 * each sequence starting as a restored snapshot of its role's prefix, then the answer read by
 * answer.c. */
#include "classifier/classifier_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classifier/conv.h"
#include "classifier/convcache.h"
#include "util/buf.h"
#include "core/ctx.h"
#include "core/mllama_image.h"
#include "core/model.h"
#include "core/tok.h"
#include "classifier/prompt.h"

static const char *const T_TEXT[T_N] = { "\n\n", "safe", "unsafe", "\n", "S" };
static const char *const T_SHOW[T_N] = { "\\n\\n", "safe", "unsafe", "\\n", "S" };

struct classifier_params
classifier_params_default(void)
{
	return (struct classifier_params){ .n_threads = 0, .max_batch = 4, .n_ctx = 2048,
		.prefix_cache = 1, .max_streams = 0, .pool = NULL, .conv_cache_bytes = 0 };
}

double
classifier_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void
slot_free(struct slot *s)
{
	for (int r = 0; r < 2; r++) {
		tokvec_free(&s->prefix[r]);
		kv_snapshot_free(s->snap[r]);
	}
	free(s->num_tok);
	memset(s, 0, sizeof(*s));
}

/* Builds a slot for p into *s without touching any other slot: the prefixes are evaluated in
 * sequence 0 of the work context (scratch between batches) and saved as snapshots. */
static int
slot_build(struct classifier *c, const struct policy *p, struct slot *s, struct err *e)
{
	memset(s, 0, sizeof(*s));
	if (p == NULL)
		return err_set(e, "no policy given");
	if ((s->num_tok = calloc(policy_n_categories(p) + 1, sizeof(int32_t))) == NULL)
		return err_set(e, "out of memory");
	for (int r = 0; r < 2; r++) {
		struct buf text = { 0 };
		int rc = prompt_prefix(p, (enum role)r, c->tok, &text, &s->prefix[r], e);
		buf_free(&text);
		if (rc == -1)
			goto fail;
		if ((int)s->prefix[r].n >= c->p.n_ctx) {
			err_set(e, "the policy prefix is %zu tokens; the context holds %d",
			    s->prefix[r].n, c->p.n_ctx);
			goto fail;
		}
	}
	for (size_t i = 0; i < policy_n_categories(p); i++) {
		struct tokvec v = { 0 };
		const char *digits = policy_category(p, i)->code + 1;
		if (tok_encode(c->tok, digits, strlen(digits), 0, &v, e) == -1)
			goto fail;
		s->num_tok[i] = v.n == 1 ? v.v[0] : -1;
		tokvec_free(&v);
	}
	if (c->p.prefix_cache) {
		/* not a request: a cancel callback set for batches does not apply */
		ctx_set_cancel(c->work, NULL, NULL);
		int rc = 0;
		for (int r = 0; r < 2 && rc == 0; r++) {
			ctx_seq_clear(c->work, 0);
			rc = ctx_eval(c->work, 0, s->prefix[r].v, (int)s->prefix[r].n, e);
			if (rc == 0 && (s->snap[r] = ctx_snapshot_save(c->work, 0,
			    (int)s->prefix[r].n, e)) == NULL)
				rc = -1;
		}
		ctx_seq_clear(c->work, 0);
		ctx_set_cancel(c->work, c->cancel, c->cancel_arg);
		if (rc == -1)
			goto fail;
	}
	s->pol = p;
	s->gen = ++c->next_gen;
	return 0;
fail:
	slot_free(s);
	return -1;
}

/* The answer tokens by text: each must be exactly one token, or this is not a Llama Guard
 * vocabulary and the scores would be read off the wrong tokens. */
static int
find_tokens(struct classifier *c, struct err *e)
{
	if ((c->eot = tok_special(c->tok, "<|eot_id|>")) < 0)
		return err_set(e, "%s: the vocabulary has no <|eot_id|> token: not a Llama Guard 3 "
		    "model", model_path(c->m));
	for (int i = 0; i < T_N; i++) {
		struct tokvec v = { 0 };
		struct err e2;
		int rc = tok_encode(c->tok, T_TEXT[i], strlen(T_TEXT[i]), 0, &v, &e2);
		size_t n = v.n;
		c->t[i] = n == 1 ? v.v[0] : -1;
		tokvec_free(&v);
		if (rc == -1 || n != 1)
			return err_set(e, "%s: the vocabulary has no single token for \"%s\" (it encodes "
			    "to %zu tokens): not a Llama Guard 3 model", model_path(c->m), T_SHOW[i],
			    rc == -1 ? (size_t)0 : n);
	}
	c->forced[0] = c->t[T_UNSAFE];
	c->forced[1] = c->t[T_NL];
	c->forced[2] = c->t[T_S];
	return 0;
}

struct classifier *
classifier_new(const struct model *m, const struct classifier_params *params, struct err *e)
{
	struct classifier *c = calloc(1, sizeof(*c));
	struct ctx_params cp = ctx_params_default();

	if (c == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	c->m = m;
	c->p = *params;
	if (c->p.max_batch < 1)
		c->p.max_batch = 1;
	if (c->p.max_batch > MAX_ITEMS)
		c->p.max_batch = MAX_ITEMS;
	if (c->p.max_streams < 0)
		c->p.max_streams = 0;
	if (c->p.max_streams > MAX_ITEMS)
		c->p.max_streams = MAX_ITEMS;
	if ((c->tok = model_tok(m)) == NULL || tok_kind(c->tok) != TOK_BPE) {
		err_set(e, "%s: Llama Guard 3 needs the Llama 3 tokenizer", model_path(m));
		goto fail;
	}
	if (find_tokens(c, e) == -1)
		goto fail;
	cp.n_threads = c->p.n_threads;
	cp.n_ctx = c->p.n_ctx;
	cp.pool = c->p.pool;
	cp.n_seq = c->p.max_batch + c->p.max_streams;
	cp.n_outputs = c->p.max_batch > c->p.max_streams ? c->p.max_batch : c->p.max_streams;
	if ((c->work = ctx_new(m, &cp, e)) == NULL)
		goto fail;
	if (classifier_streams_init(c, e) == -1 || classifier_closing_init(c, e) == -1)
		goto fail;
	/* conversations are kept after their policy prefix, which the prefix cache restores */
	if (c->p.conv_cache_bytes > 0 && c->p.prefix_cache &&
	    (c->cc = convcache_new(c->p.conv_cache_bytes, e)) == NULL)
		goto fail;
	c->body = calloc((size_t)c->p.max_batch, sizeof(*c->body));
	c->btok = malloc((size_t)ctx_params(c->work)->n_batch * sizeof(int32_t));
	c->bseq = malloc((size_t)ctx_params(c->work)->n_batch * sizeof(int32_t));
	c->bwant = malloc((size_t)ctx_params(c->work)->n_batch);
	if (c->body == NULL || c->btok == NULL || c->bseq == NULL || c->bwant == NULL) {
		err_set(e, "out of memory");
		goto fail;
	}
	return c;
fail:
	classifier_free(c);
	return NULL;
}

void
classifier_free(struct classifier *c)
{
	if (c == NULL)
		return;
	classifier_streams_free(c);
	convcache_free(c->cc);
	mllama_cache_free(c->imc);
	for (int r = 0; r < 2; r++)
		tokvec_free(&c->cc_close[r]);
	ctx_free(c->work);
	for (int i = 0; i < c->n_slots; i++)
		slot_free(&c->slots[i]);
	free(c->slots);
	for (int i = 0; c->body && i < c->p.max_batch; i++)
		tokvec_free(&c->body[i]);
	free(c->body);
	free(c->btok);
	free(c->bseq);
	free(c->bwant);
	free(c);
}

int
classifier_add_policy(struct classifier *c, const struct policy *p, struct err *e)
{
	struct slot s;

	if (c->n_slots >= 1024)
		return err_set(e, "too many policies (at most 1024)");
	struct slot *ns = realloc(c->slots, (size_t)(c->n_slots + 1) * sizeof(*ns));
	if (ns == NULL)
		return err_set(e, "out of memory");
	c->slots = ns;
	if (slot_build(c, p, &s, e) == -1)
		return -1;
	c->slots[c->n_slots] = s;
	return c->n_slots++;
}

int
classifier_set_policy(struct classifier *c, int slot, const struct policy *p, struct err *e)
{
	struct slot s;

	if (slot < 0 || slot >= c->n_slots)
		return err_set(e, "no policy slot %d (%d in use)", slot, c->n_slots);
	/* the new slot is complete before the old one is released */
	if (slot_build(c, p, &s, e) == -1)
		return -1;
	/* the conversations cached under the old build are of another prompt now */
	convcache_drop_gen(c->cc, c->slots[slot].gen);
	slot_free(&c->slots[slot]);
	c->slots[slot] = s;
	return 0;
}

const struct policy *
classifier_policy(const struct classifier *c, int slot)
{
	return slot >= 0 && slot < c->n_slots ? c->slots[slot].pol : NULL;
}

int classifier_n_policies(const struct classifier *c) { return c->n_slots; }
int classifier_max_batch(const struct classifier *c) { return c->p.max_batch; }

void
classifier_cache_stats(const struct classifier *c, struct convcache_stats *out)
{
	convcache_stats(c->cc, out);
}

void
classifier_set_cancel(struct classifier *c, int (*cb)(void *), void *arg)
{
	c->cancel = cb;
	c->cancel_arg = arg;
	ctx_set_cancel(c->work, cb, arg);
}

void
classifier_run(struct classifier *c, int slot, const struct conv *const *conv, size_t n,
    struct verdict *out)
{
	struct item it[MAX_ITEMS];
	int image[MAX_ITEMS] = { 0 };
	struct err e;
	double t0 = classifier_now_ms();

	if (n > (size_t)c->p.max_batch)
		n = (size_t)c->p.max_batch;
	if (slot < 0 || slot >= c->n_slots) {
		/* no policy to apply: fail closed under the default policy's on_error */
		struct policy *d = policy_default();
		for (size_t i = 0; i < n; i++) {
			memset(&out[i], 0, sizeof(out[i]));
			out[i].unsafe_score = NAN;
			if (d != NULL)
				verdict_fail(&out[i], d, "no policy slot %d (%d loaded)", slot, c->n_slots);
			else {
				snprintf(out[i].error, sizeof(out[i].error), "no policy slot %d", slot);
				out[i].decision = DECISION_ERROR;
				out[i].flagged = 1;
			}
		}
		policy_free(d);
		return;
	}
	const struct slot *sl = &c->slots[slot];
	memset(it, 0, sizeof(it));
	for (size_t i = 0; i < n; i++) {
		struct verdict *v = &out[i];
		classifier_verdict_init(v, sl->pol, conv[i]);
		it[i].seq = (int)i;
		it[i].pol = sl->pol;
		it[i].num_tok = sl->num_tok;
		if (classifier_body(c, conv[i], &c->body[i], &v->role, &e) == -1) {
			verdict_fail(v, sl->pol, "%s", e.msg);
			continue;
		}
		if (conv_n_images(conv[i]) > 0) {	/* whole, uncached: vision.c */
			if (classifier_image_prompt(c, sl->pol, v->role, it[i].seq, conv[i],
			    &c->body[i], &e) == -1) {
				verdict_fail(v, sl->pol, "%s", e.msg);
				continue;
			}
			it[i].feed = c->body[i].v;
			it[i].n_feed = c->body[i].n;
			it[i].active = 1;
			image[i] = 1;
			v->tokens_evaluated = (int)it[i].n_feed;
			v->ms_prompt = classifier_now_ms() - t0;
			continue;
		}
		const struct tokvec *pre = &sl->prefix[v->role];
		size_t total = pre->n + c->body[i].n + MAX_ANSWER + 4;
		if (total > (size_t)c->p.n_ctx) {
			verdict_fail(v, sl->pol, "the conversation needs %zu tokens with the policy; "
			    "the context holds %d", total, c->p.n_ctx);
			continue;
		}
		/* the whole prompt; a cached conversation sharing its start, else the policy
		 * prefix's snapshot, spares evaluating what it holds */
		struct tokvec all = { 0 };
		if (tokvec_append(&all, pre->v, pre->n) == -1 ||
		    tokvec_append(&all, c->body[i].v, c->body[i].n) == -1) {
			tokvec_free(&all);
			verdict_fail(v, sl->pol, "out of memory");
			continue;
		}
		tokvec_free(&c->body[i]);
		c->body[i] = all;
		ctx_seq_clear(c->work, it[i].seq);
		int from = convcache_restore(c->cc, c->work, it[i].seq, sl->gen, v->role, all.v,
		    all.n, sl->snap[v->role], &e);
		if (from == -1) {
			verdict_fail(v, sl->pol, "%s", e.msg);
			continue;
		}
		if (from == 0 && c->p.prefix_cache) {
			if (ctx_snapshot_restore(c->work, it[i].seq, sl->snap[v->role], &e) == -1) {
				verdict_fail(v, sl->pol, "%s", e.msg);
				continue;
			}
			from = (int)pre->n;
		}
		/* without the prefix cache, the prefix is evaluated with the conversation */
		v->tokens_cached = from;
		it[i].feed = all.v + from;
		it[i].n_feed = all.n - (size_t)from;
		it[i].active = 1;
		v->tokens_evaluated = (int)it[i].n_feed;
		v->ms_prompt = classifier_now_ms() - t0;
	}
	int ran[MAX_ITEMS];
	for (size_t i = 0; i < n; i++)
		ran[i] = it[i].active && !image[i];	/* image prompts are not cached */
	classifier_answer(c, it, n, out, t0);
	/* keep the conversation parts just evaluated for the next turns: their positions are
	 * in place (the answer went after them), whatever the verdict. After a failure the
	 * sequence may hold less (a failed pass leaves it as it was): convcache_store then
	 * finds it too short and keeps nothing. */
	for (size_t i = 0; c->cc && i < n; i++) {
		if (!ran[i])
			continue;
		const struct tokvec *all = &c->body[i];
		size_t keep = classifier_conv_part(c, out[i].role, all->v, all->n);
		convcache_store(c->cc, c->work, it[i].seq, sl->gen, out[i].role, all->v, keep,
		    sl->prefix[out[i].role].n);
	}
}
