/* server.h - the inference child's shared state. The loop thread (conn.c, request.c,
 * stats.c, control.c) does the I/O; the worker thread (worker.c) runs the model; they meet
 * at the bounded job queue and the completion list (eventfd). */
#ifndef GUARDD_SERVER_H
#define GUARDD_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "classifier/verdict.h"
#include "daemon/config.h"
#include "daemon/vlog.h"
#include "proto/frame.h"
#include "proto/proto.h"

struct event_base;
struct bufferevent;
struct evconnlistener;
struct event;
struct classifier;
struct model;
struct policy;
struct chan;
struct generator;
struct pool;
struct chatrun;
struct hreq;
struct http;

struct conn {
	TAILQ_ENTRY(conn) link;
	struct server *s;
	struct bufferevent *bev;	/* NULL once closed */
	struct event *timer;		/* idle / read / write timeouts */
	struct mp_framer fr;		/* framing state of the request being read */
	uint64_t id;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int refs;			/* the connection itself + its jobs (loop thread only) */
	atomic_int dead;		/* read by the worker: drop its queued work */
	int inflight;			/* requests queued or running */
	int closing;			/* close once the output is written */
	int eof;			/* the peer shut down its side: answer, then close */
	int paused;			/* reading paused (in-flight cap or output high water) */
	int reload_wait;		/* waits for a reload's answer */
	double t_active;		/* last input or output progress, ms */
	double t_frame;			/* first byte of the partial request, 0 if none */
	struct hreq *hr;		/* set: an HTTP request's stand-in (http.h), no bev */
};

enum job_kind { JOB_CLASSIFY, JOB_RELOAD, JOB_CHAT };

/* how a chat ended (the wire's finish_reason) */
enum chat_finish { FINISH_NONE, FINISH_STOP, FINISH_LENGTH, FINISH_CONTENT_FILTER };

struct job {
	TAILQ_ENTRY(job) link;
	enum job_kind kind;
	struct conn *conn;		/* NULL for reloads */
	struct request req;
	int pol;
	double t_arrive, deadline;	/* ms, monotonic */
	struct verdict v;
	int have_verdict;
	int dropped;			/* its client left: no answer, no log line */
	enum proto_status status;
	char err_msg[1024];
	uint64_t gen;			/* reload: answers the waiters up to this one */
	uint64_t seq;			/* reload: the parent's number for these texts */
	/* reload: policy texts in, parsed policies out (the old ones on success) */
	char *text[CONFIG_MAX_POLICIES];
	size_t text_len[CONFIG_MAX_POLICIES];
	struct policy *newpol[CONFIG_MAX_POLICIES];
	/* chat: the worker's state while it runs (chat.c), the outcome for the answer */
	struct chatrun *run;
	struct verdict rv;		/* the last response check */
	int have_rverdict;
	enum chat_finish finish;
	char *out;			/* released text (malloc'd), out_len bytes */
	size_t out_len;
	char *refusal;			/* with FINISH_CONTENT_FILTER */
	int n_prompt, n_generated, n_released, n_checks;
	double check_ms, t_first;	/* t_first: when the first text was released, 0 if none */
};

/* A piece of a streamed answer, judged safe, on its way to the loop thread. */
struct delta {
	TAILQ_ENTRY(delta) link;
	struct job *job;
	size_t len;
	char text[];
};

TAILQ_HEAD(jobq, job);
TAILQ_HEAD(deltaq, delta);

/* a client waiting for a reload it asked for: answered by the first reload whose policy
 * texts the parent read after the request (gen) */
struct waiter {
	TAILQ_ENTRY(waiter) link;
	struct conn *conn;
	struct request req;
	uint64_t gen;
};

/* latency histogram: log-spaced buckets, so percentiles cost O(buckets), never a sort */
#define LAT_BUCKETS 128
#define STATS_MAX_CATS 33

struct stats {
	uint64_t conns_total, conns_rejected, requests, by_op[OP_N], decisions[4], errors_total;
	uint64_t busy, timeouts, bad_requests, dropped, reloads_ok, reloads_failed, forbidden;
	uint64_t idle_closed, read_timeouts, write_timeouts, paused;
	uint64_t bytes_in, bytes_scanned;
	uint64_t lat[LAT_BUCKETS], n_lat;
	double lat_sum_ms;		/* the histogram's sum (/metrics) */
	uint64_t log_reopen_errors;
	/* chats: outcomes, tokens, guard checks of responses */
	uint64_t chats, chat_finish[4], chat_blocked_request, tokens_generated, tokens_released;
	uint64_t prompt_tokens, checks;
	double check_ms, first_ms;
	uint64_t n_first;
	/* verdicts by role (0: the user's turn, 1: a response) and decision, and by category
	 * (indexed as the default policy's categories; the rest in the last slot) */
	uint64_t verdicts[2][4];
	uint64_t categories[2][STATS_MAX_CATS];
	/* the HTTP front and proxy mode */
	uint64_t http_requests, http_errors, stream_blocks;
	uint64_t upstream_requests, upstream_errors, upstream_blocked_requests;
};

struct server {
	struct config *cfg;
	struct model *model;
	struct policy *pol[CONFIG_MAX_POLICIES];
	struct classifier *cls;		/* one work context; a prefix-cache slot per policy */
	struct model *gen_model;	/* the chat model, NULL when none is hosted */
	struct generator *gen;		/* its sequences, decoded together */
	struct pool *pool;		/* the threads both models run on */
	int gen_format;			/* enum chat_format, resolved */
	int n_pol;
	struct event_base *base;
	struct evconnlistener *lis;
	struct http *http;		/* the HTTP front (http.c); NULL when none is configured */
	int http_fd[CONFIG_MAX_HTTP];	/* its listening sockets, from the parent */
	int n_http_fd;
	int listen_fd;
	int activated;			/* the socket came from systemd */
	struct chan *chan;		/* to the privileged parent; NULL when run alone */
	pid_t parent_pid;
	int restarts;			/* how many children the parent started before us */
	struct event *ev_sig[3], *ev_done, *ev_drain, *ev_resume, *ev_flush, *ev_chan;
	int done_fd;			/* eventfd: the worker's completions are ready */
	TAILQ_HEAD(, conn) conns;
	int n_conns;
	uint64_t next_conn;
	/* queue */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct jobq queue, done;
	struct deltaq deltas;
	int queued, working, stop;
	int hold;			/* the loop is queueing one batch: take nothing yet */
	TAILQ_HEAD(, job) chats;	/* generating (worker thread only) */
	atomic_int chats_active;
	atomic_int abort;		/* shutdown deadline passed: cancel and fail */
	pthread_t worker;
	/* reloads: one runs at a time; texts that arrive meanwhile wait (the newest wins) */
	int reloading;
	struct job *reload_next;
	uint64_t reload_gen;		/* reloads asked of the parent so far */
	TAILQ_HEAD(, waiter) waiters;
	int draining;
	int exit_code;			/* of the child: 0, or EX_TEMPFAIL to be restarted */
	atomic_int broken;		/* the model's pages faulted (sigbus.h): restart */
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
/* on: the worker takes no new work until called with off, so that the jobs queued meanwhile
 * (the inputs of one HTTP request) are taken as one batch. */
void worker_hold(struct server *s, int on);
void job_free(struct job *j);
/* Completes jobs: to the loop thread's done list. */
void worker_complete(struct server *s, struct job **jobs, int n);

/* chat.c (worker thread): chats from admission to their last token */
/* Jobs of a classify batch that are chats: render their prompts before the request check;
 * a chat whose prompt cannot be built fails here (bad_request). */
void chat_prepare(struct server *s, struct job *j);
/* After the request check: answer a blocked chat, else start generating it. Returns 1 when
 * the job now runs (the worker keeps it), 0 when it is complete. */
int chat_admit(struct server *s, struct job *j);
/* One scheduling step of every running chat: drop the gone, one forward pass for all,
 * response checks where due, deltas out, finished chats completed. */
void chat_step(struct server *s);
/* Free generator sequences (and guard streams) for new chats. */
int chat_free_slots(struct server *s);
void chat_run_free(struct job *j);

/* conn.c: connections */
int conn_listen(struct server *s);
void conn_send(struct conn *c, const void *p, size_t n);
void conn_send_error(struct conn *c, const struct request *r, enum proto_status st,
    const char *msg);
void conn_send_ok(struct conn *c, const struct request *r, const char *key,
    const struct json_t *body);
/* A job of this connection finished (answered or dropped): may resume reading or close. */
void conn_job_done(struct conn *c);
void conn_release(struct conn *c);
void conn_close(struct conn *c, const char *why);
void conn_close_all(struct server *s);

/* request.c: one decoded request; completions from the worker */
void request_handle(struct conn *c, struct request *r);
void request_completions(struct server *s);

/* stats.c */
void stats_latency(struct stats *st, double ms);
/* The upper bound (ms) of latency bucket b; the last bucket has none. */
double stats_bucket_le(int b);
struct json_t *stats_json(struct server *s);

/* control.c: signals, reloads (texts from the parent), drain */
void control_start(struct server *s);
void control_stop(struct server *s);
void control_reload_request(struct server *s, struct conn *c, struct request *r);
void control_reload_done(struct server *s, struct job *j);
void control_check_drained(struct server *s);
/* Stops accepting, finishes what is queued (bounded by drain_ms), then leaves the loop;
 * the child then exits with code. */
void control_shutdown(struct server *s, int code, const char *why);

#endif
