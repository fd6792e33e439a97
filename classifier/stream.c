/* stream.c - checks of a response while it is generated, without evaluating the whole guard
 * prompt each time. Stream k owns sequence max_batch + k of the work context for its life;
 * the sequence holds the keys and values of [policy prefix (response role) + conversation +
 * "Agent: " + the response so far + "\n\n"], the ids of which the stream remembers (held).
 * A check renders the prompt for the response text it is given, keeps the longest common
 * token prefix with held (a BPE boundary can move as text grows: "hel" -> "hello"), appends
 * the rest, closing part and "\n\n" included, and reads the answer with the code
 * classifier_run uses (answer.c). Every position is computed from the same tokens at the same
 * place as in classifier_run, and the kernels compute a row the same way whatever the batch
 * around it, so the verdict is bit-identical to classifier_run on the conversation plus an
 * assistant message holding that text.
 * A conversation with an image (Llama Guard 3 11B-Vision) starts the sequence from the image
 * form of the prefix instead (prompt_prefix_image: "<|image|> " after the first header): the
 * image is attached to the sequence (its cross-attention keys and values computed once) and
 * that prefix evaluated once, at open and after a policy swap; checks then append to it as
 * for text. A text-only guard cannot open such a stream: the image is never dropped. */
#include "classifier/classifier_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/conv.h"
#include "classifier/prompt.h"
#include "core/ctx.h"
#include "core/mllama.h"
#include "core/tok.h"

struct guard_stream {
	struct classifier *c;
	int k;			/* index in c->streams: sequence max_batch + k */
	int slot;
	unsigned gen;		/* the slot's build the sequence was started from (0: none) */
	struct conv conv;	/* a copy of the conversation, ending with the user's message */
	struct conv_image img;	/* a copy of its image's bytes (data NULL: text only) */
	struct tokvec pre;	/* with an image: the image form of the policy prefix */
	struct conv_msg *view;	/* its messages, then the response's (the text of a check) */
	char *resp;		/* borrowed for one check */
	size_t resp_len;
	struct tokvec held;	/* ids of the positions the sequence holds */
	struct tokvec target;	/* scratch: prefix + body + "\n\n" of this check */
	struct tokvec body;	/* scratch */
	int in_check;
	int evaluated, reused;
};

/* The streams' table. Every body of a response prompt ends with the closing part
 * ("<END CONVERSATION>\n\nProvide ... <|end_header_id|>") before the model's "\n\n": its ids
 * are c->cc_close[ROLE_RESPONSE], found once by classifier_closing_init (convcache.c) from
 * prompt.c's own rendering; empty when not as expected, and then checks keep only what they
 * reused. */
int
classifier_streams_init(struct classifier *c, struct err *e)
{
	if (c->p.max_streams > 0 &&
	    (c->streams = calloc((size_t)c->p.max_streams, sizeof(*c->streams))) == NULL)
		return err_set(e, "out of memory");
	return 0;
}

static void
stream_free(struct guard_stream *s)
{
	if (s == NULL)
		return;
	conv_free(&s->conv);
	free(s->img.data);
	tokvec_free(&s->pre);
	free(s->view);
	tokvec_free(&s->held);
	tokvec_free(&s->target);
	tokvec_free(&s->body);
	free(s);
}

void
classifier_streams_free(struct classifier *c)
{
	for (int k = 0; c->streams && k < c->p.max_streams; k++)
		stream_free(c->streams[k]);
	free(c->streams);
	c->streams = NULL;
}

static int
stream_seq(const struct guard_stream *s)
{
	return s->c->p.max_batch + s->k;
}

static struct conv
stream_conv(struct guard_stream *s)
{
	return (struct conv){ .msg = s->view, .n = s->conv.n + 1, .img = s->conv.img,
		.n_img = s->conv.n_img };
}

/* the ids the sequence starts with: the slot's response prefix, or its image form */
static const struct tokvec *
stream_prefix(const struct classifier *c, const struct guard_stream *s)
{
	return s->img.data != NULL ? &s->pre : &c->slots[s->slot].prefix[ROLE_RESPONSE];
}

/* (Re)starts the sequence from the slot's current policy: its response prefix restored from
 * the snapshot, or nothing without the prefix cache (the first check evaluates it); with an
 * image, the image attached and the image form of the prefix evaluated (vision.c). */
static int
stream_restart(struct classifier *c, struct guard_stream *s, struct err *e)
{
	const struct slot *sl = &c->slots[s->slot];
	int seq = stream_seq(s), reused;

	s->gen = 0;
	s->held.n = 0;
	ctx_seq_clear(c->work, seq);
	if (s->img.data != NULL) {
		if (classifier_image_prefix(c, sl->pol, ROLE_RESPONSE, seq, &s->img, &s->pre,
		    &reused, e) == -1)
			return -1;
		if (tokvec_append(&s->held, s->pre.v, s->pre.n) == -1) {
			ctx_seq_clear(c->work, seq);
			return err_set(e, "out of memory");
		}
	} else if (c->p.prefix_cache) {
		const struct tokvec *pre = &sl->prefix[ROLE_RESPONSE];
		if (ctx_snapshot_restore(c->work, seq, sl->snap[ROLE_RESPONSE], e) == -1)
			return -1;
		if (tokvec_append(&s->held, pre->v, pre->n) == -1) {
			ctx_seq_clear(c->work, seq);
			return err_set(e, "out of memory");
		}
	}
	s->gen = sl->gen;
	return 0;
}

static int
copy_conv(struct conv *dst, const struct conv *src, struct err *e)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->n; i++) {
		if (conv_add_msg(dst, e) == -1)
			return -1;
		dst->msg[i].assistant = src->msg[i].assistant;
		dst->msg[i].n_images = src->msg[i].n_images;
		for (size_t k = 0; k < src->msg[i].n_parts; k++)
			if (conv_add_part(dst, src->msg[i].parts[k], src->msg[i].part_len[k], e) == -1)
				return -1;
	}
	return 0;
}

struct guard_stream *
classifier_stream_open(struct classifier *c, int slot, const struct conv *conv, struct err *e)
{
	struct guard_stream *s;
	int k = 0;
	enum role r;

	if (slot < 0 || slot >= c->n_slots) {
		err_set(e, "no policy slot %d (%d loaded)", slot, c->n_slots);
		return NULL;
	}
	while (k < c->p.max_streams && c->streams[k] != NULL)
		k++;
	if (c->p.max_streams == 0) {
		err_set(e, "this classifier checks no response streams (max_streams 0)");
		return NULL;
	}
	if (k == c->p.max_streams) {
		err_set(e, "all %d response streams of this classifier are in use", c->p.max_streams);
		return NULL;
	}
	if (conv == NULL || conv->n == 0 || conv->msg[conv->n - 1].assistant) {
		err_set(e, "a response stream needs a conversation ending with the user's message");
		return NULL;
	}
	if (conv_check(conv, e) == -1)
		return NULL;
	size_t ni = conv_n_images(conv);
	if (ni > 0 && model_image_token(c->m) < 0) {
		/* judging the text alone would drop the image: refused, the caller applies its
		 * on_error */
		err_set(e, "messages: %zu image part(s), but this guard reads text only: it cannot "
		    "judge a response to a conversation with an image (that needs Llama Guard 3 "
		    "11B-Vision)", ni);
		return NULL;
	}
	if (ni > 1) {
		err_set(e, "messages: %zu image parts: Llama Guard 3 11B-Vision judges one image per "
		    "conversation", ni);
		return NULL;
	}
	if (ni == 1 && (conv->n_img != 1 || conv->img == NULL || conv->img[0].data == NULL ||
	    conv->img[0].len == 0)) {
		err_set(e, "messages: an image part without its bytes");
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	s->c = c;
	s->k = k;
	s->slot = slot;
	if (copy_conv(&s->conv, conv, e) == -1)
		goto fail;
	if (ni == 1) {
		if ((s->img.data = malloc(conv->img[0].len)) == NULL) {
			err_set(e, "out of memory (the image: %zu bytes)", conv->img[0].len);
			goto fail;
		}
		memcpy(s->img.data, conv->img[0].data, conv->img[0].len);
		s->img.len = conv->img[0].len;
		s->conv.img = &s->img;
		s->conv.n_img = 1;
		struct buf text = { 0 };
		int rc = prompt_prefix_image(c->slots[slot].pol, ROLE_RESPONSE, c->tok, &text,
		    &s->pre, e);
		buf_free(&text);
		if (rc == -1)
			goto fail;
	}
	if ((s->view = calloc(conv->n + 1, sizeof(*s->view))) == NULL) {
		err_set(e, "out of memory");
		goto fail;
	}
	memcpy(s->view, s->conv.msg, conv->n * sizeof(*s->view));
	s->view[conv->n] = (struct conv_msg){ 1, &s->resp, &s->resp_len, 1, 0 };
	/* the conversation must leave room for a response */
	s->resp = (char *)"";
	struct conv v = stream_conv(s);
	if (classifier_body(c, &v, &s->body, &r, e) == -1)
		goto fail;
	size_t total = stream_prefix(c, s)->n + s->body.n + MAX_ANSWER + 4;
	if (total > (size_t)c->p.n_ctx) {
		err_set(e, "the conversation needs %zu tokens with the policy; the context holds %d",
		    total, c->p.n_ctx);
		goto fail;
	}
	if (stream_restart(c, s, e) == -1)
		goto fail;
	c->streams[k] = s;
	return s;
fail:
	stream_free(s);
	return NULL;
}

void
classifier_stream_close(struct classifier *c, struct guard_stream *s)
{
	if (s == NULL || s->c != c || s->k < 0 || s->k >= c->p.max_streams || c->streams[s->k] != s)
		return;
	ctx_seq_clear(c->work, stream_seq(s));
	c->streams[s->k] = NULL;
	stream_free(s);
}

int classifier_max_streams(const struct classifier *c) { return c->p.max_streams; }
int guard_stream_tokens_evaluated(const struct guard_stream *s) { return s ? s->evaluated : 0; }
int guard_stream_tokens_reused(const struct guard_stream *s) { return s ? s->reused : 0; }

/* an error verdict where there is no stream (hence no policy) to go by: fail closed under
 * the default policy's on_error, as classifier_run does for a missing slot */
static void
fail_bare(struct verdict *v, const char *msg)
{
	struct policy *d = policy_default();

	memset(v, 0, sizeof(*v));
	v->unsafe_score = NAN;
	v->role = ROLE_RESPONSE;
	if (d != NULL)
		verdict_fail(v, d, "%s", msg);
	else {
		snprintf(v->error, sizeof(v->error), "%s", msg);
		v->decision = DECISION_ERROR;
		v->flagged = 1;
	}
	policy_free(d);
}

/* The length of the conversation part of target (prefix + body + "\n\n"): everything before
 * the closing part and the model's "\n\n". Falls back to lcp (what was reused) if target does
 * not end as expected. */
static size_t
conversation_end(const struct classifier *c, const struct tokvec *t, size_t lcp)
{
	size_t nc = c->cc_close[ROLE_RESPONSE].n;

	if (nc > 0 && t->n >= nc + 1 &&
	    memcmp(t->v + t->n - 1 - nc, c->cc_close[ROLE_RESPONSE].v, nc * sizeof(int32_t)) == 0)
		return t->n - 1 - nc;
	return lcp;
}

/* Prepares stream s for a check of text: sets item it and the verdict v, or fails v. */
static int
stream_prepare(struct classifier *c, struct guard_stream *s, const char *text, size_t len,
    struct item *it, struct verdict *v, size_t *keep, double t0)
{
	struct err e;
	enum role r;

	s->evaluated = s->reused = 0;
	/* a policy swapped since the last check: start again from its prefix, never mixing */
	const struct slot *sl = &c->slots[s->slot];
	s->resp = (char *)text;
	s->resp_len = len;
	struct conv cv = stream_conv(s);
	classifier_verdict_init(v, sl->pol, &cv);
	v->role = ROLE_RESPONSE;
	if (s->gen != sl->gen && stream_restart(c, s, &e) == -1) {
		verdict_fail(v, sl->pol, "%s", e.msg);
		return -1;
	}
	if (classifier_body(c, &cv, &s->body, &r, &e) == -1) {
		verdict_fail(v, sl->pol, "%s", e.msg);
		return -1;
	}
	const struct tokvec *pre = stream_prefix(c, s);
	size_t total = pre->n + s->body.n + MAX_ANSWER + 4;
	if (total > (size_t)c->p.n_ctx) {
		verdict_fail(v, sl->pol, "the conversation needs %zu tokens with the policy; "
		    "the context holds %d", total, c->p.n_ctx);
		return -1;
	}
	s->target.n = 0;
	if (tokvec_append(&s->target, pre->v, pre->n) == -1 ||
	    tokvec_append(&s->target, s->body.v, s->body.n) == -1) {
		verdict_fail(v, sl->pol, "out of memory");
		return -1;
	}
	/* the longest common prefix with what the sequence holds; at least the last token is
	 * evaluated, for its logits */
	size_t lcp = 0;
	while (lcp < s->held.n && lcp < s->target.n && s->held.v[lcp] == s->target.v[lcp])
		lcp++;
	if (lcp == s->target.n)
		lcp--;
	if (ctx_seq_truncate(c->work, stream_seq(s), (int)lcp, &e) == -1) {
		verdict_fail(v, sl->pol, "%s", e.msg);
		return -1;
	}
	s->held.n = lcp;
	*keep = conversation_end(c, &s->target, lcp);
	it->seq = stream_seq(s);
	it->pol = sl->pol;
	it->num_tok = sl->num_tok;
	it->feed = s->target.v + lcp;
	it->n_feed = s->target.n - lcp;
	it->active = 1;
	v->tokens_evaluated = (int)it->n_feed;
	v->tokens_cached = (int)lcp;
	v->ms_prompt = classifier_now_ms() - t0;
	return 0;
}

void
classifier_stream_check(struct classifier *c, struct guard_stream *const *gs,
    const char *const *resp, const size_t *len, size_t n, struct verdict *out)
{
	struct item it[MAX_ITEMS];
	struct verdict vv[MAX_ITEMS];
	struct guard_stream *ss[MAX_ITEMS];
	size_t idx[MAX_ITEMS], keep[MAX_ITEMS];
	size_t m = 0;
	double t0 = classifier_now_ms();

	memset(it, 0, sizeof(it));
	for (size_t i = 0; i < n; i++) {
		struct guard_stream *s = gs[i];
		if (s == NULL || s->c != c || s->k < 0 || s->k >= c->p.max_streams ||
		    c->streams[s->k] != s) {
			fail_bare(&out[i], "not an open response stream of this classifier");
			continue;
		}
		if (s->in_check) {
			/* one sequence cannot take two texts in one pass */
			fail_bare(&out[i], "the same response stream is given twice in one check");
			continue;
		}
		s->in_check = 1;
		ss[m] = s;
		idx[m] = i;
		keep[m] = 0;
		if (stream_prepare(c, s, resp[i], len[i], &it[m], &vv[m], &keep[m], t0) == -1)
			it[m].active = 0;
		m++;
	}
	/* every valid stream is distinct, so m <= max_streams <= MAX_ITEMS */
	int ran[MAX_ITEMS];
	for (size_t j = 0; j < m; j++)
		ran[j] = it[j].active;
	classifier_answer(c, it, m, vv, t0);
	for (size_t j = 0; j < m; j++) {
		struct guard_stream *s = ss[j];
		s->in_check = 0;
		if (ran[j]) {
			/* The issue puts the closing part and the answer on a scratch copy of the
			 * sequence, dropped after the check. Cutting the sequence back to the end of
			 * the conversation part is the same without the copy: positions are computed
			 * in order, so the ones kept never saw the closing part or the answer, and the
			 * next check appends after them exactly as the copy's source would have.
			 * After a failure (cancelled, say) the sequence may hold less than that:
			 * whatever it holds is a prefix of target, appended in order. */
			int l = ctx_seq_len(c->work, stream_seq(s));
			size_t nk = keep[j] < (size_t)l ? keep[j] : (size_t)l;
			struct err e;
			ctx_seq_truncate(c->work, stream_seq(s), (int)nk, &e);
			struct tokvec t = s->held;
			s->held = s->target;
			s->target = t;
			s->held.n = nk;
			s->evaluated = vv[j].tokens_evaluated;
			s->reused = vv[j].tokens_cached;
		}
		out[idx[j]] = vv[j];
	}
}
