/* upstream.c - one POST to the upstream per proxied chat (upstream.h): evhttp's client on a
 * connection of its own, TLS through bufferevent_openssl with the peer's certificate and
 * name checked, a connect timer beside evhttp's silence timeout, and every failure turned
 * into a status and a message that names the upstream. The connection is freed from an
 * event of its own, never inside one of evhttp's callbacks (which still use it after
 * calling us). */
#include "daemon/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util/mapfile.h"

struct upstream {
	struct event_base *base;
	struct evhttp_connection *evcon;
	struct evdns_base *dns;
	struct bufferevent *bev;
	SSL *ssl;			/* owned by bev */
	struct event *ev_free, *ev_connect;
	const struct upstream_cbs *cb;
	void *arg;
	int closed;			/* the caller is done with it: no callbacks */
	int finished;			/* done or fail was called */
	int got_head;
	int err_kind;			/* evhttp's error, -1: none seen */
	int tls_err;			/* the certificate check's X509_V_ERR_*, 0: none */
	char tls_subject[128];
	size_t got, max;
	int timeout_ms, connect_timeout_ms;
	char where[300];		/* "host:port" for messages */
};

/* --- the url ---------------------------------------------------------------------------- */

struct url {
	int tls;
	char host[256];			/* without the brackets of an IPv6 literal */
	int port;
	char path[1024];		/* "" or "/v1" (no trailing slash) */
};

static int
url_parse(const char *s, struct url *u, struct err *e)
{
	struct evhttp_uri *uri = evhttp_uri_parse_with_flags(s, 0);
	int rc = -1;

	memset(u, 0, sizeof(*u));
	if (uri == NULL)
		return err_set(e, "'%.200s' is not a URL", s);
	const char *scheme = evhttp_uri_get_scheme(uri), *host = evhttp_uri_get_host(uri);
	const char *path = evhttp_uri_get_path(uri);
	if (scheme == NULL || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
		err_set(e, "'%.200s': the scheme must be http or https", s);
	else if (host == NULL || host[0] == '\0')
		err_set(e, "'%.200s': no host", s);
	else if (evhttp_uri_get_userinfo(uri) != NULL)
		err_set(e, "'%.200s': a user in the URL is not supported (use upstream.api_key_file)", s);
	else if (evhttp_uri_get_query(uri) != NULL || evhttp_uri_get_fragment(uri) != NULL)
		err_set(e, "'%.200s': no query or fragment allowed", s);
	else if (strlen(host) >= sizeof(u->host) || (path && strlen(path) >= sizeof(u->path)))
		err_set(e, "'%.200s': too long", s);
	else {
		u->tls = strcmp(scheme, "https") == 0;
		size_t hl = strlen(host);
		if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
			memcpy(u->host, host + 1, hl - 2);
			u->host[hl - 2] = '\0';
		} else
			memcpy(u->host, host, hl + 1);
		int port = evhttp_uri_get_port(uri);
		u->port = port > 0 ? port : u->tls ? 443 : 80;
		if (port == 0 || port > 65535)
			err_set(e, "'%.200s': port %d is out of range", s, port);
		else {
			snprintf(u->path, sizeof(u->path), "%s", path ? path : "");
			size_t pl = strlen(u->path);
			while (pl > 0 && u->path[pl - 1] == '/')
				u->path[--pl] = '\0';
			rc = 0;
		}
	}
	evhttp_uri_free(uri);
	return rc;
}

int
upstream_url_check(const char *url, struct err *e)
{
	struct url u;

	return url_parse(url, &u, e);
}

char *
upstream_read_key(const char *path, struct err *e)
{
	size_t len;
	char *text = file_read_all(path, &len, 64 * 1024, e);

	if (text == NULL)
		return NULL;
	size_t start = strspn(text, " \t\r\n");
	size_t n = strcspn(text + start, "\r\n");
	while (n > 0 && (text[start + n - 1] == ' ' || text[start + n - 1] == '\t'))
		n--;
	if (n == 0 || memchr(text + start, '\0', n)) {
		err_set(e, "%s: no key on its first line", path);
		free(text);
		return NULL;
	}
	memmove(text, text + start, n);
	text[n] = '\0';
	return text;
}

/* --- TLS -------------------------------------------------------------------------------- */

/* one context per (verify, ca_file), kept for the process: loading the trust store is the
 * costly part of a handshake's setup */
static SSL_CTX *ctx_cached;
static char *ctx_ca;
static int ctx_verify = -1;
static int ssl_idx = -1;

static int
verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct upstream *u = ssl ? SSL_get_ex_data(ssl, ssl_idx) : NULL;

	if (!ok && u != NULL && u->tls_err == 0) {
		u->tls_err = X509_STORE_CTX_get_error(x);
		X509 *cert = X509_STORE_CTX_get_current_cert(x);
		if (cert)
			X509_NAME_oneline(X509_get_subject_name(cert), u->tls_subject,
			    sizeof(u->tls_subject));
	}
	return ok;
}

static SSL_CTX *
tls_ctx(int verify, const char *ca_file, struct err *e)
{
	if (ctx_cached && ctx_verify == verify &&
	    ((ca_file == NULL && ctx_ca == NULL) || (ca_file && ctx_ca && strcmp(ca_file, ctx_ca) == 0)))
		return ctx_cached;
	if (ssl_idx < 0 && (ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0) {
		err_set(e, "TLS: no ex_data index");
		return NULL;
	}
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	if (c == NULL) {
		err_set(e, "TLS: cannot make a context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	if (verify) {
		int r = ca_file ? SSL_CTX_load_verify_locations(c, ca_file, NULL) :
		    SSL_CTX_set_default_verify_paths(c);
		if (r != 1) {
			char why[256];
			ERR_error_string_n(ERR_get_error(), why, sizeof(why));
			err_set(e, "upstream.ca_file %s: cannot load its certificates (%s)",
			    ca_file ? ca_file : "(the system's)", why);
			ERR_clear_error();
			SSL_CTX_free(c);
			return NULL;
		}
		SSL_CTX_set_verify(c, SSL_VERIFY_PEER, verify_cb);
	} else
		SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	SSL_CTX_free(ctx_cached);
	free(ctx_ca);
	ctx_cached = c;
	ctx_ca = ca_file ? strdup(ca_file) : NULL;
	ctx_verify = verify;
	return c;
}

static SSL *
tls_new(struct upstream *u, const struct upstream_opts *o, const char *host, struct err *e)
{
	SSL_CTX *c = tls_ctx(o->verify, o->ca_file, e);
	unsigned char ip[16];
	int is_ip;

	if (c == NULL)
		return NULL;
	SSL *ssl = SSL_new(c);
	if (ssl == NULL) {
		err_set(e, "TLS: cannot make a session");
		return NULL;
	}
	SSL_set_ex_data(ssl, ssl_idx, u);
	is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
	if (!is_ip)
		SSL_set_tlsext_host_name(ssl, host);	/* SNI names hosts, never addresses */
	if (o->verify) {
		X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
		X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, host) : X509_VERIFY_PARAM_set1_host(p, host, 0)) != 1) {
			err_set(e, "TLS: cannot check the name %s", host);
			SSL_free(ssl);
			return NULL;
		}
	}
	return ssl;
}

/* --- the request ------------------------------------------------------------------------ */

static void
free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;

	(void)fd;
	(void)what;
	if (u->evcon)
		evhttp_connection_free(u->evcon);	/* frees the request, closes the socket */
	else if (u->bev)
		bufferevent_free(u->bev);
	if (u->dns)
		evdns_base_free(u->dns, 0);
	if (u->ev_connect)
		event_free(u->ev_connect);
	event_free(u->ev_free);
	free(u);
}

/* the connection goes at the next turn of the loop (evhttp may still be using it now) */
static void
schedule_free(struct upstream *u)
{
	if (u->ev_connect)
		event_del(u->ev_connect);
	event_active(u->ev_free, EV_TIMEOUT, 0);
}

static void
fail(struct upstream *u, int timeout, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
fail(struct upstream *u, int timeout, const char *code, const char *fmt, ...)
{
	struct upstream_error err = {
		.status = timeout ? PROTO_TIMEOUT : PROTO_INTERNAL,
		.http_status = timeout ? 504 : 502,
		.code = code,
	};
	va_list ap;

	if (u->finished)
		return;
	u->finished = 1;
	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	if (!u->closed)
		u->cb->fail(u->arg, &err);
}

static int
head_cb(struct evhttp_request *req, void *arg)
{
	struct upstream *u = arg;

	u->got_head = 1;
	if (u->ev_connect)
		event_del(u->ev_connect);
	if (!u->closed && !u->finished)
		u->cb->head(u->arg, evhttp_request_get_response_code(req),
		    evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type"));
	return 0;
}

static void
chunk_cb(struct evhttp_request *req, void *arg)
{
	struct upstream *u = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);

	if (u->closed || u->finished) {
		evbuffer_drain(in, n);
		return;
	}
	u->got += n;
	if (u->got > u->max) {
		evbuffer_drain(in, n);
		fail(u, 0, "upstream_too_large", "the upstream %s answered more than "
		    "upstream.max_response_bytes (%zu bytes)", u->where, u->max);
		return;
	}
	/* the pieces evhttp holds, in order, without copying */
	struct evbuffer_iovec v[16];
	while (n > 0 && !u->closed && !u->finished) {
		int k = evbuffer_peek(in, -1, NULL, v, 16);
		if (k > 16)
			k = 16;
		size_t used = 0;
		for (int i = 0; i < k && !u->closed && !u->finished; i++) {
			u->cb->data(u->arg, v[i].iov_base, v[i].iov_len);
			used += v[i].iov_len;
		}
		evbuffer_drain(in, used);
		n = evbuffer_get_length(in);
	}
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void
error_cb(enum evhttp_request_error kind, void *arg)
{
	struct upstream *u = arg;

	if (u->err_kind < 0)
		u->err_kind = (int)kind;
}

static void
done_cb(struct evhttp_request *req, void *arg)
{
	struct upstream *u = arg;
	int errsave = errno;
	unsigned long tls_code;

	if (u->finished || u->closed)
		goto out;
	if (req != NULL && evhttp_request_get_response_code(req) != 0 && u->err_kind < 0) {
		u->finished = 1;
		u->cb->done(u->arg);
		goto out;
	}
	if (u->tls_err)
		fail(u, 0, "upstream_tls", "the upstream %s's certificate was refused: %s (%s)",
		    u->where, X509_verify_cert_error_string(u->tls_err), u->tls_subject);
	else if (u->err_kind == EVREQ_HTTP_TIMEOUT)
		fail(u, 1, "upstream_timeout", "the upstream %s was silent for upstream.timeout_ms "
		    "(%d ms)", u->where, u->timeout_ms);
	else if (u->err_kind == EVREQ_HTTP_DATA_TOO_LONG)
		fail(u, 0, "upstream_too_large", "the upstream %s answered more than "
		    "upstream.max_response_bytes (%zu bytes)", u->where, u->max);
	else if (u->err_kind == EVREQ_HTTP_INVALID_HEADER)
		fail(u, 0, "upstream_bad_response", "the upstream %s sent an invalid HTTP answer",
		    u->where);
	else if (u->got_head)
		fail(u, 0, "upstream_closed", "the upstream %s closed the connection in the middle of "
		    "its answer", u->where);
	else if (u->ssl && (tls_code = bufferevent_get_openssl_error(u->bev)) != 0) {
		char why[256];
		ERR_error_string_n(tls_code, why, sizeof(why));
		fail(u, 0, "upstream_tls", "TLS with the upstream %s failed: %s", u->where, why);
	} else
		fail(u, 0, "upstream_unreachable", "the upstream %s could not be reached or closed the "
		    "connection before answering%s%s", u->where, errsave == ECONNREFUSED ? ": " : "",
		    errsave == ECONNREFUSED ? strerror(errsave) : "");
out:
	if (u->ev_connect)
		event_del(u->ev_connect);
}

/* connect_timeout_ms after the start: if the connection (and TLS) is not up yet, give up */
static void
connect_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	(void)fd;
	(void)what;
	if (u->got_head || u->finished || u->closed)
		return;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(u->evcon);
	evutil_socket_t s = bev ? bufferevent_getfd(bev) : -1;
	int up = s >= 0 && getpeername(s, (struct sockaddr *)&ss, &sl) == 0 &&
	    (u->ssl == NULL || SSL_is_init_finished(u->ssl));
	if (up)
		return;
	fail(u, 1, "upstream_timeout", "connecting to the upstream %s took longer than "
	    "upstream.connect_timeout_ms (%d ms)", u->where, u->connect_timeout_ms);
}

struct upstream *
upstream_post(struct event_base *base, const struct upstream_opts *o, const char *suffix,
    const char *body, size_t n, const struct upstream_cbs *cb, void *arg, struct err *e)
{
	struct url url;
	struct upstream *u;
	unsigned char ip[16];
	char path[1200];

	if (url_parse(o->url, &url, e) == -1)
		return NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	u->base = base;
	u->cb = cb;
	u->arg = arg;
	u->err_kind = -1;
	u->max = o->max_response_bytes;
	u->timeout_ms = o->timeout_ms;
	u->connect_timeout_ms = o->connect_timeout_ms;
	snprintf(u->where, sizeof(u->where), strchr(url.host, ':') ? "[%s]:%d" : "%s:%d", url.host,
	    url.port);
	snprintf(path, sizeof(path), "%s%s", url.path, suffix);
	if ((u->ev_free = event_new(base, -1, 0, free_cb, u)) == NULL ||
	    (u->ev_connect = evtimer_new(base, connect_timer_cb, u)) == NULL) {
		err_set(e, "out of memory");
		goto fail;
	}
	/* names are resolved without blocking the loop; addresses need no resolver */
	if (inet_pton(AF_INET, url.host, ip) != 1 && inet_pton(AF_INET6, url.host, ip) != 1)
		u->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (url.tls) {
		if ((u->ssl = tls_new(u, o, url.host, e)) == NULL)
			goto fail;
		u->bev = bufferevent_openssl_socket_new(base, -1, u->ssl, BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (u->bev == NULL) {
			SSL_free(u->ssl);
			u->ssl = NULL;
			err_set(e, "TLS: cannot make the connection");
			goto fail;
		}
		/* servers that end without close_notify are common; the body's length says more */
		bufferevent_openssl_set_allow_dirty_shutdown(u->bev, 1);
	}
	u->evcon = evhttp_connection_base_bufferevent_new(base, u->dns, u->bev, url.host,
	    (unsigned short)url.port);
	if (u->evcon == NULL) {
		err_set(e, "cannot make a connection to %s", u->where);
		goto fail;
	}
	struct timeval tv = { o->timeout_ms / 1000, (o->timeout_ms % 1000) * 1000 };
	evhttp_connection_set_timeout_tv(u->evcon, &tv);
	evhttp_connection_set_retries(u->evcon, 0);
	evhttp_connection_set_max_headers_size(u->evcon, 64 * 1024);
	evhttp_connection_set_max_body_size(u->evcon, (ev_ssize_t)o->max_response_bytes);

	struct evhttp_request *req = evhttp_request_new(done_cb, u);
	if (req == NULL) {
		err_set(e, "out of memory");
		goto fail;
	}
	evhttp_request_set_header_cb(req, head_cb);
	evhttp_request_set_chunked_cb(req, chunk_cb);
	evhttp_request_set_error_cb(req, error_cb);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char hostport[300], auth[4200];
	if (url.port == (url.tls ? 443 : 80))
		snprintf(hostport, sizeof(hostport), strchr(url.host, ':') ? "[%s]" : "%s", url.host);
	else
		snprintf(hostport, sizeof(hostport), "%s", u->where);
	evhttp_add_header(h, "Host", hostport);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Accept", "text/event-stream, application/json");
	evhttp_add_header(h, "Connection", "close");
	evhttp_add_header(h, "User-Agent", "guardd");
	if (o->api_key) {
		snprintf(auth, sizeof(auth), "Bearer %.4000s", o->api_key);
		evhttp_add_header(h, "Authorization", auth);
	}
	evbuffer_add(evhttp_request_get_output_buffer(req), body, n);
	if (evhttp_make_request(u->evcon, req, EVHTTP_REQ_POST, path) == -1) {
		/* evhttp freed the request */
		err_set(e, "cannot send the request to %s", u->where);
		goto fail;
	}
	struct timeval ctv = { o->connect_timeout_ms / 1000, (o->connect_timeout_ms % 1000) * 1000 };
	evtimer_add(u->ev_connect, &ctv);
	return u;
fail:
	if (u->evcon)
		evhttp_connection_free(u->evcon);
	else if (u->bev)
		bufferevent_free(u->bev);
	if (u->dns)
		evdns_base_free(u->dns, 0);
	if (u->ev_free)
		event_free(u->ev_free);
	if (u->ev_connect)
		event_free(u->ev_connect);
	free(u);
	return NULL;
}

void
upstream_close(struct upstream *u)
{
	if (u == NULL || u->closed)
		return;
	u->closed = 1;
	schedule_free(u);
}
