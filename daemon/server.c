/* server.c - the loop thread: the Unix socket, connections as small state machines,
 * framing and dispatch, answers, the verdict log, signals (SIGHUP reload, SIGTERM drain). */
#include "daemon/guardd.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <msgpack.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "core/model.h"
#include "util/sha256.h"
#include "daemon/log.h"
#include "proto/mp.h"
#include "policy/policy.h"

#define MAX_OUTPUT (64u << 20)	/* a client that reads nothing is cut off here */

static void conn_release(struct conn *c);
static void check_drained(struct server *s);

static void
conn_close(struct conn *c, const char *why)
{
	struct server *s = c->s;

	if (c->bev == NULL)
		return;
	log_debug("connection %llu closed: %s", (unsigned long long)c->id, why);
	atomic_store(&c->dead, 1);	/* its queued work is dropped */
	bufferevent_free(c->bev);
	c->bev = NULL;
	TAILQ_REMOVE(&s->conns, c, link);
	s->n_conns--;
	conn_release(c);
}

static void
conn_release(struct conn *c)
{
	if (--c->refs == 0)
		free(c);
}

static void
send_buf(struct conn *c, msgpack_sbuffer *sb)
{
	if (c->bev == NULL)
		return;
	bufferevent_write(c->bev, sb->data, sb->size);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > MAX_OUTPUT)
		conn_close(c, "output not read");
}

static void
send_error(struct conn *c, const struct request *r, const char *code, const char *msg)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_error(&sb, r, code, msg);
	send_buf(c, &sb);
	msgpack_sbuffer_destroy(&sb);
	c->s->st.errors_total++;
}

static void
send_ok(struct conn *c, const struct request *r, const char *key, json_t *body)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_ok(&sb, r, key, body);
	send_buf(c, &sb);
	msgpack_sbuffer_destroy(&sb);
}

/* answer, then close once the answer is written (framing is lost, or the peer is refused) */
static void
send_fatal(struct conn *c, const struct request *r, const char *code, const char *msg)
{
	send_error(c, r, code, msg);
	c->closing = 1;
	if (c->bev) {
		bufferevent_disable(c->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			conn_close(c, code);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static json_t *
stats_json(struct server *s)
{
	json_t *o = json_object(), *pol = json_object(), *lat = json_object(), *q = json_object();
	size_t n = s->st.n_lat < LATENCY_RING ? s->st.n_lat : LATENCY_RING;
	double *v = malloc((n ? n : 1) * sizeof(double));

	memcpy(v, s->st.lat, n * sizeof(double));
	qsort(v, n, sizeof(double), cmp_double);
	json_object_set_new(lat, "count", json_integer((json_int_t)s->st.n_lat));
	const double ps[3] = { 0.5, 0.9, 0.99 };
	const char *pn[3] = { "p50", "p90", "p99" };
	for (int i = 0; i < 3; i++)
		json_object_set_new(lat, pn[i], n ? json_real(v[(size_t)(ps[i] * (double)(n - 1) + 0.5)]) : json_null());
	free(v);
	pthread_mutex_lock(&s->mu);
	json_object_set_new(q, "depth", json_integer(s->queued));
	json_object_set_new(q, "working", json_integer(s->working));
	pthread_mutex_unlock(&s->mu);
	json_object_set_new(q, "max", json_integer(s->cfg->max_queue));
	for (int i = 0; i < s->n_pol; i++)
		json_object_set_new(pol, s->cfg->policy[i].name, json_pack("{s:s, s:s, s:b}", "name",
		    policy_name(s->pol[i]), "hash", policy_hash(s->pol[i]), "on_error_blocks",
		    policy_on_error(s->pol[i]) == ACTION_BLOCK));
	json_object_set_new(o, "uptime_s", json_real((now_ms() - s->t_start) / 1e3));
	json_object_set_new(o, "connections", json_pack("{s:i, s:I, s:I}", "current", s->n_conns,
	    "total", (json_int_t)s->st.conns_total, "rejected", (json_int_t)s->st.conns_rejected));
	json_object_set_new(o, "requests", json_pack("{s:I, s:I, s:I, s:I, s:I}", "total",
	    (json_int_t)s->st.requests, "classify", (json_int_t)s->st.by_op[OP_CLASSIFY],
	    "ping", (json_int_t)s->st.by_op[OP_PING], "stats", (json_int_t)s->st.by_op[OP_STATS],
	    "reload", (json_int_t)s->st.by_op[OP_RELOAD]));
	json_object_set_new(o, "verdicts", json_pack("{s:I, s:I, s:I, s:I}", "allow",
	    (json_int_t)s->st.decisions[0], "flag", (json_int_t)s->st.decisions[1], "block",
	    (json_int_t)s->st.decisions[2], "error", (json_int_t)s->st.decisions[3]));
	json_object_set_new(o, "errors", json_pack("{s:I, s:I, s:I, s:I, s:I}", "total",
	    (json_int_t)s->st.errors_total, "busy", (json_int_t)s->st.busy, "timeout",
	    (json_int_t)s->st.timeouts, "bad_request", (json_int_t)s->st.bad_requests, "dropped",
	    (json_int_t)s->st.dropped));
	json_object_set_new(o, "queue", q);
	json_object_set_new(o, "latency_ms", lat);
	json_object_set_new(o, "log", json_pack("{s:s?, s:I, s:I}", "path", s->vlog.path,
	    "lines", (json_int_t)s->vlog.lines, "write_errors", (json_int_t)s->vlog.errors));
	json_object_set_new(o, "model", json_pack("{s:s, s:s, s:s}", "path", model_path(s->model),
	    "hash", model_hash(s->model), "weight_type", model_weight_type(s->model)));
	json_object_set_new(o, "policies", pol);
	json_object_set_new(o, "reloads", json_pack("{s:I, s:I}", "ok", (json_int_t)s->st.reloads_ok,
	    "failed", (json_int_t)s->st.reloads_failed));
	return o;
}

static void
handle_frame(struct conn *c, const unsigned char *p, size_t n)
{
	struct server *s = c->s;
	struct request r;
	struct err e;

	s->st.requests++;
	if (proto_decode(p, n, s->cfg->max_messages, &r, &e) == -1) {
		s->st.bad_requests++;
		send_error(c, &r, strncmp(e.msg, "op: unknown", 11) == 0 ? ERR_UNKNOWN_OP :
		    ERR_BAD_REQUEST, e.msg);
		proto_request_free(&r);
		return;
	}
	s->st.by_op[r.op]++;
	if (s->draining) {
		send_error(c, &r, ERR_SHUTTING_DOWN, "the daemon is shutting down");
		proto_request_free(&r);
		return;
	}
	switch (r.op) {
	case OP_PING: {
		json_t *b = json_pack("{s:i, s:s}", "protocol", PROTO_VERSION, "model",
		    model_hash(s->model));
		send_ok(c, &r, "pong", b);
		json_decref(b);
		break;
	}
	case OP_STATS: {
		json_t *b = stats_json(s);
		send_ok(c, &r, "stats", b);
		json_decref(b);
		break;
	}
	case OP_RELOAD:
		server_reload(s, c, &r);
		break;
	case OP_CLASSIFY: {
		int k = r.policy[0] ? config_policy(s->cfg, r.policy) : 0;
		if (k < 0) {
			snprintf(e.msg, sizeof(e.msg), "no policy named '%s'", r.policy);
			send_error(c, &r, ERR_UNKNOWN_POLICY, e.msg);
			break;
		}
		struct job *j = calloc(1, sizeof(*j));
		if (j == NULL) {
			send_error(c, &r, ERR_INTERNAL, "out of memory");
			break;
		}
		j->kind = JOB_CLASSIFY;
		j->conn = c;
		j->req = r;
		j->pol = k;
		j->t_arrive = now_ms();
		j->deadline = j->t_arrive + (r.deadline_ms && r.deadline_ms < s->cfg->deadline_ms ?
		    r.deadline_ms : s->cfg->deadline_ms);
		if (worker_submit(s, j, 0) == -1) {
			s->st.busy++;
			send_error(c, &r, ERR_BUSY, "the queue is full, try again later");
			free(j);
			break;
		}
		c->refs++;
		return;	/* the job owns the request now */
	}
	}
	proto_request_free(&r);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct server *s = c->s;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t max = s->cfg->max_request_bytes;

	c->refs++;	/* an answer can close the connection: keep c valid until we return */
	while (c->bev != NULL && !c->closing) {
		size_t avail = evbuffer_get_length(in), len = 0;
		if (avail == 0)
			break;
		size_t look = avail < max + 16 ? avail : max + 16;
		unsigned char *p = evbuffer_pullup(in, (ssize_t)look);
		enum mp_frame f = mp_frame_len(p, look, max, &len);
		if (f == MP_FRAME_OK) {
			handle_frame(c, p, len);
			if (c->bev)
				evbuffer_drain(in, len);
			continue;
		}
		if (f == MP_FRAME_MORE && avail <= max)
			break;	/* wait for the rest */
		char msg[128];
		if (f == MP_FRAME_BAD) {
			s->st.bad_requests++;
			snprintf(msg, sizeof(msg), "malformed msgpack at byte %zu of the frame", len);
			send_fatal(c, NULL, ERR_BAD_REQUEST, msg);
		} else {
			snprintf(msg, sizeof(msg), "a request is larger than %zu bytes", max);
			send_fatal(c, NULL, ERR_TOO_LARGE, msg);
		}
		break;
	}
	conn_release(c);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_close(c, "closed after an error");
	else if (c->s->draining)
		check_drained(c->s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_EOF) {
		/* a half-closed peer with a partial frame still gets its error */
		if (evbuffer_get_length(bufferevent_get_input(bev)) > 0 && !c->closing) {
			send_fatal(c, NULL, ERR_BAD_REQUEST, "truncated request: the connection ended "
			    "inside a frame");
			return;
		}
		if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) > 0)
			return;	/* write_cb closes once the error is out */
		conn_close(c, "end of input");
	} else if (what & BEV_EVENT_ERROR)
		conn_close(c, "socket error");
}

static int
peer_allowed(const struct config *cfg, uid_t uid, gid_t gid)
{
	if (cfg->n_allow_uid == 0 && cfg->n_allow_gid == 0)
		return 1;
	for (int i = 0; i < cfg->n_allow_uid; i++)
		if (cfg->allow_uid[i] == uid)
			return 1;
	for (int i = 0; i < cfg->n_allow_gid; i++)
		if (cfg->allow_gid[i] == gid)
			return 1;
	return 0;
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct server *s = arg;
	struct conn *c = calloc(1, sizeof(*c));
	struct ucred cr;
	socklen_t crl = sizeof(cr);

	(void)l; (void)sa; (void)len;
	if (c == NULL) {
		close(fd);
		return;
	}
	c->s = s;
	c->id = ++s->next_conn;
	c->refs = 1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) == 0) {
		c->uid = cr.uid;
		c->gid = cr.gid;
		c->pid = cr.pid;
	} else {
		c->uid = (uid_t)-1;
		c->gid = (gid_t)-1;
	}
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	s->n_conns++;
	s->st.conns_total++;
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (!peer_allowed(s->cfg, c->uid, c->gid)) {
		s->st.conns_rejected++;
		log_warnx("refused a client: uid %u gid %u pid %d is not allowed", (unsigned)c->uid,
		    (unsigned)c->gid, (int)c->pid);
		send_fatal(c, NULL, ERR_FORBIDDEN, "this user may not use guardd");
	} else if (s->n_conns > s->cfg->max_connections) {
		s->st.conns_rejected++;
		send_fatal(c, NULL, ERR_TOO_MANY, "too many connections");
	}
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd; (void)what;
	if (s->lis && !s->draining)
		evconnlistener_enable(s->lis);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server *s = arg;
	struct timeval one = { 1, 0 };

	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
		/* out of descriptors: pause accepting for a moment instead of spinning */
		log_warn("accept");
		evconnlistener_disable(l);
		evtimer_add(s->ev_resume, &one);
	} else
		log_warn("accept");
}

/* the log line of one verdict */
static void
log_verdict(struct server *s, struct job *j, json_t *v)
{
	json_t *o = json_deep_copy(v);
	char ts[64];
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
	json_object_set_new(o, "time", json_string(ts));
	json_object_set_new(o, "request_id", proto_id_json(&j->req));
	json_object_set_new(o, "peer", json_pack("{s:I, s:I, s:I}", "uid", (json_int_t)j->conn->uid,
	    "gid", (json_int_t)j->conn->gid, "pid", (json_int_t)j->conn->pid));
	json_object_set_new(o, "policy_name", json_string(s->cfg->policy[j->pol].name));
	if (s->vlog.content != LOG_CONTENT_NONE) {
		json_t *msgs = json_array();
		for (size_t i = 0; i < j->req.conv.n; i++) {
			const struct conv_msg *m = &j->req.conv.msg[i];
			json_t *parts = json_array();
			for (size_t k = 0; k < m->n_parts; k++)
				json_array_append_new(parts, json_stringn(m->parts[k], m->part_len[k]));
			json_array_append_new(msgs, json_pack("{s:s, s:o}", "role",
			    m->assistant ? "assistant" : "user", "content", parts));
		}
		if (s->vlog.content == LOG_CONTENT_FULL)
			json_object_set_new(o, "messages", msgs);
		else {
			char *txt = json_dumps(msgs, JSON_COMPACT);
			char hex[65];
			sha256_hex(txt, strlen(txt), hex);
			json_object_set_new(o, "content_sha256", json_string(hex));
			free(txt);
			json_decref(msgs);
		}
	}
	vlog_write(&s->vlog, o);
	json_decref(o);
}

static void
finish_reload(struct server *s, struct job *j)
{
	if (j->err_code) {
		s->st.reloads_failed++;
		log_warnx("reload failed, the old policies stay: %s", j->err_msg);
		for (int i = 0; i < s->n_pol; i++)
			policy_free(j->newpol[i]);
	} else {
		s->st.reloads_ok++;
		for (int i = 0; i < s->n_pol; i++) {
			policy_free(s->pol[i]);
			s->pol[i] = j->newpol[i];
			log_info("policy '%s' loaded from %s (hash %.16s)", s->cfg->policy[i].name,
			    s->cfg->policy[i].path ? s->cfg->policy[i].path : "built-in",
			    policy_hash(s->pol[i]));
		}
	}
	s->reloading = 0;
	if (j->conn && j->conn->bev) {
		if (j->err_code)
			send_error(j->conn, &j->req, j->err_code, j->err_msg);
		else {
			json_t *b = json_object();
			for (int i = 0; i < s->n_pol; i++)
				json_object_set_new(b, s->cfg->policy[i].name, json_string(policy_hash(s->pol[i])));
			send_ok(j->conn, &j->req, "policies", b);
			json_decref(b);
		}
	}
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct jobq list;
	uint64_t cnt;
	struct job *j;

	(void)what;
	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("completion queue");
	TAILQ_INIT(&list);
	pthread_mutex_lock(&s->mu);
	TAILQ_CONCAT(&list, &s->done, link);
	pthread_mutex_unlock(&s->mu);
	while ((j = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, j, link);
		if (j->kind == JOB_RELOAD)
			finish_reload(s, j);
		else if (j->dropped)
			s->st.dropped++;
		else if (j->err_code) {
			if (strcmp(j->err_code, ERR_TIMEOUT) == 0)
				s->st.timeouts++;
			send_error(j->conn, &j->req, j->err_code, j->err_msg);
		} else {
			json_t *v = verdict_to_json(&j->v, s->pol[j->pol], model_hash(s->model));
			send_ok(j->conn, &j->req, "verdict", v);
			log_verdict(s, j, v);
			json_decref(v);
			s->st.decisions[j->v.decision]++;
			s->st.lat[s->st.n_lat++ % LATENCY_RING] = now_ms() - j->t_arrive;
		}
		if (j->conn)
			conn_release(j->conn);
		verdict_free(&j->v);
		proto_request_free(&j->req);
		free(j);
	}
	if (s->draining)
		check_drained(s);
}

void
server_reload(struct server *s, struct conn *from, const struct request *req)
{
	struct job *j;
	struct err e;

	vlog_reopen(&s->vlog);
	if (s->reloading) {
		if (from)
			send_error(from, req, ERR_RELOAD_FAILED, "a reload is already running");
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->kind = JOB_RELOAD;
	/* parse everything first: a broken file leaves the running policies untouched */
	for (int i = 0; i < s->n_pol; i++) {
		j->newpol[i] = s->cfg->policy[i].path ? policy_load(s->cfg->policy[i].path, &e) :
		    policy_default();
		if (j->newpol[i] == NULL) {
			s->st.reloads_failed++;
			log_warnx("reload refused, the old policies stay: %s", e.msg);
			if (from)
				send_error(from, req, ERR_RELOAD_FAILED, e.msg);
			for (int k = 0; k < i; k++)
				policy_free(j->newpol[k]);
			free(j);
			return;
		}
	}
	if (from) {
		j->conn = from;
		j->req = *req;
		j->req.conv.msg = NULL;
		j->req.conv.n = 0;
		from->refs++;
	}
	s->reloading = 1;
	worker_submit(s, j, 1);	/* the prefix caches are rebuilt on the worker */
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
	/* answers written (or a second passed): leave the loop */
	if (!pending || now_ms() - s->t_drain > s->cfg->drain_ms + 1000.0)
		event_base_loopexit(s->base, NULL);
}

static void
check_drained(struct server *s)
{
	int idle;

	pthread_mutex_lock(&s->mu);
	idle = TAILQ_EMPTY(&s->queue) && !s->working && TAILQ_EMPTY(&s->done);
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
		log_info("SIGHUP: reloading policies, reopening the verdict log");
		server_reload(s, NULL, NULL);
		return;
	}
	if (s->draining)
		return;
	log_info("%s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	s->draining = 1;
	s->t_drain = now_ms();
	if (s->lis) {
		evconnlistener_free(s->lis);
		s->lis = NULL;
	}
	if (!s->activated)
		unlink(s->cfg->listen);
	struct timeval t = { s->cfg->drain_ms / 1000, (s->cfg->drain_ms % 1000) * 1000 };
	evtimer_add(s->ev_drain, &t);
	check_drained(s);
}

/* systemd socket activation: LISTEN_PID is us and LISTEN_FDS >= 1 (the socket is fd 3) */
static int
activated_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid() || atoi(fds) < 1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 3;
}

int
server_listen(struct server *s, int *code)
{
	struct sockaddr_un sun;
	int fd = activated_fd();

	*code = 71;	/* EX_OSERR */
	if ((s->base = event_base_new()) == NULL)
		return -1;
	TAILQ_INIT(&s->conns);
	if (fd >= 0) {
		s->activated = 1;
		evutil_make_socket_nonblocking(fd);
		log_info("listening on the socket passed by systemd");
	} else {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", s->cfg->listen);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
			log_warn("socket");
			return -1;
		}
		/* a stale socket is replaced, a live one means another guardd */
		struct stat st;
		if (lstat(s->cfg->listen, &st) == 0) {
			int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (S_ISSOCK(st.st_mode) && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
				close(probe);
				close(fd);
				*code = 69;	/* EX_UNAVAILABLE */
				log_warnx("%s: another guardd is listening there", s->cfg->listen);
				return -1;
			}
			close(probe);
			if (!S_ISSOCK(st.st_mode)) {
				close(fd);
				*code = 73;	/* EX_CANTCREAT */
				log_warnx("%s: exists and is not a socket", s->cfg->listen);
				return -1;
			}
			unlink(s->cfg->listen);
		}
		if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
			*code = errno == EACCES ? 77 : 73;	/* EX_NOPERM, EX_CANTCREAT */
			log_warn("bind %s", s->cfg->listen);
			close(fd);
			return -1;
		}
		if (chmod(s->cfg->listen, s->cfg->socket_mode) == -1)
			log_warn("chmod %s", s->cfg->listen);
		if (listen(fd, 128) == -1) {
			log_warn("listen");
			close(fd);
			return -1;
		}
	}
	s->lis = evconnlistener_new(s->base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (s->lis == NULL)
		return -1;
	evconnlistener_set_error_cb(s->lis, accept_error_cb);
	*code = 0;
	return 0;
}

void
server_run(struct server *s)
{
	int sigs[3] = { SIGHUP, SIGTERM, SIGINT };

	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < 3; i++) {
		s->ev_sig[i] = evsignal_new(s->base, sigs[i], signal_cb, s);
		evsignal_add(s->ev_sig[i], NULL);
	}
	s->ev_done = event_new(s->base, s->done_fd, EV_READ | EV_PERSIST, done_cb, s);
	event_add(s->ev_done, NULL);
	s->ev_drain = evtimer_new(s->base, drain_timeout_cb, s);
	s->ev_resume = evtimer_new(s->base, resume_cb, s);
	s->ev_flush = evtimer_new(s->base, flush_cb, s);
	log_info("ready: %s (model %s, %d %s)", s->activated ? "socket from systemd" : s->cfg->listen,
	    model_hash(s->model), s->n_pol, s->n_pol == 1 ? "policy" : "policies");
	event_base_dispatch(s->base);
	/* shut down: no answers are pending, or their time is up */
	struct conn *c;
	while ((c = TAILQ_FIRST(&s->conns)) != NULL)
		conn_close(c, "shutdown");
	for (int i = 0; i < 3; i++)
		event_free(s->ev_sig[i]);
	event_free(s->ev_done);
	event_free(s->ev_drain);
	event_free(s->ev_resume);
	event_free(s->ev_flush);
	if (s->lis)
		evconnlistener_free(s->lis);
	event_base_free(s->base);
}
