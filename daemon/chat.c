/* chat.c - the worker's side of the chat op. A chat is checked as a request first (with the
 * classify batch it arrived in), then generated together with every other running chat
 * (one forward pass per step for all), and its response is checked by the guard every
 * stream.check_every tokens and at the end. Text reaches the loop thread (and the client)
 * only after a check allowed it: held-back text of a blocked check is never sent.
 * A chat with images (a Llama 3.2-Vision generator) attaches them to its sequence when it
 * starts; its checks are whole evaluations of the conversation with the image by a vision
 * guard (no incremental stream: every position after <|image|> depends on the image), and
 * with a guard that cannot see images its answer is refused: fail closed. */
#include "daemon/server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "classifier/conv.h"
#include "core/mllama.h"
#include "core/model.h"
#include "daemon/log.h"
#include "daemon/sigbus.h"
#include "generator/chat.h"
#include "generator/gen.h"
#include "policy/policy.h"

struct chatrun {
	struct tokvec prompt;		/* the rendered prompt's ids */
	int slot;			/* generator sequence, -1 before start */
	struct guard_stream *gs;
	size_t released;		/* bytes of the generator's text sent on */
	size_t checked_len;		/* text length at the last check, (size_t)-1 before any */
	int checked_tokens;		/* tokens generated at the last check */
	int released_tokens;
};

void
chat_run_free(struct job *j)
{
	if (j->run == NULL)
		return;
	tokvec_free(&j->run->prompt);
	free(j->run);
	j->run = NULL;
}

int
chat_free_slots(struct server *s)
{
	if (s->gen == NULL)
		return 0;
	int n = generator_n_seq(s->gen) - atomic_load(&s->chats_active);
	int m = classifier_max_streams(s->cls) - atomic_load(&s->chats_active);
	return n < m ? n : m;
}

static void
fail(struct job *j, enum proto_status st, const char *msg)
{
	j->status = st;
	snprintf(j->err_msg, sizeof(j->err_msg), "%s", msg);
}

void
chat_prepare(struct server *s, struct job *j)
{
	struct err e;
	char date[16];

	if ((j->run = calloc(1, sizeof(*j->run))) == NULL) {
		fail(j, PROTO_INTERNAL, "out of memory");
		return;
	}
	j->run->slot = -1;
	j->run->checked_len = (size_t)-1;
	if (s->cfg->gen_date == NULL)
		chat_today(date);
	if (chat_render(&j->req.chat, (enum chat_format)s->gen_format,
	    s->cfg->gen_date ? s->cfg->gen_date : date, model_tok(s->gen_model), NULL,
	    &j->run->prompt, &e) == -1) {
		fail(j, PROTO_BAD_REQUEST, e.msg);
		return;
	}
	j->n_prompt = (int)j->run->prompt.n;
}

/* A verdict that stops the chat: blocked, or failed under on_error block. */
static int
blocks(const struct verdict *v)
{
	return v->decision == DECISION_BLOCK || (v->decision == DECISION_ERROR && v->flagged);
}

static void
set_refusal(struct server *s, struct job *j)
{
	const struct policy *p = classifier_policy(s->cls, j->pol);

	j->finish = FINISH_CONTENT_FILTER;
	free(j->refusal);
	j->refusal = strdup(p ? policy_refusal(p) : "I can't help with that.");
}

static uint64_t
fresh_seed(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ull;
	return v;
}

static void
gen_params_of(struct server *s, const struct job *j, struct gen_params *gp,
    const char **stops, int32_t *end)
{
	const struct chat_opts *o = &j->req.copt;
	const struct config *c = s->cfg;

	memset(gp, 0, sizeof(*gp));
	gp->sp = sampler_params_default();
	gp->sp.temperature = (float)(o->has_temperature ? o->temperature : c->gen_temperature);
	gp->sp.top_k = o->has_top_k ? o->top_k : c->gen_top_k;
	gp->sp.top_p = (float)(o->has_top_p ? o->top_p : c->gen_top_p);
	gp->sp.min_p = (float)(o->has_min_p ? o->min_p : c->gen_min_p);
	gp->sp.repeat_penalty = (float)(o->has_repeat_penalty ? o->repeat_penalty :
	    c->gen_repeat_penalty);
	gp->sp.seed = o->has_seed ? o->seed : c->gen_seed >= 0 ? (uint64_t)c->gen_seed :
	    fresh_seed();
	gp->max_tokens = o->has_max_tokens && o->max_tokens < c->gen_max_tokens ? o->max_tokens :
	    c->gen_max_tokens;
	for (int i = 0; i < o->n_stop; i++)
		stops[i] = o->stop[i];
	gp->stop = stops;
	gp->n_stop = (size_t)o->n_stop;
	gp->n_end = chat_end_tokens(model_tok(s->gen_model), (enum chat_format)s->gen_format, end);
	gp->end = end;
}

/* The response verdict of an image chat whose guard reads text only: it cannot judge the
 * answer without the image, so the answer is refused whatever on_error says. */
static void
refuse_unseen(struct server *s, struct job *j)
{
	struct verdict *v = &j->rv;

	memset(v, 0, sizeof(*v));
	v->role = ROLE_RESPONSE;
	v->unsafe_score = NAN;
	verdict_fail(v, classifier_policy(s->cls, j->pol), "messages: %zu image part(s), but "
	    "this guard reads text only: the answer cannot be checked (an image needs Llama Guard "
	    "3 11B-Vision)", j->req.n_img);
	v->flagged = 1;
	j->have_rverdict = 1;
	set_refusal(s, j);
}

/* Starts the generation: with the chat's images attached when it has some. */
static int
start(struct server *s, struct job *j, const struct gen_params *gp, struct err *e)
{
	size_t n = j->req.n_img;
	struct gen_image *img;
	struct err ge;

	if (n == 0)
		return generator_start(s->gen, j->run->prompt.v, j->run->prompt.n, gp, e);
	if ((img = calloc(n, sizeof(*img))) == NULL)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < n; i++)
		img[i] = (struct gen_image){ j->req.img[i].data, j->req.img[i].len };
	int slot = generator_start_images(s->gen, j->run->prompt.v, j->run->prompt.n, img, n, gp,
	    &ge);
	free(img);
	if (slot < 0)
		err_set(e, "messages: %s", ge.msg);
	return slot;
}

int
chat_admit(struct server *s, struct job *j)
{
	struct gen_params gp;
	const char *stops[PROTO_MAX_STOP];
	int32_t end[8];
	struct err e;

	if (j->status != PROTO_OK || j->dropped || !j->have_verdict)
		return 0;
	if (blocks(&j->v)) {
		set_refusal(s, j);
		return 0;
	}
	if (j->req.n_img > 0 && model_image_token(s->model) < 0) {
		refuse_unseen(s, j);
		return 0;
	}
	gen_params_of(s, j, &gp, stops, end);
	/* an image chat is checked whole each time (check_whole), not on a stream */
	if (j->req.n_img == 0 &&
	    (j->run->gs = classifier_stream_open(s->cls, j->pol, &j->req.conv, &e)) == NULL) {
		fail(j, PROTO_INTERNAL, e.msg);
		return 0;
	}
	if ((j->run->slot = start(s, j, &gp, &e)) < 0) {
		classifier_stream_close(s->cls, j->run->gs);
		j->run->gs = NULL;
		fail(j, PROTO_BAD_REQUEST, e.msg);
		return 0;
	}
	TAILQ_INSERT_TAIL(&s->chats, j, link);
	atomic_fetch_add(&s->chats_active, 1);
	return 1;
}

/* A check of an image chat's answer: classifier_run on the conversation (its images
 * included) plus the answer so far, evaluated whole by the vision guard. */
static void
check_whole(struct server *s, struct job *j, const char *text, size_t len, struct verdict *v)
{
	const struct conv *c = &j->req.conv;
	struct conv cv = { 0 };
	struct err e;
	int rc = 0;

	for (size_t i = 0; i < c->n && rc == 0; i++) {
		if ((rc = conv_add_msg(&cv, &e)) == -1)
			break;
		cv.msg[i].assistant = c->msg[i].assistant;
		cv.msg[i].n_images = c->msg[i].n_images;
		for (size_t k = 0; rc == 0 && k < c->msg[i].n_parts; k++)
			rc = conv_add_part(&cv, c->msg[i].parts[k], c->msg[i].part_len[k], &e);
	}
	if (rc == 0 && (rc = conv_add_msg(&cv, &e)) == 0) {
		cv.msg[cv.n - 1].assistant = 1;
		rc = conv_add_part(&cv, text, len, &e);
	}
	cv.img = c->img;
	cv.n_img = c->n_img;
	if (rc == 0) {
		const struct conv *list[1] = { &cv };
		classifier_run(s->cls, j->pol, list, 1, v);
	} else {
		memset(v, 0, sizeof(*v));
		v->role = ROLE_RESPONSE;
		v->unsafe_score = NAN;
		verdict_fail(v, classifier_policy(s->cls, j->pol), "%s", e.msg);
	}
	conv_free(&cv);
}

/* Ends a running chat: frees its sequence and stream, hands it to the loop thread. */
static void
finish(struct server *s, struct job *j)
{
	struct chatrun *r = j->run;

	if (r->slot >= 0) {
		j->n_generated = generator_n_generated(s->gen, r->slot);
		generator_end(s->gen, r->slot);
		r->slot = -1;
	}
	if (r->gs != NULL) {
		classifier_stream_close(s->cls, r->gs);
		r->gs = NULL;
	}
	j->n_released = r->released_tokens;
	TAILQ_REMOVE(&s->chats, j, link);
	atomic_fetch_sub(&s->chats_active, 1);
	worker_complete(s, &j, 1);
}

/* Sends text [released, len) of the answer on: appended to the job's text, and to the
 * client as a delta when it streams. */
static void
release(struct server *s, struct job *j, const char *text, size_t len, int tokens)
{
	struct chatrun *r = j->run;
	size_t n = len - r->released;
	uint64_t one = 1;

	r->released_tokens = tokens;
	if (n == 0)
		return;
	char *t = realloc(j->out, j->out_len + n + 1);
	if (t == NULL)
		return;	/* the answer's copy stays shorter; the stream still gets it */
	memcpy(t + j->out_len, text + r->released, n);
	j->out = t;
	j->out_len += n;
	t[j->out_len] = '\0';
	if (j->t_first == 0)
		j->t_first = now_ms();
	if (j->req.copt.stream) {
		struct delta *d = malloc(sizeof(*d) + n);
		if (d != NULL) {
			d->job = j;
			d->len = n;
			memcpy(d->text, text + r->released, n);
			pthread_mutex_lock(&s->mu);
			TAILQ_INSERT_TAIL(&s->deltas, d, link);
			pthread_mutex_unlock(&s->mu);
			if (write(s->done_fd, &one, sizeof(one)) != sizeof(one))
				log_warn("worker: notify");
		}
	}
	r->released = len;
}

static int
cancel_cb(void *arg)
{
	struct server *s = arg;

	return atomic_load(&s->abort);
}

void
chat_step(struct server *s)
{
	struct job *j, *nx;
	struct err e;
	double t = now_ms();

	/* the gone and the late first: their sequences are free for the next step */
	for (j = TAILQ_FIRST(&s->chats); j != NULL && (nx = TAILQ_NEXT(j, link), 1); j = nx) {
		if (atomic_load(&j->conn->dead)) {
			j->dropped = 1;
			finish(s, j);
		} else if (atomic_load(&s->abort)) {
			fail(j, PROTO_SHUTTING_DOWN, "the daemon is shutting down");
			finish(s, j);
		} else if (t > j->deadline) {
			char msg[96];
			snprintf(msg, sizeof(msg), "deadline of %.0f ms passed while generating",
			    j->deadline - j->t_arrive);
			fail(j, PROTO_TIMEOUT, msg);
			finish(s, j);
		}
	}
	if (TAILQ_EMPTY(&s->chats))
		return;
	generator_set_cancel(s->gen, cancel_cb, s);
	int rc = generator_step(s->gen, &e);
	generator_set_cancel(s->gen, NULL, NULL);
	if (sigbus_tripped()) {
		atomic_store(&s->broken, 1);
		for (j = TAILQ_FIRST(&s->chats); j != NULL && (nx = TAILQ_NEXT(j, link), 1); j = nx) {
			fail(j, PROTO_INTERNAL, "a model file was truncated under the daemon; the "
			    "inference process restarts");
			finish(s, j);
		}
		return;
	}
	if (rc == -1 && atomic_load(&s->abort))
		return;	/* the next step fails them as shutting down */

	/* the response checks that are due, all in one guard batch */
	struct guard_stream *gs[64];
	const char *texts[64];
	size_t lens[64];
	struct job *due[64];
	struct verdict vs[64];
	int n = 0;
	for (j = TAILQ_FIRST(&s->chats); j != NULL && (nx = TAILQ_NEXT(j, link), 1); j = nx) {
		struct chatrun *r = j->run;
		enum gen_finish f = generator_finish(s->gen, r->slot);
		int ng = generator_n_generated(s->gen, r->slot);
		size_t len;
		const char *text = generator_text(s->gen, r->slot, &len);
		if (f == GEN_ERROR) {
			fail(j, PROTO_INTERNAL, rc == -1 ? e.msg : "generation failed");
			finish(s, j);
			continue;
		}
		if (f == GEN_RUNNING && ng - r->checked_tokens < s->cfg->check_every)
			continue;
		if (len == r->checked_len && j->have_rverdict) {
			/* nothing new to judge: the text is held back (a stop string may begin) */
			r->checked_tokens = ng;
			if (f != GEN_RUNNING) {
				j->finish = f == GEN_STOP ? FINISH_STOP : FINISH_LENGTH;
				finish(s, j);
			}
			continue;
		}
		if (n == 64)
			break;
		gs[n] = r->gs;
		texts[n] = text;
		lens[n] = len;
		due[n++] = j;
	}
	if (n == 0)
		return;
	/* text chats' streams in one guard batch; image chats' checks one by one, whole */
	double t0 = now_ms();
	struct guard_stream *sgs[64];
	const char *stexts[64];
	size_t slens[64];
	struct verdict sv[64];
	int ns = 0, order[64];
	for (int i = 0; i < n; i++)
		if (due[i]->run->gs != NULL) {
			sgs[ns] = gs[i];
			stexts[ns] = texts[i];
			slens[ns] = lens[i];
			order[ns++] = i;
		} else
			check_whole(s, due[i], texts[i], lens[i], &vs[i]);
	if (ns > 0)
		classifier_stream_check(s->cls, sgs, stexts, slens, (size_t)ns, sv);
	for (int k = 0; k < ns; k++)
		vs[order[k]] = sv[k];
	double ms = now_ms() - t0;
	for (int i = 0; i < n; i++) {
		j = due[i];
		struct chatrun *r = j->run;
		enum gen_finish f = generator_finish(s->gen, r->slot);
		if (j->have_rverdict)
			verdict_free(&j->rv);
		j->rv = vs[i];
		j->have_rverdict = 1;
		j->n_checks++;
		j->check_ms += ms / n;
		r->checked_len = lens[i];
		r->checked_tokens = generator_n_generated(s->gen, r->slot);
		if (blocks(&vs[i])) {
			set_refusal(s, j);
			finish(s, j);
			continue;
		}
		release(s, j, texts[i], lens[i], r->checked_tokens);
		if (f != GEN_RUNNING) {
			j->finish = f == GEN_STOP ? FINISH_STOP : FINISH_LENGTH;
			finish(s, j);
		}
	}
}
