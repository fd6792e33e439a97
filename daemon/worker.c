/* worker.c - the inference thread: takes jobs from the bounded queue, batches classify jobs
 * of one policy through the classifier, parses and swaps in reloaded policies, and hands
 * results back to the loop thread. Everything slow happens here, never on the loop. */
#include "daemon/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "daemon/log.h"
#include "daemon/sigbus.h"
#include "policy/policy.h"

#define MAX_BATCH 64

double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	verdict_free(&j->v);
	if (j->have_rverdict)
		verdict_free(&j->rv);
	chat_run_free(j);
	free(j->out);
	free(j->refusal);
	proto_request_free(&j->req);
	for (int i = 0; i < CONFIG_MAX_POLICIES; i++)
		free(j->text[i]);
	free(j);
}

int
worker_submit(struct server *s, struct job *j, int force)
{
	pthread_mutex_lock(&s->mu);
	if (!force && s->queued >= s->cfg->max_queue) {
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	TAILQ_INSERT_TAIL(&s->queue, j, link);
	s->queued++;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

void
worker_hold(struct server *s, int on)
{
	pthread_mutex_lock(&s->mu);
	s->hold = on;
	if (!on)
		pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void
worker_complete(struct server *s, struct job **jobs, int n)
{
	uint64_t one = 1;

	/* the batch ends in the same step as its results appear: a drain check that sees the
	 * results also sees the worker idle */
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < n; i++)
		TAILQ_INSERT_TAIL(&s->done, jobs[i], link);
	s->working = 0;
	pthread_mutex_unlock(&s->mu);
	if (n == 0)
		return;
	if (write(s->done_fd, &one, sizeof(one)) != sizeof(one))
		log_warn("worker: notify");
}

static void
fail(struct job *j, enum proto_status st, const char *fmt, const char *arg)
{
	j->status = st;
	snprintf(j->err_msg, sizeof(j->err_msg), fmt, arg);
}

struct batch_ctx {
	struct server *s;
	struct job **jobs;
	int n;
};

/* stop a batch when nobody is left to answer: every client gone or past its deadline */
static int
cancel_cb(void *arg)
{
	struct batch_ctx *b = arg;
	double t = now_ms();

	if (atomic_load(&b->s->abort))
		return 1;
	for (int i = 0; i < b->n; i++)
		if (!atomic_load(&b->jobs[i]->conn->dead) && t <= b->jobs[i]->deadline)
			return 0;
	return 1;
}

/* Parses every text first: a broken one leaves all policies as they are. Then swaps them
 * in slot by slot; if one slot fails, the others go back to their old policy. Whatever
 * happens, the loop thread afterwards takes from the classifier which policy each slot
 * really uses (control_reload_done), so nothing in use is ever freed. */
static void
run_reload(struct server *s, struct job *j)
{
	struct err e;
	int k;

	for (k = 0; k < s->n_pol; k++) {
		const char *name = s->cfg->policy[k].path ? s->cfg->policy[k].path : "built-in";
		j->newpol[k] = s->cfg->policy[k].path ? policy_parse(j->text[k], j->text_len[k], name,
		    &e) : policy_default();
		if (j->newpol[k] == NULL) {
			fail(j, PROTO_RELOAD_FAILED, "%s", e.msg);
			return;
		}
	}
	const struct policy *old[CONFIG_MAX_POLICIES];
	for (k = 0; k < s->n_pol; k++)
		old[k] = classifier_policy(s->cls, k);
	for (k = 0; k < s->n_pol; k++)
		if (classifier_set_policy(s->cls, k, j->newpol[k], &e) == -1)
			break;
	if (k < s->n_pol) {
		char msg[900];
		snprintf(msg, sizeof(msg), "policy '%.64s': %s", s->cfg->policy[k].name, e.msg);
		fail(j, PROTO_RELOAD_FAILED, "%s", msg);
		while (--k >= 0)
			if (classifier_set_policy(s->cls, k, old[k], &e) == -1)
				log_warnx("reload: policy '%s' stays on the new version: %s",
				    s->cfg->policy[k].name, e.msg);
	}
}

static void
run_batch(struct server *s, struct job **jobs, int n)
{
	const struct conv *convs[MAX_BATCH];
	struct job *live[MAX_BATCH];
	struct verdict vs[MAX_BATCH];
	double t = now_ms();
	int m = 0;

	/* drop what nobody waits for; fail what is late */
	for (int i = 0; i < n; i++) {
		struct job *j = jobs[i];
		if (j->kind == JOB_CHAT && !atomic_load(&j->conn->dead) && t <= j->deadline)
			chat_prepare(s, j);	/* the prompt first: a bad chat is not assessed */
		if (j->status != PROTO_OK)
			continue;
		if (atomic_load(&j->conn->dead))
			j->dropped = 1;
		else if (atomic_load(&s->abort))
			fail(j, PROTO_SHUTTING_DOWN, "%s", "the daemon is shutting down");
		else if (t > j->deadline)
			fail(j, PROTO_TIMEOUT, "%s", "deadline passed while queued");
		else {
			live[m] = j;
			convs[m++] = &j->req.conv;
		}
	}
	if (m == 0)
		return;
	struct batch_ctx bc = { s, live, m };
	classifier_set_cancel(s->cls, cancel_cb, &bc);
	classifier_run(s->cls, jobs[0]->pol, convs, (size_t)m, vs);
	classifier_set_cancel(s->cls, NULL, NULL);
	if (sigbus_tripped()) {	/* the weights were garbage for part of this batch */
		for (int i = 0; i < m; i++) {
			verdict_free(&vs[i]);
			fail(live[i], PROTO_INTERNAL, "%s", "the model file was truncated under the "
			    "daemon; the inference process restarts");
		}
		atomic_store(&s->broken, 1);
		return;
	}
	t = now_ms();
	for (int i = 0; i < m; i++) {
		struct job *j = live[i];
		if (atomic_load(&j->conn->dead)) {
			j->dropped = 1;
			verdict_free(&vs[i]);
		} else if (t > j->deadline) {
			char msg[64];
			snprintf(msg, sizeof(msg), "%.0f", j->deadline - j->t_arrive);
			fail(j, PROTO_TIMEOUT, "deadline of %s ms passed", msg);
			verdict_free(&vs[i]);
		} else if (atomic_load(&s->abort) && strcmp(vs[i].error,
		    "cancelled") == 0) {
			fail(j, PROTO_SHUTTING_DOWN, "%s", "the daemon is shutting down");
			verdict_free(&vs[i]);
		} else {
			j->v = vs[i];
			j->have_verdict = 1;
		}
	}
}

/* Takes the next work from the queue (with the lock held): the first job that can run, and
 * jobs of the same policy queued after it to share its forward pass. A chat can run only
 * when a generator sequence is free; chats that cannot wait in the queue, in order. */
static int
take(struct server *s, struct job **jobs)
{
	int n = 0, free_slots = chat_free_slots(s);
	struct job *j, *nx, *first = NULL;

	if (s->hold)
		return 0;

	TAILQ_FOREACH(j, &s->queue, link)
		if (j->kind != JOB_CHAT || free_slots > 0) {
			first = j;
			break;
		}
	if (first == NULL)
		return 0;
	TAILQ_REMOVE(&s->queue, first, link);
	s->queued--;
	jobs[n++] = first;
	if (first->kind == JOB_CHAT)
		free_slots--;
	if (first->kind == JOB_RELOAD)
		return n;
	/* requests waiting together for the same policy share one forward pass */
	int max = classifier_max_batch(s->cls);
	for (j = TAILQ_FIRST(&s->queue); j && n < max && n < MAX_BATCH; j = nx) {
		nx = TAILQ_NEXT(j, link);
		if (j->kind == JOB_RELOAD)
			break;	/* keep the order: later jobs see the new policy */
		if (j->pol != first->pol || (j->kind == JOB_CHAT && free_slots == 0))
			continue;
		TAILQ_REMOVE(&s->queue, j, link);
		s->queued--;
		jobs[n++] = j;
		if (j->kind == JOB_CHAT)
			free_slots--;
	}
	return n;
}

static void *
worker_main(void *arg)
{
	struct server *s = arg;
	struct job *jobs[MAX_BATCH];

	for (;;) {
		int n;
		pthread_mutex_lock(&s->mu);
		for (;;) {
			n = take(s, jobs);
			if (n > 0 || !TAILQ_EMPTY(&s->chats))
				break;
			if (s->stop && TAILQ_EMPTY(&s->queue)) {
				pthread_mutex_unlock(&s->mu);
				return NULL;
			}
			pthread_cond_wait(&s->cv, &s->mu);
		}
		s->working = n > 0;
		pthread_mutex_unlock(&s->mu);
		/* guard work first: one batch, then one generation step for every running chat */
		if (n > 0) {
			if (jobs[0]->kind == JOB_RELOAD) {
				run_reload(s, jobs[0]);
				worker_complete(s, jobs, 1);
			} else {
				run_batch(s, jobs, n);
				int k = 0;
				for (int i = 0; i < n; i++)
					if (jobs[i]->kind != JOB_CHAT || !chat_admit(s, jobs[i]))
						jobs[k++] = jobs[i];
				worker_complete(s, jobs, k);
			}
		}
		if (!TAILQ_EMPTY(&s->chats))
			chat_step(s);
	}
}

int
worker_start(struct server *s)
{
	if ((s->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		return -1;
	return pthread_create(&s->worker, NULL, worker_main, s) == 0 ? 0 : -1;
}

void
worker_stop(struct server *s)
{
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	atomic_store(&s->abort, 1);	/* chats still running end now, as shutting_down */
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->worker, NULL);
}
