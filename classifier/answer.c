/* answer.c - the model's answer, read the same way for a batch (classifier_run) and for
 * the stream checks (stream.c):
 *   1. one prefill of every item's tokens, ending with the "\n\n" the model writes first
 *   2. unsafe_score = P("unsafe") at the next position, over the full vocabulary
 *   3. greedy decoding of the answer, one forward pass per token fed, feeding only what can
 *      change the verdict. The prefill's last row gives unsafe_score and the first answer
 *      token at once. A first token other than "unsafe" ("safe", or anything malformed)
 *      settles the first line and is not fed: a "safe" verdict costs no decode pass at all
 *      (the "<|eot_id|>" after "safe" is never computed). An "unsafe" answer feeds "unsafe",
 *      "\n", "S" and each token of the code line; a predicted <|eot_id|> ends it unfed, and
 *      MAX_ANSWER tokens bound it. The skipped passes change nothing: every score comes from
 *      rows computed before them. Where the answer's grammar allows one next token only,
 *      it is fed in the same pass as a draft and kept only if greedy decoding agrees
 *      (decode_answers), so "unsafe\nS" is one pass, with the same bits.
 *   4. when unsafe_score reaches a category threshold but the answer gave no category line,
 *      "unsafe\nS" is fed and the category line decoded from there
 *   5. the policy's decision
 *   category_scores: the distribution after "unsafe\nS" over each code's number token. */
#include "classifier/classifier_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/conv.h"
#include "classifier/prompt.h"
#include "core/ctx.h"
#include "core/mllama.h"
#include "core/tok.h"
#include "util/buf.h"

/* Feeds one token to every active item, or each item's pending run; logits for the last
 * token of each run, or (all) for every token of it. */
static int
step(struct classifier *c, struct item *it, size_t n, const int32_t *const *toks,
    const int *counts, int all, struct err *e)
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
			c->bwant[k] = all || j == counts[i] - 1;
			k++;
		}
	}
	if (k == 0)
		return 0;
	struct batch b = { k, c->btok, c->bseq, c->bwant };
	return ctx_decode(c->work, &b, e);
}

/* the width of a logits row: the tokenizer's vocabulary, but never past the model's
 * (Llama 3.2-Vision's tokenizer has <|image|> 128256, which the model never predicts: its
 * rows are 128256 wide, and reading one more would read the next row, or past the end) */
static int
n_logits(const struct classifier *c)
{
	int nt = tok_n_vocab(c->tok), nm = ctx_n_vocab(c->work);

	return nt < nm ? nt : nm;
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
cat_scores(struct classifier *c, const struct item *it, struct verdict *v, const float *l)
{
	int nv = n_logits(c);

	if (v->cat_scores == NULL)
		return;
	for (size_t i = 0; i < policy_n_categories(it->pol); i++)
		v->cat_scores[i] = policy_category(it->pol, i)->exclude[v->role] ||
		    it->num_tok[i] < 0 ? NAN : prob(l, nv, it->num_tok[i]);
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

/* Grammar drafts: exact speculative decoding. After "unsafe" Llama Guard's answer goes on
 * "\n", "S", a number, then "," "S" and a number per further category. Where this grammar
 * allows exactly one next token ("\n" and "S" after "unsafe", "S" after "unsafe\n" and after
 * ","), that token is fed in the same pass as the one before it, and every fed token gets
 * its full-vocabulary logits row. A draft is kept only if it is the argmax of the row before
 * it, i.e. the token greedy decoding feeds next; otherwise the sequence is truncated before
 * it and decoding goes on from that argmax. A row's logits do not depend on the batch around
 * it (the core's guarantee, checked by t_kv), so every kept token, argmax and score is bit
 * for bit what token-by-token decoding gives: only passes over the weights are saved
 * ("unsafe\nS" costs one pass instead of three). A draft is never <|eot_id|> and never a
 * number, whose row could not be read without the full vocabulary. Rejected drafts count in
 * tokens_evaluated. GUARD_DRAFT=0 turns drafts off; GUARD_DRAFT=2 is a test mode that pads
 * every run to MAX_DRAFT drafts with "S", most of them wrong, so that the rejection path runs
 * at every position (tests/run/58-draft.t: the verdicts of all three modes are identical). */
enum { MAX_DRAFT = 2 };

static int
drafts_mode(void)
{
	const char *s = getenv("GUARD_DRAFT");

	return s == NULL ? 1 : strcmp(s, "0") == 0 ? 0 : strcmp(s, "2") == 0 ? 2 : 1;
}

/* the single token "," in this vocabulary, or -1 */
static int32_t
comma_token(const struct classifier *c)
{
	struct tokvec v = { 0 };
	struct err e;
	int32_t id = tok_encode(c->tok, ",", 1, 0, &v, &e) == 0 && v.n == 1 ? v.v[0] : -1;

	tokvec_free(&v);
	return id;
}

/* the grammar's forced continuation of answer a: d[0..return) (mode 2: padded) */
static int
draft(const struct classifier *c, const struct tokvec *a, int32_t comma, int mode,
    int32_t d[MAX_DRAFT])
{
	int32_t last = a->v[a->n - 1];
	int nd = 0;

	if (a->v[0] == c->t[T_UNSAFE] && a->n == 1) {
		d[nd++] = c->t[T_NL];
		d[nd++] = c->t[T_S];
	} else if (a->v[0] == c->t[T_UNSAFE] && ((a->n == 2 && last == c->t[T_NL]) ||
	    (a->n >= 4 && comma >= 0 && last == comma)))
		d[nd++] = c->t[T_S];
	while (mode == 2 && nd < MAX_DRAFT)
		d[nd++] = c->t[T_S];
	return nd;
}

/* greedy decoding of every active item until each stops, with grammar drafts */
static int
decode_answers(struct classifier *c, struct item *it, struct verdict *v, size_t n,
    struct err *e)
{
	int nv = n_logits(c), budget = ctx_params(c->work)->n_outputs, on = drafts_mode();
	int32_t run[MAX_ITEMS][1 + MAX_DRAFT], comma = on ? comma_token(c) : -1;
	const int32_t *runs[MAX_ITEMS];
	int cnt[MAX_ITEMS];

	for (int s = 0; s < MAX_ANSWER; s++) {
		int any = 0, rows = 0;
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
			run[i][0] = nx;
			runs[i] = run[i];
			cnt[i] = 1;
			rows++;
			v[i].tokens_evaluated++;
			any = 1;
		}
		if (!any)
			return 0;
		/* drafts, within MAX_ANSWER, the context (a rejected draft must not make a pass fail
		 * that token by token would not) and the logit rows one pass returns */
		for (size_t i = 0; on && i < n; i++) {
			int32_t d[MAX_DRAFT];
			if (!it[i].active)
				continue;
			int nd = draft(c, &it[i].ans, comma, on, d);
			int room = ctx_params(c->work)->n_ctx - ctx_seq_len(c->work, it[i].seq) - 1;
			if (nd > MAX_ANSWER - (int)it[i].ans.n)
				nd = MAX_ANSWER - (int)it[i].ans.n;
			if (nd > room)
				nd = room;
			if (nd > budget - rows)
				nd = budget - rows;
			for (int j = 0; j < nd; j++)
				run[i][1 + j] = d[j];
			cnt[i] += nd > 0 ? nd : 0;
			rows += nd > 0 ? nd : 0;
			v[i].tokens_evaluated += nd > 0 ? nd : 0;
		}
		if (step(c, it, n, runs, cnt, 1, e) == -1)
			return -1;
		int row = 0;
		for (size_t i = 0; i < n; i++) {
			if (!it[i].active)
				continue;
			for (int j = 0; j < cnt[i]; j++) {
				const float *l = ctx_logits(c->work, row + j);
				const struct tokvec *a = &it[i].ans;
				if (a->n == 3 && a->v[0] == c->t[T_UNSAFE] && a->v[1] == c->t[T_NL] &&
				    a->v[2] == c->t[T_S]) {
					cat_scores(c, &it[i], &v[i], l);
					it[i].cats_at = 1;
				}
				it[i].next = argmax(l, nv);
				if (j + 1 == cnt[i])
					break;
				if (it[i].next != run[i][j + 1]) {
					/* not greedy's token: drop the draft and what follows it */
					int drop = cnt[i] - 1 - j;
					if (ctx_seq_truncate(c->work, it[i].seq,
					    ctx_seq_len(c->work, it[i].seq) - drop, e) == -1)
						return -1;
					break;
				}
				tokvec_push(&it[i].ans, run[i][j + 1]);
			}
			row += cnt[i];
		}
	}
	for (size_t i = 0; i < n; i++)
		it[i].active = 0;
	return 0;
}

void
classifier_verdict_init(struct verdict *v, const struct policy *pol, const struct conv *conv)
{
	memset(v, 0, sizeof(*v));
	v->unsafe_score = NAN;
	v->cat_scores = malloc((policy_n_categories(pol) + 1) * sizeof(double));
	for (size_t k = 0; v->cat_scores && k < policy_n_categories(pol); k++)
		v->cat_scores[k] = NAN;
	v->n_spoof = prompt_spoof(conv, v->spoof_reasons, VERDICT_MAX_SPOOF);
	v->spoof = v->n_spoof > 0;
}

int
classifier_body(struct classifier *c, const struct conv *conv, struct tokvec *body,
    enum role *role, struct err *e)
{
	struct buf text = { 0 };

	body->n = 0;
	/* never drop an image silently: a text-only guard cannot judge it */
	if (conv_n_images(conv) > 0 && model_image_token(c->m) < 0)
		return err_set(e, "messages: %zu image part(s), but this guard reads text only (an "
		    "image needs Llama Guard 3 11B-Vision)", conv_n_images(conv));
	int rc = prompt_body(conv, c->tok, &text, body, role, e);
	buf_free(&text);
	if (rc == 0 && tokvec_push(body, c->t[T_NN]) == -1)	/* the model's first token, taken as given */
		rc = err_set(e, "out of memory");
	return rc;
}

/* prefill: every active item's feed, packed into batches of at most n_batch tokens; reads
 * unsafe_score and the first answer token where each feed ends */
static int
prefill(struct classifier *c, struct item *it, size_t n, struct verdict *out, struct err *e)
{
	int nb = ctx_params(c->work)->n_batch, nv = n_logits(c);
	size_t off[MAX_ITEMS] = { 0 };

	for (;;) {
		int k = 0, any = 0;
		for (size_t i = 0; i < n; i++) {
			if (!it[i].active || off[i] == it[i].n_feed)
				continue;
			size_t take = it[i].n_feed - off[i];
			if (take > (size_t)(nb - k))
				take = (size_t)(nb - k);
			if (take == 0)
				break;
			for (size_t j = 0; j < take; j++) {
				c->btok[k] = it[i].feed[off[i] + j];
				c->bseq[k] = it[i].seq;
				c->bwant[k] = off[i] + j == it[i].n_feed - 1;
				k++;
			}
			off[i] += take;
			any = 1;
		}
		if (!any)
			return 0;
		struct batch b = { k, c->btok, c->bseq, c->bwant };
		if (ctx_decode(c->work, &b, e) == -1)
			return -1;
		/* rows with logits: items whose feed ended in this batch, in batch order */
		int row = 0;
		for (int j = 0; j < k; j++) {
			if (!c->bwant[j])
				continue;
			size_t i = 0;
			while (!it[i].active || it[i].seq != c->bseq[j])
				i++;
			const float *l = ctx_logits(c->work, row++);
			out[i].unsafe_score = prob(l, nv, c->t[T_UNSAFE]);
			it[i].next = argmax(l, nv);
			it[i].base_len = ctx_seq_len(c->work, it[i].seq);
		}
	}
}

void
classifier_answer(struct classifier *c, struct item *it, size_t n, struct verdict *out,
    double t0)
{
	const int32_t *runs[MAX_ITEMS];
	int cnt[MAX_ITEMS];
	struct err e;
	int nv = n_logits(c);

	double t1 = classifier_now_ms();
	for (size_t i = 0; i < n; i++)
		it[i].forced = 0;
	if (prefill(c, it, n, out, &e) == -1)
		goto batch_fail;
	double t2 = classifier_now_ms();
	if (decode_answers(c, it, out, n, &e) == -1)
		goto batch_fail;
	/* forced category line where the score is high enough but the answer had none */
	const int32_t *forced = c->forced;
	int need = 0;
	for (size_t i = 0; i < n; i++) {
		struct verdict *v = &out[i];
		char codes[VERDICT_MAX_CODES][8];
		int nc;
		if (v->decision == DECISION_ERROR || !isfinite(v->unsafe_score))
			continue;
		answer_text(c, &it[i].ans, v->raw, sizeof(v->raw));
		enum parse_result pr = verdict_parse(v->raw, codes, VERDICT_MAX_CODES, &nc);
		if (pr == PARSE_SAFE && !it[i].cats_at &&
		    v->unsafe_score >= policy_min_threshold(it[i].pol, v->role)) {
			if (ctx_seq_truncate(c->work, it[i].seq, it[i].base_len, &e) == -1)
				goto batch_fail;
			it[i].ans.n = 0;
			it[i].active = 1;
			runs[i] = forced;
			cnt[i] = 3;
			need = it[i].forced = 1;
		}
	}
	if (need) {
		if (step(c, it, n, runs, cnt, 0, &e) == -1)
			goto batch_fail;
		for (size_t i = 0; i < n; i++) {
			if (!it[i].active)
				continue;
			const float *l = logits_of(c, it, i);
			cat_scores(c, &it[i], &out[i], l);
			it[i].next = argmax(l, nv);
			tokvec_append(&it[i].ans, forced, 3);
			it[i].cats_at = 1;
			out[i].tokens_evaluated += 3;
		}
		if (decode_answers(c, it, out, n, &e) == -1)
			goto batch_fail;
	}
	double t3 = classifier_now_ms();
	for (size_t i = 0; i < n; i++) {
		struct verdict *v = &out[i];
		char codes[VERDICT_MAX_CODES][8], forced_text[256];
		int nc;
		enum parse_result pr;
		if (v->decision == DECISION_ERROR) {
			tokvec_free(&it[i].ans);
			continue;
		}
		if (it[i].forced) {
			/* the categories come from the forced line; raw stays the model's answer */
			answer_text(c, &it[i].ans, forced_text, sizeof(forced_text));
			pr = verdict_parse(forced_text, codes, VERDICT_MAX_CODES, &nc);
			if (pr != PARSE_UNSAFE) {
				verdict_fail(v, it[i].pol, "unsafe_score %.3f reached a category threshold "
				    "but the category line did not parse", v->unsafe_score);
				tokvec_free(&it[i].ans);
				continue;
			}
		} else
			pr = verdict_parse(v->raw, codes, VERDICT_MAX_CODES, &nc);
		verdict_decide(v, it[i].pol, pr, codes, nc);
		v->ms_prefill = t2 - t1;
		v->ms_decode = t3 - t2;
		v->ms_total = classifier_now_ms() - t0;
		tokvec_free(&it[i].ans);
	}
	return;
batch_fail:
	for (size_t i = 0; i < n; i++) {
		tokvec_free(&it[i].ans);
		it[i].active = 0;
		if (out[i].decision != DECISION_ERROR)
			verdict_fail(&out[i], it[i].pol, "%s", e.msg);
		out[i].ms_total = classifier_now_ms() - t0;
	}
}

