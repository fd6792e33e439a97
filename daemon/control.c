/* control.c - the inference child's control plane: messages from the privileged parent
 * (the verdict log's descriptor, policy texts), reloads asked for by clients (control
 * users only), and the drain on SIGTERM. Loop thread only. */
#include "daemon/server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "daemon/chan.h"
#include "daemon/http.h"
#include "daemon/priv.h"
#include "daemon/log.h"
#include "policy/policy.h"

static int
control_allowed(const struct server *s, const struct conn *c)
{
	const struct config *cfg = s->cfg;

	if (cfg->n_control_uid == 0 && cfg->n_control_gid == 0)
		return c->uid == 0 || c->uid == geteuid();
	for (int i = 0; i < cfg->n_control_uid; i++)
		if (cfg->control_uid[i] == c->uid)
			return 1;
	for (int i = 0; i < cfg->n_control_gid; i++)
		if (cfg->control_gid[i] == c->gid)
			return 1;
	return 0;
}

static void
answer_waiters(struct server *s, uint64_t gen, const struct job *j)
{
	struct waiter *w, *nx;

	for (w = TAILQ_FIRST(&s->waiters); w; w = nx) {
		nx = TAILQ_NEXT(w, link);
		if (w->gen > gen)
			continue;
		TAILQ_REMOVE(&s->waiters, w, link);
		w->conn->reload_wait--;
		if (w->conn->bev) {
			if (j == NULL || j->status != PROTO_OK)
				conn_send_error(w->conn, &w->req, PROTO_RELOAD_FAILED,
				    j ? j->err_msg : "the privileged process did not answer");
			else {
				json_t *b = json_object();
				for (int i = 0; i < s->n_pol; i++)
					json_object_set_new(b, s->cfg->policy[i].name,
					    json_string(policy_hash(s->pol[i])));
				conn_send_ok(w->conn, &w->req, "policies", b);
				json_decref(b);
			}
		}
		conn_job_done(w->conn);
		conn_release(w->conn);
		proto_request_free(&w->req);
		free(w);
	}
}

void
control_reload_request(struct server *s, struct conn *c, struct request *r)
{
	struct waiter *w;

	if (!control_allowed(s, c)) {
		s->st.forbidden++;
		conn_send_error(c, r, PROTO_FORBIDDEN, "reload is for the control users "
		    "(control_uids, control_gids)");
		proto_request_free(r);
		return;
	}
	if (s->chan == NULL || (w = calloc(1, sizeof(*w))) == NULL) {
		conn_send_error(c, r, PROTO_INTERNAL, "cannot reach the privileged process");
		proto_request_free(r);
		return;
	}
	w->conn = c;
	w->req = *r;
	w->gen = ++s->reload_gen;
	c->refs++;
	c->inflight++;
	c->reload_wait++;
	TAILQ_INSERT_TAIL(&s->waiters, w, link);
	if (chan_send(s->chan, CHAN_RELOAD, &w->gen, sizeof(w->gen), -1) == -1) {
		log_warn("asking the privileged process for a reload");
		answer_waiters(s, w->gen, NULL);
	}
}

/* policy texts from the parent: a reload job for the worker (parsing happens there) */
static void
got_policies(struct server *s, const unsigned char *d, size_t len)
{
	struct chan_policy p[CONFIG_MAX_POLICIES];
	uint64_t gen;
	struct job *j;
	int n;

	if (len < 16 || (n = chan_policies_decode(d + 16, len - 16, p, CONFIG_MAX_POLICIES)) !=
	    s->n_pol) {
		log_warnx("reload: a malformed message from the privileged process");
		return;
	}
	memcpy(&gen, d, 8);
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->kind = JOB_RELOAD;
	j->gen = gen;
	memcpy(&j->seq, d + 8, 8);
	for (int i = 0; i < n; i++) {
		if (!p[i].ok) {
			j->status = PROTO_RELOAD_FAILED;
			snprintf(j->err_msg, sizeof(j->err_msg), "%.*s", (int)p[i].len, p[i].text);
		}
		if ((j->text[i] = malloc(p[i].len + 1)) == NULL) {
			job_free(j);
			return;
		}
		memcpy(j->text[i], p[i].text, p[i].len);
		j->text[i][p[i].len] = '\0';
		j->text_len[i] = p[i].len;
	}
	if (j->status != PROTO_OK) {	/* the parent could not read a file: no job to run */
		s->st.reloads_failed++;
		log_warnx("reload refused, the old policies stay: %s", j->err_msg);
		answer_waiters(s, gen ? gen : 0, j);
		job_free(j);
		return;
	}
	if (s->reloading) {	/* one at a time; the newest texts wait */
		if (s->reload_next) {
			if (j->gen < s->reload_next->gen)
				j->gen = s->reload_next->gen;
			job_free(s->reload_next);
		}
		s->reload_next = j;
		return;
	}
	s->reloading = 1;
	worker_submit(s, j, 1);
}

void
control_reload_done(struct server *s, struct job *j)
{
	if (j->status != PROTO_OK) {
		s->st.reloads_failed++;
		log_warnx("reload failed, the old policies stay: %s", j->err_msg);
	} else {
		s->st.reloads_ok++;
		/* the parent gives these texts to the next child, should we crash */
		if (s->chan && chan_send(s->chan, CHAN_RELOADED, &j->seq, 8, -1) == -1)
			log_warn("confirming the reload to the privileged process");
	}
	/* each slot uses what the classifier says it uses; free only what nobody uses */
	for (int i = 0; i < s->n_pol; i++) {
		const struct policy *now = classifier_policy(s->cls, i);
		if (j->newpol[i] != NULL && now == j->newpol[i]) {
			policy_free(s->pol[i]);
			s->pol[i] = j->newpol[i];
			log_info("policy '%s' loaded (hash %.16s)", s->cfg->policy[i].name,
			    policy_hash(s->pol[i]));
		} else
			policy_free(j->newpol[i]);
		j->newpol[i] = NULL;
	}
	s->reloading = 0;
	if (j->gen)
		answer_waiters(s, j->gen, j);
	if (s->reload_next) {
		struct job *n = s->reload_next;
		s->reload_next = NULL;
		s->reloading = 1;
		worker_submit(s, n, 1);
	}
}

static void
chan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct chan_msg m;
	int r;

	(void)fd; (void)what;
	if ((r = chan_read(s->chan)) <= 0) {
		/* the parent is gone: nobody can restart us or pass the log; finish cleanly */
		log_warnx("the privileged process went away: shutting down");
		event_del(s->ev_chan);
		raise(SIGTERM);
		return;
	}
	while ((r = chan_next(s->chan, &m)) == 1) {
		switch (m.type) {
		case CHAN_LOG_FD:
			vlog_set_fd(&s->vlog, m.fd);
			m.fd = -1;
			break;
		case CHAN_LOG_ERROR:
			s->st.log_reopen_errors++;
			snprintf(s->vlog.last_error, sizeof(s->vlog.last_error), "reopen: %s",
			    (char *)m.data);
			break;
		case CHAN_POLICIES:
			got_policies(s, m.data, m.len);
			break;
		case CHAN_KEYS:
			if (http_keys_set(s, (const char *)m.data, m.len) == 0)
				log_info("HTTP: bearer keys reloaded");
			break;
		default:
			log_warnx("unknown message %u from the privileged process", m.type);
		}
		chan_msg_free(&m);
	}
	if (r == -1)
		log_warnx("the channel from the privileged process is corrupt");
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct conn *c;
	int pending = 0;

	(void)fd; (void)what;
	TAILQ_FOREACH(c, &s->conns, link)
		if (c->bev && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			pending = 1;
	/* HTTP requests answered and written (streams too), or their clients gone */
	if (http_inflight(s) > 0)
		pending = 1;
	/* answers written (or a second past the bound): leave the loop */
	if (!pending || now_ms() - s->t_drain > s->cfg->drain_ms + 1000.0)
		event_base_loopexit(s->base, NULL);
}

void
control_check_drained(struct server *s)
{
	int idle;

	pthread_mutex_lock(&s->mu);
	idle = TAILQ_EMPTY(&s->queue) && !s->working && TAILQ_EMPTY(&s->done) &&
	    atomic_load(&s->chats_active) == 0;
	pthread_mutex_unlock(&s->mu);
	if (idle && !evtimer_pending(s->ev_flush, NULL)) {
		struct timeval t = { 0, 20000 };
		event_free(s->ev_flush);
		s->ev_flush = event_new(s->base, -1, EV_PERSIST, flush_cb, s);
		evtimer_add(s->ev_flush, &t);
	}
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd; (void)what;
	log_warnx("shutdown: %d ms passed, failing the requests still queued", s->cfg->drain_ms);
	atomic_store(&s->abort, 1);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	(void)what;
	if (sig == SIGHUP) {
		/* the parent owns reloads; a SIGHUP sent to us is passed on as a request */
		if (s->chan)
			chan_send(s->chan, CHAN_RELOAD, &(uint64_t){ 0 }, 8, -1);
		return;
	}
	control_shutdown(s, 0, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

void
control_shutdown(struct server *s, int code, const char *why)
{
	if (s->draining)
		return;
	log_info("%s: draining", why);
	s->draining = 1;
	s->exit_code = code;
	s->t_drain = now_ms();
	if (s->lis) {
		evconnlistener_free(s->lis);
		s->lis = NULL;
	}
	http_stop_accepting(s);
	struct timeval t = { s->cfg->drain_ms / 1000, (s->cfg->drain_ms % 1000) * 1000 };
	evtimer_add(s->ev_drain, &t);
	control_check_drained(s);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	uint64_t cnt;

	(void)what;
	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("completion queue");
	request_completions(s);
}

void
control_start(struct server *s)
{
	int sigs[3] = { SIGHUP, SIGTERM, SIGINT };
	sigset_t set;

	TAILQ_INIT(&s->waiters);
	for (int i = 0; i < 3; i++) {
		s->ev_sig[i] = evsignal_new(s->base, sigs[i], signal_cb, s);
		evsignal_add(s->ev_sig[i], NULL);
	}
	/* the handlers are in place: signals blocked since main may now arrive */
	sigemptyset(&set);
	for (int i = 0; i < 3; i++)
		sigaddset(&set, sigs[i]);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	s->ev_done = event_new(s->base, s->done_fd, EV_READ | EV_PERSIST, done_cb, s);
	event_add(s->ev_done, NULL);
	s->ev_drain = evtimer_new(s->base, drain_timeout_cb, s);
	s->ev_flush = evtimer_new(s->base, flush_cb, s);
	if (s->chan) {
		s->ev_chan = event_new(s->base, chan_fd(s->chan), EV_READ | EV_PERSIST, chan_cb, s);
		event_add(s->ev_chan, NULL);
	}
}

void
control_stop(struct server *s)
{
	struct waiter *w;

	while ((w = TAILQ_FIRST(&s->waiters)) != NULL) {
		TAILQ_REMOVE(&s->waiters, w, link);
		conn_release(w->conn);
		proto_request_free(&w->req);
		free(w);
	}
	job_free(s->reload_next);
	s->reload_next = NULL;
	for (int i = 0; i < 3; i++)
		event_free(s->ev_sig[i]);
	event_free(s->ev_done);
	event_free(s->ev_drain);
	if (s->ev_resume)
		event_free(s->ev_resume);
	event_free(s->ev_flush);
	if (s->ev_chan)
		event_free(s->ev_chan);
}
