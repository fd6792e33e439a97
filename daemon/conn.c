/* conn.c - connections: accept with peer credentials, incremental framing of the input,
 * per-connection limits (requests in flight, output high water, idle / read / write
 * timeouts), half-close, and one teardown that says why. Loop thread only. */
#include "daemon/server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <msgpack.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/http.h"
#include "daemon/http_int.h"
#include "daemon/log.h"

static void conn_arm(struct conn *c);
static void conn_maybe_finish(struct conn *c);

void
conn_release(struct conn *c)
{
	if (--c->refs == 0) {
		if (c->hr != NULL) {	/* an HTTP request's stand-in: the front frees both */
			http_conn_free(c);
			return;
		}
		if (c->timer)
			event_free(c->timer);
		free(c);
	}
}

void
conn_close(struct conn *c, const char *why)
{
	struct server *s = c->s;

	if (c->bev == NULL)
		return;
	log_debug("connection %llu closed: %s", (unsigned long long)c->id, why);
	atomic_store(&c->dead, 1);	/* its queued work is dropped */
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->timer)
		event_del(c->timer);
	TAILQ_REMOVE(&s->conns, c, link);
	s->n_conns--;
	conn_release(c);
	if (s->draining)
		control_check_drained(s);
}

void
conn_close_all(struct server *s)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&s->conns)) != NULL)
		conn_close(c, "shutdown");
}

static size_t
out_len(struct conn *c)
{
	return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

/* reading runs unless the connection has too much in flight or unsent */
static void
conn_flow(struct conn *c)
{
	struct server *s = c->s;
	int want_pause;

	if (c->bev == NULL || c->closing)
		return;
	if (c->paused)	/* resume only below half the high water: no flapping */
		want_pause = c->inflight >= s->cfg->max_inflight ||
		    out_len(c) > s->cfg->output_high_water / 2;
	else
		want_pause = c->inflight >= s->cfg->max_inflight ||
		    out_len(c) > s->cfg->output_high_water;
	if (want_pause && !c->paused) {
		c->paused = 1;
		s->st.paused++;
		bufferevent_disable(c->bev, EV_READ);
	} else if (!want_pause && c->paused) {
		c->paused = 0;
		if (!c->eof)
			bufferevent_enable(c->bev, EV_READ);
		/* whole requests may already wait in the input: run the read callback for them
		 * (deferred, so this never recurses into read_cb) */
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
			bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
			    BEV_TRIG_DEFER_CALLBACKS);
	}
}

void
conn_send(struct conn *c, const void *p, size_t n)
{
	if (c->bev == NULL)
		return;
	bufferevent_write(c->bev, p, n);
	conn_flow(c);
	conn_arm(c);
}

void
conn_send_error(struct conn *c, const struct request *r, enum proto_status st, const char *msg)
{
	msgpack_sbuffer sb;

	if (c->hr != NULL) {
		c->s->st.errors_total++;
		http_conn_error(c, r, st, msg);
		return;
	}
	msgpack_sbuffer_init(&sb);
	proto_error(&sb, r, st, msg);
	conn_send(c, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	c->s->st.errors_total++;
}

void
conn_send_ok(struct conn *c, const struct request *r, const char *key, const struct json_t *body)
{
	msgpack_sbuffer sb;

	if (c->hr != NULL) {
		http_conn_ok(c, r, key, body);
		return;
	}
	msgpack_sbuffer_init(&sb);
	proto_ok(&sb, r, key, body);
	conn_send(c, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
}

/* answer, then close once the answer is written (framing is lost, or the peer is refused) */
static void
send_fatal(struct conn *c, enum proto_status st, const char *msg)
{
	conn_send_error(c, NULL, st, msg);
	c->closing = 1;
	if (c->bev) {
		bufferevent_disable(c->bev, EV_READ);
		conn_maybe_finish(c);
	}
}

/* close when nothing is left to do: after an error that ends the connection, or after the
 * peer's half-close once every request of it is answered */
static void
conn_maybe_finish(struct conn *c)
{
	if (c->bev == NULL || out_len(c) > 0)
		return;
	if (c->closing)
		conn_close(c, "closed after an error");
	else if (c->eof && c->inflight == 0 && !c->reload_wait)
		conn_close(c, "end of input, every request answered");
}

void
conn_job_done(struct conn *c)
{
	c->inflight--;
	if (c->bev) {
		conn_flow(c);
		conn_maybe_finish(c);
		if (c->bev)
			conn_arm(c);
	}
}

/* the one timer: which limit applies depends on the state */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct server *s = c->s;
	double t = now_ms();

	(void)fd; (void)what;
	if (c->bev == NULL)
		return;
	c->refs++;	/* closing drops the connection's own reference: keep c until we return */
	if (out_len(c) > 0 && t - c->t_active >= s->cfg->write_timeout_ms) {
		s->st.write_timeouts++;
		conn_close(c, "the peer does not read its answers");
	} else if (c->t_frame > 0 && t - c->t_frame >= s->cfg->read_timeout_ms) {
		char msg[128];
		s->st.read_timeouts++;
		snprintf(msg, sizeof(msg), "a request was not complete within %d ms",
		    s->cfg->read_timeout_ms);
		send_fatal(c, PROTO_TIMEOUT, msg);
	} else if (c->t_frame == 0 && c->inflight == 0 && out_len(c) == 0 && !c->reload_wait &&
	    t - c->t_active >= s->cfg->idle_timeout_ms) {
		s->st.idle_closed++;
		conn_close(c, "idle");
	} else
		conn_arm(c);
	conn_release(c);
}

static void
conn_arm(struct conn *c)
{
	struct server *s = c->s;
	double due;

	if (c->bev == NULL)
		return;
	if (out_len(c) > 0)
		due = c->t_active + s->cfg->write_timeout_ms;
	else if (c->t_frame > 0)
		due = c->t_frame + s->cfg->read_timeout_ms;
	else if (c->inflight == 0 && !c->reload_wait)
		due = c->t_active + s->cfg->idle_timeout_ms;
	else {
		event_del(c->timer);	/* waiting for the worker: its deadline applies */
		return;
	}
	double in = due - now_ms();
	if (in < 1)
		in = 1;
	struct timeval tv = { (time_t)(in / 1000), (suseconds_t)((long)in % 1000 * 1000) };
	event_add(c->timer, &tv);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct server *s = c->s;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->refs++;	/* an answer can close the connection: keep c valid until we return */
	c->t_active = now_ms();
	while (c->bev != NULL && !c->closing && !c->paused) {
		size_t seen = mp_framer_length(&c->fr), avail = evbuffer_get_length(in);
		if (avail <= seen)
			break;
		/* feed only the bytes not examined yet: framing cost is linear in the input */
		struct evbuffer_ptr pos;
		struct evbuffer_iovec v[8];
		evbuffer_ptr_set(in, &pos, seen, EVBUFFER_PTR_SET);
		int nv = evbuffer_peek(in, -1, &pos, v, 8);
		enum mp_frame f = MP_FRAME_MORE;
		uint64_t before = mp_framer_scanned(&c->fr);
		size_t used = 0;
		for (int i = 0; i < nv && i < 8 && f == MP_FRAME_MORE; i++)
			f = mp_framer_feed(&c->fr, v[i].iov_base, v[i].iov_len, &used);
		s->st.bytes_scanned += mp_framer_scanned(&c->fr) - before;
		if (f == MP_FRAME_MORE) {
			if (c->t_frame == 0)
				c->t_frame = c->t_active;
			if (nv > 8)
				continue;	/* more chunks than one peek returns */
			break;
		}
		if (f == MP_FRAME_OK) {
			size_t len = mp_framer_length(&c->fr);
			unsigned char *p = evbuffer_pullup(in, (ssize_t)len);
			struct request r;
			struct err e;
			struct proto_limits lim = { s->cfg->max_request_bytes, s->cfg->max_messages,
	    s->cfg->max_image_bytes, s->cfg->max_images };
			s->st.bytes_in += len;
			s->st.requests++;
			enum proto_status st = proto_decode_msgpack(p, len, &lim, &r, &e);
			evbuffer_drain(in, len);
			mp_framer_reset(&c->fr);
			c->t_frame = 0;
			if (st != PROTO_OK) {
				s->st.bad_requests++;
				conn_send_error(c, &r, st, e.msg);
				proto_request_free(&r);
			} else
				request_handle(c, &r);	/* takes r */
			if (c->bev)
				conn_flow(c);
			continue;
		}
		char msg[160];
		s->st.bad_requests++;
		if (f == MP_FRAME_BAD) {
			snprintf(msg, sizeof(msg), "malformed msgpack at byte %zu of the request",
			    mp_framer_offset(&c->fr));
			send_fatal(c, PROTO_BAD_REQUEST, msg);
		} else {
			snprintf(msg, sizeof(msg), "a request is larger than %zu bytes",
			    s->cfg->max_request_bytes);
			send_fatal(c, PROTO_TOO_LARGE, msg);
		}
		break;
	}
	if (c->bev)
		conn_arm(c);
	conn_release(c);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct server *s = c->s;

	(void)bev;
	c->refs++;
	c->t_active = now_ms();
	conn_flow(c);
	conn_maybe_finish(c);
	if (c->bev)
		conn_arm(c);
	if (s->draining)
		control_check_drained(s);
	conn_release(c);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	c->refs++;
	if (what & BEV_EVENT_EOF) {
		/* a peer that closed its socket is gone (the kernel says POLLHUP: both directions
		 * are shut) and its queued work is dropped; one that only shut down its sending
		 * side (shutdown(SHUT_WR), `nc -N`) still gets every answer, then the close */
		struct pollfd pf = { bufferevent_getfd(bev), POLLOUT, 0 };
		if (poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLERR)))
			conn_close(c, "the peer closed");
		else {
			c->eof = 1;
			bufferevent_disable(bev, EV_READ);
			if (c->t_frame > 0 && !c->closing) {
				c->s->st.bad_requests++;
				send_fatal(c, PROTO_BAD_REQUEST, "truncated request: the connection "
				    "ended inside a request");
			} else {
				conn_maybe_finish(c);
				if (c->bev)
					conn_arm(c);
			}
		}
	} else if (what & BEV_EVENT_ERROR)
		conn_close(c, "socket error");
	conn_release(c);
}

static int
id_in(unsigned id, const unsigned *list, int n)
{
	for (int i = 0; i < n; i++)
		if (list[i] == id)
			return 1;
	return 0;
}

int
peer_allowed(const struct config *cfg, uid_t uid, gid_t gid)
{
	if (cfg->n_allow_uid == 0 && cfg->n_allow_gid == 0)
		return 1;
	return id_in(uid, cfg->allow_uid, cfg->n_allow_uid) ||
	    id_in(gid, cfg->allow_gid, cfg->n_allow_gid);
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
	c->t_active = now_ms();
	mp_framer_init(&c->fr, s->cfg->max_request_bytes);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) == 0) {
		c->uid = cr.uid;
		c->gid = cr.gid;
		c->pid = cr.pid;
	} else {
		c->uid = (uid_t)-1;
		c->gid = (gid_t)-1;
	}
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(s->base, timer_cb, c);
	if (c->bev == NULL || c->timer == NULL) {
		if (c->bev)
			bufferevent_free(c->bev);
		else
			close(fd);
		if (c->timer)
			event_free(c->timer);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	/* write_cb runs when the output falls to half the high water: reading may resume */
	bufferevent_setwatermark(c->bev, EV_WRITE, s->cfg->output_high_water / 2, 0);
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	s->n_conns++;
	s->st.conns_total++;
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->refs++;
	if (!peer_allowed(s->cfg, c->uid, c->gid)) {
		s->st.conns_rejected++;
		log_warnx("refused a client: uid %u gid %u pid %d is not allowed", (unsigned)c->uid,
		    (unsigned)c->gid, (int)c->pid);
		send_fatal(c, PROTO_FORBIDDEN, "this user may not use guardd");
	} else if (s->n_conns > s->cfg->max_connections) {
		s->st.conns_rejected++;
		send_fatal(c, PROTO_TOO_MANY, "too many connections");
	} else
		conn_arm(c);
	conn_release(c);
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
	struct timeval t = { 0, 200000 };

	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
		/* out of descriptors: pause accepting for a moment instead of spinning */
		log_warn("accept");
		evconnlistener_disable(l);
		evtimer_add(s->ev_resume, &t);
	} else
		log_warn("accept");
}

int
conn_listen(struct server *s)
{
	s->ev_resume = evtimer_new(s->base, resume_cb, s);
	s->lis = evconnlistener_new(s->base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE, -1,
	    s->listen_fd);
	if (s->lis == NULL)
		return -1;
	evconnlistener_set_error_cb(s->lis, accept_error_cb);
	return 0;
}
