/* worker.c - the inference thread: takes jobs from the bounded queue, batches classify jobs
 * of one policy through the classifier, and hands results back to the loop thread. */
#include "daemon/guardd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "daemon/log.h"

double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
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

static void
complete(struct server *s, struct job **jobs, int n)
{
	uint64_t one = 1;

	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < n; i++)
		TAILQ_INSERT_TAIL(&s->done, jobs[i], link);
	s->working = 0;
	pthread_mutex_unlock(&s->mu);
	if (write(s->done_fd, &one, sizeof(one)) != sizeof(one))
		log_warn("worker: notify");
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

static void
run_reload(struct server *s, struct job *j)
{
	struct err e;
	int k;

	for (k = 0; k < s->n_pol; k++)
		if (classifier_set_policy(s->cls[0], k, j->newpol[k], &e) == -1)
			break;
	if (k < s->n_pol) {
		if (snprintf(j->err_msg, sizeof(j->err_msg), "policy '%.64s': %s", s->cfg->policy[k].name,
		    e.msg) >= (int)sizeof(j->err_msg))
			j->err_msg[sizeof(j->err_msg) - 1] = '\0';
		j->err_code = ERR_RELOAD_FAILED;
		while (--k >= 0)	/* back to the old policies everywhere */
			classifier_set_policy(s->cls[0], k, s->pol[k], &e);
	}
}

static void *
worker_main(void *arg)
{
	struct server *s = arg;
	struct job *jobs[64];
	const struct conv *convs[64];

	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (TAILQ_EMPTY(&s->queue) && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (TAILQ_EMPTY(&s->queue) && s->stop) {
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		struct job *first = TAILQ_FIRST(&s->queue);
		TAILQ_REMOVE(&s->queue, first, link);
		s->queued--;
		s->working = 1;
		int n = 0;
		jobs[n++] = first;
		if (first->kind == JOB_CLASSIFY) {
			/* requests waiting together for the same policy share one forward pass */
			int max = s->cfg->batch;
			struct job *j, *nx;
			for (j = TAILQ_FIRST(&s->queue); j && n < max; j = nx) {
				nx = TAILQ_NEXT(j, link);
				if (j->kind == JOB_CLASSIFY && j->pol == first->pol) {
					TAILQ_REMOVE(&s->queue, j, link);
					s->queued--;
					jobs[n++] = j;
				}
			}
		}
		pthread_mutex_unlock(&s->mu);
		if (first->kind == JOB_RELOAD) {
			run_reload(s, first);
			complete(s, jobs, 1);
			continue;
		}
		/* drop what nobody waits for; fail what is late */
		int m = 0;
		struct job *live[64];
		double t = now_ms();
		for (int i = 0; i < n; i++) {
			struct job *j = jobs[i];
			if (atomic_load(&j->conn->dead))
				j->dropped = 1;
			else if (atomic_load(&s->abort)) {
				j->err_code = ERR_SHUTTING_DOWN;
				snprintf(j->err_msg, sizeof(j->err_msg), "the daemon is shutting down");
			} else if (t > j->deadline) {
				j->err_code = ERR_TIMEOUT;
				snprintf(j->err_msg, sizeof(j->err_msg), "deadline passed while queued");
			} else {
				live[m] = j;
				convs[m++] = &j->req.conv;
			}
		}
		if (m > 0) {
			struct verdict vs[64];
			struct batch_ctx bc = { s, live, m };
			struct classifier *cl = s->cls[0];
			classifier_set_cancel(cl, cancel_cb, &bc);
			classifier_run(cl, first->pol, convs, (size_t)m, vs);
			classifier_set_cancel(cl, NULL, NULL);
			t = now_ms();
			for (int i = 0; i < m; i++) {
				struct job *j = live[i];
				if (atomic_load(&j->conn->dead)) {
					j->dropped = 1;
					verdict_free(&vs[i]);
				} else if (t > j->deadline) {
					j->err_code = ERR_TIMEOUT;
					snprintf(j->err_msg, sizeof(j->err_msg), "deadline of %.0f ms passed",
					    j->deadline - j->t_arrive);
					verdict_free(&vs[i]);
				} else if (atomic_load(&s->abort) && strcmp(vs[i].error, "cancelled") == 0) {
					j->err_code = ERR_SHUTTING_DOWN;
					snprintf(j->err_msg, sizeof(j->err_msg), "the daemon is shutting down");
					verdict_free(&vs[i]);
				} else {
					j->v = vs[i];
					j->have_verdict = 1;
				}
			}
		}
		complete(s, jobs, n);
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
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->worker, NULL);
}
