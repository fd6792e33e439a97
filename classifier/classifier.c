/* classifier.c - the classification pipeline for a batch:
 *   1. prompt bodies; each conversation's sequence starts as a restored snapshot of its
 *      role's prefix (per policy slot)
 *   2. one prefill of every body plus the "\n\n" the model writes first
 *   3. unsafe_score = P("unsafe") at the next position, over the full vocabulary
 *   4. greedy decoding of the answer (bounded, stops at <|eot_id|>, or after "safe")
 *   5. when unsafe_score reaches a category threshold but the answer gave no category line,
 *      "unsafe\nS" is fed and the category line decoded from there
 *   category_scores: the distribution after "unsafe\nS" over each code's number token. */
#include "classifier/classifier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classifier/conv.h"
#include "util/buf.h"
#include "core/ctx.h"
#include "core/model.h"
#include "core/tok.h"
#include "classifier/prompt.h"

#define MAX_ANSWER 24		/* tokens of the model's answer */

/* the answer's tokens, looked up by text in the model's vocabulary (Llama 3: 271, 19193,
 * 39257, 198, 50) */
enum { T_NN, T_SAFE, T_UNSAFE, T_NL, T_S, T_N };
static const char *const T_TEXT[T_N] = { "\n\n", "safe", "unsafe", "\n", "S" };
static const char *const T_SHOW[T_N] = { "\\n\\n", "safe", "unsafe", "\\n", "S" };

/* a policy and its prefix caches */
struct slot {
	const struct policy *pol;
	struct tokvec prefix[2];		/* per role */
	struct kv_snapshot *snap[2];		/* NULL without the prefix cache */
	int32_t *num_tok;			/* per policy category: the token of its number */
};

struct classifier {
	const struct model *m;
	const struct tok *tok;
	struct classifier_params p;
	struct ctx *work;	/* one sequence per conversation of a batch */
	struct slot *slots;
	int n_slots;
	int32_t eot;
	int32_t t[T_N];		/* ids of T_TEXT */
	int32_t forced[3];	/* "unsafe\nS" */
	/* the slot of the batch being run */
	const struct policy *pol;
	const int32_t *num_tok;
	/* batch scratch */
	struct tokvec *body;
	int32_t *btok, *bseq;
	uint8_t *bwant;
	int (*cancel)(void *);
	void *cancel_arg;
};

struct classifier_params
classifier_params_default(void)
{
	return (struct classifier_params){ .n_threads = 0, .max_batch = 4, .n_ctx = 2048,
		.prefix_cache = 1 };
}

static double
now_ms(void)
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
	if (c->p.max_batch > 64)
		c->p.max_batch = 64;
	if ((c->tok = model_tok(m)) == NULL || tok_kind(c->tok) != TOK_BPE) {
		err_set(e, "%s: Llama Guard 3 needs the Llama 3 tokenizer", model_path(m));
		goto fail;
	}
	if (find_tokens(c, e) == -1)
		goto fail;
	cp.n_threads = c->p.n_threads;
	cp.n_ctx = c->p.n_ctx;
	cp.n_seq = c->p.max_batch;
	cp.n_outputs = c->p.max_batch;
	if ((c->work = ctx_new(m, &cp, e)) == NULL)
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
classifier_set_cancel(struct classifier *c, int (*cb)(void *), void *arg)
{
	c->cancel = cb;
	c->cancel_arg = arg;
	ctx_set_cancel(c->work, cb, arg);
}

/* per-conversation state of a batch */
struct item {
	int active;		/* still decoding */
	int seq;
	struct tokvec ans;	/* answer tokens after "\n\n" */
	int cats_at;		/* answer already went through "unsafe\nS" */
	int base_len;		/* sequence length after "\n\n" */
	int32_t next;
};

/* Feeds one token to every active item, or each item's pending run. */
static int
step(struct classifier *c, struct item *it, size_t n, const int32_t *const *toks,
    const int *counts, struct err *e)
{
	int k = 0, nb = ctx_params(c->work)->n_batch;

	for (size_t i = 0; i < n; i++) {
		if (!it[i].active)
			continue;
		if (k + counts[i] > nb)
			return err_set(e, "batch overflow");
		for (int j = 0; j < counts[i]; j++) {
			c->btok[k] = toks[i][j];
			c->bseq[k] = it[i].seq;
			c->bwant[k] = j == counts[i] - 1;
			k++;
		}
	}
	if (k == 0)
		return 0;
	struct batch b = { k, c->btok, c->bseq, c->bwant };
	return ctx_decode(c->work, &b, e);
}

/* row of logits for item i in the last step (active items in order) */
static const float *
logits_of(struct classifier *c, struct item *it, size_t i)
{
	int row = 0;

	for (size_t j = 0; j < i; j++)
		row += it[j].active;
	return ctx_logits(c->work, row);
}

static double
prob(const float *l, int n, int32_t id)
{
	double mx = l[0], s = 0;

	for (int i = 1; i < n; i++)
		mx = l[i] > mx ? l[i] : mx;
	for (int i = 0; i < n; i++)
		s += exp((double)l[i] - mx);
	return id >= 0 && id < n ? exp((double)l[id] - mx) / s : 0;
}

static int32_t
argmax(const float *l, int n)
{
	int32_t b = 0;

	for (int i = 1; i < n; i++)
		if (l[i] > l[b])
			b = i;
	return b;
}

static void
cat_scores(struct classifier *c, struct verdict *v, const float *l)
{
	int nv = tok_n_vocab(c->tok);

	if (v->cat_scores == NULL)
		return;
	for (size_t i = 0; i < policy_n_categories(c->pol); i++)
		v->cat_scores[i] = policy_category(c->pol, i)->exclude[v->role] || c->num_tok[i] < 0 ?
		    NAN : prob(l, nv, c->num_tok[i]);
	v->have_cat_scores = 1;
}

/* the answer as text, cleaned to valid UTF-8 for JSON */
static void
answer_text(struct classifier *c, const struct tokvec *ans, char *out, size_t cap)
{
	struct buf b = { 0 };
	struct err e;
	size_t o = 0;

	tok_decode(c->tok, ans->v, ans->n, &b, &e);
	for (size_t i = 0; i < b.n && o + 4 < cap;) {
		size_t ok = utf8_valid_prefix(b.p + i, b.n - i);
		if (ok == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);	/* U+FFFD */
			o += 3;
			i++;
			continue;
		}
		size_t k = ok < cap - o - 4 ? ok : cap - o - 4;
		while (k > 0 && k < ok && (b.p[i + k] & 0xc0) == 0x80)
			k--;	/* never cut a character */
		if (k == 0)
			break;
		memcpy(out + o, b.p + i, k);
		o += k;
		i += k;
	}
	out[o] = '\0';
	buf_free(&b);
}

/* greedy decoding of every active item until each stops */
static int
decode_answers(struct classifier *c, struct item *it, struct verdict *v, size_t n,
    struct err *e)
{
	int nv = tok_n_vocab(c->tok);
	const int32_t *one[64];
	int cnt[64];

	for (int s = 0; s < MAX_ANSWER; s++) {
		int any = 0;
		for (size_t i = 0; i < n; i++) {
			if (!it[i].active)
				continue;
			int32_t nx = it[i].next;
			if (nx == c->eot || it[i].ans.n >= MAX_ANSWER) {
				it[i].active = 0;
				continue;
			}
			tokvec_push(&it[i].ans, nx);
			/* a first token other than "unsafe" decides the answer's first line ("safe",
			 * or malformed): nothing after it changes the verdict, so it is not fed */
			if (it[i].ans.n == 1 && nx != c->t[T_UNSAFE] && !it[i].cats_at) {
				it[i].active = 0;
				continue;
			}
			one[i] = &it[i].ans.v[it[i].ans.n - 1];
			cnt[i] = 1;
			v[i].tokens_evaluated++;
			any = 1;
		}
		if (!any)
			return 0;
		if (step(c, it, n, one, cnt, e) == -1)
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (!it[i].active)
				continue;
			const float *l = logits_of(c, it, i);
			it[i].next = argmax(l, nv);
			const struct tokvec *a = &it[i].ans;
			if (a->n == 3 && a->v[0] == c->t[T_UNSAFE] && a->v[1] == c->t[T_NL] &&
			    a->v[2] == c->t[T_S]) {
				cat_scores(c, &v[i], l);
				it[i].cats_at = 1;
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		it[i].active = 0;
	return 0;
}

void
classifier_run(struct classifier *c, int slot, const struct conv *const *conv, size_t n,
    struct verdict *out)
{
	struct item it[64];
	const int32_t *runs[64];
	int cnt[64];
	struct err e;
	double t0 = now_ms();
	int nv = tok_n_vocab(c->tok);

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
	c->pol = sl->pol;
	c->num_tok = sl->num_tok;
	memset(it, 0, sizeof(it));
	for (size_t i = 0; i < n; i++) {
		struct verdict *v = &out[i];
		struct buf text = { 0 };
		memset(v, 0, sizeof(*v));
		v->unsafe_score = NAN;
		v->cat_scores = malloc((policy_n_categories(c->pol) + 1) * sizeof(double));
		for (size_t k = 0; v->cat_scores && k < policy_n_categories(c->pol); k++)
			v->cat_scores[k] = NAN;
		it[i].seq = (int)i;
		c->body[i].n = 0;
		v->n_spoof = prompt_spoof(conv[i], v->spoof_reasons, VERDICT_MAX_SPOOF);
		v->spoof = v->n_spoof > 0;
		if (prompt_body(conv[i], c->tok, &text, &c->body[i], &v->role, &e) == -1) {
			buf_free(&text);
			verdict_fail(v, c->pol, "%s", e.msg);
			continue;
		}
		buf_free(&text);
		tokvec_push(&c->body[i], c->t[T_NN]);	/* the model's first token, taken as given */
		const struct tokvec *pre = &sl->prefix[v->role];
		size_t total = pre->n + c->body[i].n + MAX_ANSWER + 4;
		if (total > (size_t)c->p.n_ctx) {
			verdict_fail(v, c->pol, "the conversation needs %zu tokens with the policy; "
			    "the context holds %d", total, c->p.n_ctx);
			continue;
		}
		ctx_seq_clear(c->work, it[i].seq);
		if (c->p.prefix_cache) {
			if (ctx_snapshot_restore(c->work, it[i].seq, sl->snap[v->role], &e) == -1) {
				verdict_fail(v, c->pol, "%s", e.msg);
				continue;
			}
			v->tokens_cached = (int)pre->n;
		} else {
			/* no cache: the prefix is evaluated with the conversation, in the same pass */
			struct tokvec all = { 0 };
			tokvec_append(&all, pre->v, pre->n);
			tokvec_append(&all, c->body[i].v, c->body[i].n);
			tokvec_free(&c->body[i]);
			c->body[i] = all;
		}
		it[i].active = 1;
		v->tokens_evaluated = (int)c->body[i].n;
		v->ms_prompt = now_ms() - t0;
	}
	/* prefill: whole bodies, packed into batches of at most n_batch tokens */
	double t1 = now_ms();
	int nb = ctx_params(c->work)->n_batch;
	size_t off[64] = { 0 };
	for (;;) {
		int k = 0, any = 0;
		for (size_t i = 0; i < n; i++) {
			if (!it[i].active || off[i] == c->body[i].n)
				continue;
			size_t take = c->body[i].n - off[i];
			if (take > (size_t)(nb - k))
				take = (size_t)(nb - k);
			if (take == 0)
				break;
			for (size_t j = 0; j < take; j++) {
				c->btok[k] = c->body[i].v[off[i] + j];
				c->bseq[k] = it[i].seq;
				c->bwant[k] = off[i] + j == c->body[i].n - 1;
				k++;
			}
			off[i] += take;
			any = 1;
		}
		if (!any)
			break;
		struct batch b = { k, c->btok, c->bseq, c->bwant };
		if (ctx_decode(c->work, &b, &e) == -1)
			goto batch_fail;
		/* rows with logits: items whose body ended in this batch, in batch order */
		int row = 0;
		for (int j = 0; j < k; j++) {
			if (!c->bwant[j])
				continue;
			size_t i = 0;
			while (it[i].seq != c->bseq[j])
				i++;
			const float *l = ctx_logits(c->work, row++);
			out[i].unsafe_score = prob(l, nv, c->t[T_UNSAFE]);
			it[i].next = argmax(l, nv);
			it[i].base_len = ctx_seq_len(c->work, it[i].seq);
		}
	}
	double t2 = now_ms();
	if (decode_answers(c, it, out, n, &e) == -1)
		goto batch_fail;
	/* forced category line where the score is high enough but the answer had none */
	const int32_t *forced = c->forced;
	int need = 0, forced_run[64] = { 0 };
	for (size_t i = 0; i < n; i++) {
		struct verdict *v = &out[i];
		char codes[VERDICT_MAX_CODES][8];
		int nc;
		if (v->decision == DECISION_ERROR || !isfinite(v->unsafe_score))
			continue;
		answer_text(c, &it[i].ans, v->raw, sizeof(v->raw));
		enum parse_result pr = verdict_parse(v->raw, codes, VERDICT_MAX_CODES, &nc);
		if (pr == PARSE_SAFE && !it[i].cats_at &&
		    v->unsafe_score >= policy_min_threshold(c->pol, v->role)) {
			ctx_seq_copy(c->work, it[i].seq, it[i].seq, it[i].base_len, &e);	/* truncate */
			it[i].ans.n = 0;
			it[i].active = 1;
			runs[i] = forced;
			cnt[i] = 3;
			need = forced_run[i] = 1;
		}
	}
	if (need) {
		if (step(c, it, n, runs, cnt, &e) == -1)
			goto batch_fail;
		for (size_t i = 0; i < n; i++) {
			if (!it[i].active)
				continue;
			const float *l = logits_of(c, it, i);
			cat_scores(c, &out[i], l);
			it[i].next = argmax(l, nv);
			tokvec_append(&it[i].ans, forced, 3);
			it[i].cats_at = 1;
			out[i].tokens_evaluated += 3;
		}
		if (decode_answers(c, it, out, n, &e) == -1)
			goto batch_fail;
	}
	double t3 = now_ms();
	for (size_t i = 0; i < n; i++) {
		struct verdict *v = &out[i];
		char codes[VERDICT_MAX_CODES][8], forced_text[256];
		int nc;
		enum parse_result pr;
		if (v->decision == DECISION_ERROR) {
			tokvec_free(&it[i].ans);
			continue;
		}
		if (forced_run[i]) {
			/* the categories come from the forced line; raw stays the model's answer */
			answer_text(c, &it[i].ans, forced_text, sizeof(forced_text));
			pr = verdict_parse(forced_text, codes, VERDICT_MAX_CODES, &nc);
			if (pr != PARSE_UNSAFE) {
				verdict_fail(v, c->pol, "unsafe_score %.3f reached a category threshold but "
				    "the category line did not parse", v->unsafe_score);
				tokvec_free(&it[i].ans);
				continue;
			}
		} else
			pr = verdict_parse(v->raw, codes, VERDICT_MAX_CODES, &nc);
		verdict_decide(v, c->pol, pr, codes, nc);
		v->ms_prefill = t2 - t1;
		v->ms_decode = t3 - t2;
		v->ms_total = now_ms() - t0;
		tokvec_free(&it[i].ans);
	}
	return;
batch_fail:
	for (size_t i = 0; i < n; i++) {
		tokvec_free(&it[i].ans);
		if (out[i].decision != DECISION_ERROR)
			verdict_fail(&out[i], c->pol, "%s", e.msg);
		out[i].ms_total = now_ms() - t0;
	}
}
