/* guardd.h - the daemon's shared state: the loop thread (server.c) does all I/O, the worker
 * thread (worker.c) all inference; they meet at the job queue and the completion list. */
#ifndef GUARDD_GUARDD_H
#define GUARDD_GUARDD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "classifier/verdict.h"
#include "daemon/config.h"
#include "proto/proto.h"
#include "daemon/vlog.h"

struct event_base;
struct bufferevent;
struct evconnlistener;
struct event;
struct classifier;
struct model;
struct policy;

#define LATENCY_RING 4096

struct conn {
	TAILQ_ENTRY(conn) link;
	struct server *s;
	struct bufferevent *bev;	/* NULL once closed */
	uint64_t id;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int refs;			/* the connection itself + its jobs (loop thread only) */
	atomic_int dead;		/* read by the worker: drop its queued work */
	int closing;			/* close once the output is written */
};

enum job_kind { JOB_CLASSIFY, JOB_RELOAD };

struct job {
	TAILQ_ENTRY(job) link;
	enum job_kind kind;
	struct conn *conn;		/* NULL: a reload from SIGHUP */
	struct request req;
	int pol;
	double t_arrive, deadline;	/* ms, monotonic */
	struct verdict v;
	int have_verdict;
	int dropped;			/* its client left: no answer, no log line */
	const char *err_code;
	char err_msg[1024];
	struct policy *newpol[CONFIG_MAX_POLICIES];	/* reload: in; the old ones out */
};

TAILQ_HEAD(jobq, job);

struct stats {
	uint64_t conns_total, conns_rejected, requests, by_op[4], decisions[4], errors_total;
	uint64_t busy, timeouts, bad_requests, dropped, reloads_ok, reloads_failed;
	double lat[LATENCY_RING];
	uint64_t n_lat;
};

struct server {
	struct config *cfg;
	struct model *model;
	struct policy *pol[CONFIG_MAX_POLICIES];
	struct classifier *cls[CONFIG_MAX_POLICIES];
	int n_pol;
	struct event_base *base;
	struct evconnlistener *lis;
	int activated;			/* the socket came from systemd */
	struct event *ev_sig[3], *ev_done, *ev_drain, *ev_resume, *ev_flush;
	int done_fd;			/* eventfd: the worker's completions are ready */
	TAILQ_HEAD(, conn) conns;
	int n_conns;
	uint64_t next_conn;
	/* queue */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct jobq queue, done;
	int queued, working, reloading, stop;
	atomic_int abort;		/* shutdown deadline passed: cancel and fail */
	pthread_t worker;
	int draining;
	double t_start, t_drain;
	struct stats st;
	struct vlog vlog;
};

double now_ms(void);

/* worker.c */
int worker_start(struct server *s);
void worker_stop(struct server *s);
/* Queues a job; returns -1 when the queue is full (the caller answers busy). */
int worker_submit(struct server *s, struct job *j, int force);

/* server.c */
int server_listen(struct server *s, int *exit_code);
void server_run(struct server *s);
void server_reload(struct server *s, struct conn *from, const struct request *req);

#endif
