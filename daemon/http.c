/* http.c - the HTTP front (guardd-http(7)): evhttp servers on the inherited http.listen
 * sockets, one per listener, on the child's loop. Each request gets an hreq and a stand-in
 * `struct conn` (c->hr) through which the daemon's answers reach the route (http.h). This
 * file owns what every route shares but the answers (http_answer.c): connections and their
 * limits, peer credentials and bearer keys, the route table, and noticing a client that
 * leaves while its request is served. Loop thread only.
 *
 * Lifetimes. An hconn is one client connection, from its accept until evhttp closes
 * it (the close callback). An hreq holds one reference on its stand-in conn until it has
 * answered or its client has gone; every job of it holds another (request.c). When the
 * last goes, conn_release calls http_conn_free, which calls ops->free and frees both -
 * deferred while one of our own calls into the route (depth) is still on the stack. A
 * route called from elsewhere (an upstream's callback) must not touch h after answering:
 * with no job left, answering frees it. */
#include "daemon/http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/http_int.h"
#include "daemon/http_keys.h"
#include "daemon/log.h"
#include "daemon/priv.h"
#include "daemon/server.h"


/* --- the stand-in connection --------------------------------------------------------- */

void
http_conn_ok(struct conn *c, const struct request *r, const char *key, const json_t *body)
{
	struct hreq *h = c->hr;

	if (h->gone)
		return;
	h->depth++;
	if (h->ops && h->ops->ok)
		h->ops->ok(h, r, key, body);
	else if (!h->answered)
		hreq_reply_json(h, 200, body);
	hreq_leave(h);
}

void
http_conn_error(struct conn *c, const struct request *r, enum proto_status st, const char *msg)
{
	struct hreq *h = c->hr;

	if (h->gone)
		return;
	h->depth++;
	if (h->ops && h->ops->error)
		h->ops->error(h, r, st, msg);
	else if (!h->answered)
		hreq_error_status(h, st, msg);
	hreq_leave(h);
}

void
hreq_destroy(struct hreq *h)
{
	h->depth++;	/* ops->free must not free us a second time */
	if (h->ops && h->ops->free)
		h->ops->free(h);
	json_decref(h->body);
	free(h->c);
	free(h);
}

void
http_conn_free(struct conn *c)
{
	struct hreq *h = c->hr;

	if (h->depth > 0)
		h->free_pending = 1;
	else
		hreq_destroy(h);
}

/* the client left before the answer ended */
static void
hreq_lost(struct hreq *h, struct evhttp_connection *evcon)
{
	h->gone = 1;
	h->hc = NULL;
	atomic_store(&h->c->dead, 1);	/* the worker drops its queued work */
	/* a request evhttp detached from its failed connection is ours to free; one still on
	 * the connection goes with it */
	if (h->req != NULL && evhttp_request_get_connection(h->req) != evcon)
		evhttp_request_free(h->req);
	h->req = NULL;
	h->depth++;
	if (h->ops && h->ops->gone)
		h->ops->gone(h);
	if (!h->answered) {
		h->answered = 1;
		conn_release(h->c);
	}
	hreq_leave(h);
}

/* --- connections --------------------------------------------------------------------- */

static void
conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	struct hconn *hc = arg;
	struct http *http = hc->http;

	if (hc->h != NULL)
		hreq_lost(hc->h, evcon);
	if (hc->busy) {
		http->inflight--;
		hc->busy = 0;
	}
	if (hc->ev_close)
		event_free(hc->ev_close);
	TAILQ_REMOVE(&http->conns, hc, link);
	http->n_conns--;
	free(hc);
	if (http->s->draining)
		control_check_drained(http->s);
}

/* the peer closed while a route works on its request (evhttp reads nothing then) */
static void
peer_closed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hconn *hc = arg;

	(void)fd; (void)what;
	log_debug("HTTP: a client left before its answer");
	/* frees the connection's requests, ours included; the close callback says gone */
	evhttp_connection_free(hc->evcon);
}

/* a connection's record, from its accept (or, failing that, its first request) */
static struct hconn *
hconn_new(struct hlis *l, struct evhttp_connection *evcon)
{
	struct http *http = l->http;
	struct hconn *hc;

	if ((hc = calloc(1, sizeof(*hc))) == NULL)
		return NULL;
	hc->http = http;
	hc->l = l;
	hc->evcon = evcon;
	hc->uid = (uid_t)-1;
	hc->gid = (gid_t)-1;
	hc->pid = -1;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	int fd = bev ? bufferevent_getfd(bev) : -1;
	if (l->is_unix) {
		struct ucred cr;
		socklen_t crl = sizeof(cr);
		if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) == 0) {
			hc->uid = cr.uid;
			hc->gid = cr.gid;
			hc->pid = cr.pid;
		}
		if (!peer_allowed(http->s->cfg, hc->uid, hc->gid)) {
			hc->refused = 1;
			http->s->st.conns_rejected++;
			log_warnx("HTTP: refused a client: uid %u gid %u pid %d is not allowed",
			    (unsigned)hc->uid, (unsigned)hc->gid, (int)hc->pid);
		}
	}
	if (fd >= 0 && (event_base_get_features(http->s->base) & EV_FEATURE_EARLY_CLOSE))
		hc->ev_close = event_new(http->s->base, fd, EV_CLOSED, peer_closed_cb, hc);
	TAILQ_INSERT_TAIL(&http->conns, hc, link);
	if (++http->n_conns > http->s->cfg->http_max_connections) {
		hc->over = 1;
		http->s->st.conns_rejected++;
	}
	evhttp_connection_set_closecb(evcon, conn_closed_cb, hc);
	return hc;
}

static struct hconn *
hconn_get(struct hlis *l, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct hconn *hc;

	TAILQ_FOREACH(hc, &l->http->conns, link)
		if (hc->evcon == evcon)
			return hc;
	return hconn_new(l, evcon);
}

/* evhttp makes each accepted connection's bufferevent through us, before the connection
 * exists; once it does (the bufferevent's callbacks carry it), accepted_cb records it, so
 * that a connection counts from its accept, not its first request. Our reference keeps
 * the bufferevent's memory valid until then even if evhttp drops the connection at once. */
static struct bufferevent *
bev_cb(struct event_base *base, void *arg)
{
	struct hlis *l = arg;
	struct http *http = l->http;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);

	if (bev == NULL || http->n_pending == HTTP_PENDING_MAX)
		return bev;	/* recorded at its first request instead */
	bufferevent_incref(bev);
	http->pending[http->n_pending].bev = bev;
	http->pending[http->n_pending++].l = l;
	event_active(http->ev_accepted, 0, 0);
	return bev;
}

static void
accepted_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *http = arg;

	(void)fd; (void)what;
	for (int i = 0; i < http->n_pending; i++) {
		struct bufferevent *bev = http->pending[i].bev;
		bufferevent_data_cb rcb, wcb;
		bufferevent_event_cb ecb;
		void *evcon = NULL;
		bufferevent_getcb(bev, &rcb, &wcb, &ecb, &evcon);
		/* NULL callbacks: evhttp already dropped it */
		if (evcon != NULL && ecb != NULL &&
		    evhttp_connection_get_bufferevent(evcon) == bev)
			hconn_new(http->pending[i].l, evcon);
		bufferevent_decref(bev);
	}
	http->n_pending = 0;
}

static void
complete_cb(struct evhttp_request *req, void *arg)
{
	struct hconn *hc = arg;

	(void)req;
	if (hc->busy) {
		hc->busy = 0;
		hc->http->inflight--;
		if (hc->http->s->draining)
			control_check_drained(hc->http->s);
	}
}

/* --- routing ------------------------------------------------------------------------- */

static void
route_chat(struct hreq *h)
{
	if (h->http->s->cfg->upstream_url != NULL)
		http_route_proxy(h);
	else
		http_route_chat(h);
}

static const struct route {
	const char *path;
	enum evhttp_cmd_type method;
	int open;		/* no key needed (load balancers' health checks) */
	void (*fn)(struct hreq *);
} routes[] = {
	{ "/health", EVHTTP_REQ_GET, 1, http_route_health },
	{ "/metrics", EVHTTP_REQ_GET, 0, http_route_metrics },
	{ "/v1/moderations", EVHTTP_REQ_POST, 0, http_route_moderations },
	{ "/v1/chat/completions", EVHTTP_REQ_POST, 0, route_chat },
	{ "/v1/models", EVHTTP_REQ_GET, 0, http_route_models },
	{ "/guardd/request", EVHTTP_REQ_POST, 0, http_route_native },
};

/* TCP: "Authorization: Bearer <key>", the key one of http.keys_file's */
static int
authorized(struct hreq *h)
{
	const struct http *http = h->http;
	const char *a;

	if (h->hc->l->is_unix || http->s->cfg->http_auth == HTTP_AUTH_NONE)
		return 1;
	if ((a = hreq_header(h, "Authorization")) == NULL) {
		hreq_error_with(h, 401, NULL, "missing_api_key", "this listener needs an API key: "
		    "Authorization: Bearer <key> (http.keys_file)", "WWW-Authenticate", "Bearer");
		return 0;
	}
	if (strncasecmp(a, "Bearer ", 7) == 0) {
		const char *k = a + 7;
		while (*k == ' ')
			k++;
		size_t n = strlen(k);
		while (n > 0 && (k[n - 1] == ' ' || k[n - 1] == '\t'))
			n--;
		if (http_keys_match(http->keys, k, n))
			return 1;
	}
	hreq_error_with(h, 401, NULL, "invalid_api_key", "incorrect API key provided",
	    "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	return 0;
}

static int
count_headers(struct evhttp_request *req)
{
	struct evkeyval *kv;
	int n = 0;

	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
		n++;
	return n;
}

static void
dispatch(struct hreq *h)
{
	struct server *s = h->http->s;
	struct hconn *hc = h->hc;
	struct evhttp_request *req = h->req;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	char msg[256];

	if (hc->refused) {
		s->st.forbidden++;
		hreq_error(h, 403, NULL, "forbidden", "this user may not use guardd (allow_uids, "
		    "allow_gids)");
		return;
	}
	if (hc->over) {
		snprintf(msg, sizeof(msg), "too many HTTP connections (http.max_connections is %d)",
		    s->cfg->http_max_connections);
		hreq_error_with(h, 503, NULL, "too_many_connections", msg, "Retry-After", "1");
		return;
	}
	if (count_headers(req) > s->cfg->http_max_headers) {
		snprintf(msg, sizeof(msg), "more than %d request headers (http.max_headers)",
		    s->cfg->http_max_headers);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		hreq_error(h, 431, NULL, "too_many_headers", msg);
		return;
	}
	if (path == NULL || *path == '\0')
		path = "/";
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(path, routes[i].path) != 0)
			continue;
		if (m != routes[i].method) {
			snprintf(msg, sizeof(msg), "%s takes %s only", routes[i].path,
			    routes[i].method == EVHTTP_REQ_GET ? "GET" : "POST");
			hreq_error_with(h, 405, NULL, "method_not_allowed", msg, "Allow",
			    routes[i].method == EVHTTP_REQ_GET ? "GET" : "POST");
			return;
		}
		if (!routes[i].open && !authorized(h))
			return;
		if (s->draining && routes[i].fn != http_route_health) {
			hreq_error_status(h, PROTO_SHUTTING_DOWN, "the daemon is shutting down");
			return;
		}
		if (hc->ev_close)	/* evhttp reads nothing while we work: we watch */
			event_add(hc->ev_close, NULL);
		routes[i].fn(h);
		return;
	}
	snprintf(msg, sizeof(msg), "no route %.200s (guardd-http(7) lists them)", path);
	hreq_error(h, 404, NULL, "not_found", msg);
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	struct hlis *l = arg;
	struct http *http = l->http;
	struct server *s = http->s;
	struct hconn *hc = hconn_get(l, req);
	struct hreq *h = calloc(1, sizeof(*h));
	struct conn *c = calloc(1, sizeof(*c));

	if (hc == NULL || h == NULL || c == NULL) {
		free(h);
		free(c);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	s->st.http_requests++;
	h->http = http;
	h->hc = hc;
	h->req = req;
	h->c = c;
	c->s = s;
	c->id = ++s->next_conn;
	c->refs = 1;	/* the hreq's own, until it answers or its client goes */
	c->uid = hc->uid;
	c->gid = hc->gid;
	c->pid = hc->pid;
	c->t_active = now_ms();
	c->hr = h;
	hc->h = h;
	hc->busy = 1;
	http->inflight++;
	evhttp_request_set_on_complete_cb(req, complete_cb, hc);
	h->depth++;
	dispatch(h);
	hreq_leave(h);
}

/* --- the servers ---------------------------------------------------------------------- */

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *http = arg;

	(void)fd; (void)what;
	for (int i = 0; i < http->n_lis; i++)
		if (http->lis[i].bound && !http->s->draining)
			evconnlistener_enable(evhttp_bound_socket_get_listener(http->lis[i].bound));
}

/* the one HTTP front of this process, for the listeners' error callback (whose argument is
 * evhttp's, not ours) */
static struct http *the_http;

static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct timeval t = { 0, 200000 };

	(void)arg;
	log_warn("HTTP: accept");
	if ((errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) &&
	    the_http != NULL) {
		/* out of descriptors: pause accepting for a moment instead of spinning */
		evconnlistener_disable(lev);
		evtimer_add(the_http->ev_resume, &t);
	}
}

int
http_keys_set(struct server *s, const char *text, size_t len)
{
	if (s->http == NULL) {
		if ((s->http = calloc(1, sizeof(*s->http))) == NULL)
			return -1;
		s->http->s = s;
		TAILQ_INIT(&s->http->conns);
	}
	http_keys_free(s->http->keys);
	s->http->keys = text ? http_keys_parse(text, len) : NULL;
	if (text != NULL && s->http->keys == NULL)
		log_warnx("http.keys_file: no usable key: TCP requests will be refused");
	return 0;
}

int
http_start(struct server *s)
{
	const struct config *cfg = s->cfg;
	struct http *http;

	if (s->n_http_fd == 0)
		return 0;
	if (s->http == NULL && http_keys_set(s, NULL, 0) == -1)
		return -1;
	http = s->http;
	if ((http->ev_resume = evtimer_new(s->base, resume_cb, http)) == NULL ||
	    (http->ev_accepted = event_new(s->base, -1, 0, accepted_cb, http)) == NULL)
		return -1;
	the_http = http;
	for (int i = 0; i < s->n_http_fd; i++) {
		struct hlis *l = &http->lis[http->n_lis];
		struct timeval tv = { cfg->http_timeout_ms / 1000, cfg->http_timeout_ms % 1000 * 1000 };
		l->http = http;
		l->name = cfg->http_listen[i];
		l->is_unix = cfg->http_listen[i][0] == '/';
		if ((l->eh = evhttp_new(s->base)) == NULL) {
			log_warnx("HTTP: cannot start a server for %s", l->name);
			return -1;
		}
		http->n_lis++;
		evhttp_set_max_body_size(l->eh, (ev_ssize_t)cfg->http_max_body_bytes);
		evhttp_set_max_headers_size(l->eh, (ev_ssize_t)cfg->http_max_header_bytes);
		evhttp_set_timeout_tv(l->eh, &tv);
		/* every method reaches us, so a wrong one gets our 405, not evhttp's page */
		evhttp_set_allowed_methods(l->eh, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
		    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
		    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
		/* a body over the limit is read and dropped, so the client sees the 413 */
		evhttp_set_flags(l->eh, EVHTTP_SERVER_LINGERING_CLOSE);
		evhttp_set_gencb(l->eh, request_cb, l);
		evhttp_set_bevcb(l->eh, bev_cb, l);
		if ((l->bound = evhttp_accept_socket_with_handle(l->eh, s->http_fd[i])) == NULL) {
			log_warnx("HTTP: cannot serve %s", l->name);
			return -1;
		}
		s->http_fd[i] = -1;	/* the listener closes it */
		evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(l->bound),
		    accept_error_cb);
	}
	return 0;
}

void
http_stop_accepting(struct server *s)
{
	struct http *http = s->http;

	if (http == NULL)
		return;
	for (int i = 0; i < http->n_lis; i++)
		if (http->lis[i].bound) {
			evhttp_del_accept_socket(http->lis[i].eh, http->lis[i].bound);
			http->lis[i].bound = NULL;
		}
}

void
http_free(struct server *s)
{
	struct http *http = s->http;

	if (http == NULL)
		return;
	/* closing the connections calls the close callbacks: requests still open are gone */
	for (int i = 0; i < http->n_pending; i++)
		bufferevent_decref(http->pending[i].bev);
	http->n_pending = 0;
	for (int i = 0; i < http->n_lis; i++)
		evhttp_free(http->lis[i].eh);
	if (http->ev_resume)
		event_free(http->ev_resume);
	if (http->ev_accepted)
		event_free(http->ev_accepted);
	http_keys_free(http->keys);
	free(http);
	s->http = NULL;
	the_http = NULL;
}

int
http_inflight(const struct server *s)
{
	return s->http ? s->http->inflight : 0;
}

int
http_connections(const struct server *s)
{
	return s->http ? s->http->n_conns : 0;
}
