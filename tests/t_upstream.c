/* t_upstream.c - the proxy's upstream client (daemon/upstream.c) against the scripted
 * upstream tests/upstream.py, plain and over TLS with a certificate made for the test:
 * streamed bodies arrive whole, closing on demand reaches the upstream, errors, timeouts,
 * refused certificates and size limits become the documented statuses and messages.
 * Usage: t_upstream DIR (a temp dir holding, from openssl: cert.pem/cert.key for 127.0.0.1
 * and localhost, other.pem another CA, wrong.pem/wrong.key trusted but for another name) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "daemon/upstream.h"
#include "tap.h"
#include "util/buf.h"

static struct event_base *base;

struct outcome {
	int status, done, failed, closed_at_chunk;
	struct upstream_error err;
	struct buf body;
	char ctype[128];
	struct upstream *u;
	int close_after;	/* close on demand after this many data callbacks (0: never) */
	int n_data;
};

static void
on_head(void *arg, int status, const char *ct)
{
	struct outcome *o = arg;

	o->status = status;
	snprintf(o->ctype, sizeof(o->ctype), "%s", ct ? ct : "");
}

static void
on_data(void *arg, const char *p, size_t n)
{
	struct outcome *o = arg;

	buf_add(&o->body, p, n);
	if (o->close_after && ++o->n_data == o->close_after) {
		upstream_close(o->u);
		o->closed_at_chunk = o->n_data;
		o->done = 1;
	}
}

static void
on_done(void *arg)
{
	((struct outcome *)arg)->done = 1;
}

static void
on_fail(void *arg, const struct upstream_error *e)
{
	struct outcome *o = arg;

	o->failed = 1;
	o->err = *e;
}

static void
loop_break(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static const struct upstream_cbs cbs = { on_head, on_data, on_done, on_fail };

/* posts a chat whose user message carries the script; runs the loop until it ends (at most
 * 20 s, a bound, not a timing assertion) */
static int
post(const char *url, const char *ca, int verify, int timeout_ms, size_t max, const char *script,
    struct outcome *o)
{
	struct upstream_opts opt = { url, "sekrit", ca, verify, timeout_ms, 2000, max };
	struct err e;
	char body[512];

	int close_after = o->close_after;
	memset(o, 0, sizeof(*o));
	o->close_after = close_after;
	snprintf(body, sizeof(body), "{\"model\": \"m\", \"stream\": true, \"messages\": "
	    "[{\"role\": \"user\", \"content\": \"hi [script %s]\"}]}", script);
	o->u = upstream_post(base, &opt, "/chat/completions", body, strlen(body), &cbs, o, &e);
	if (o->u == NULL) {
		diag("upstream_post: %s", e.msg);
		return -1;
	}
	struct timeval limit = { 20, 0 };
	struct event *guard = evtimer_new(base, loop_break, base);
	evtimer_add(guard, &limit);
	while (!o->done && !o->failed && event_base_loop(base, EVLOOP_ONCE) == 0 && evtimer_pending(guard, NULL))
		;
	event_free(guard);
	if (!o->closed_at_chunk)
		upstream_close(o->u);
	event_base_loop(base, EVLOOP_NONBLOCK);	/* the deferred free */
	return 0;
}

static pid_t
start_upstream(const char *dir, const char *name, const char *tls, int *port)
{
	char portfile[512], logfile[512], cert[512], key[512];

	snprintf(portfile, sizeof(portfile), "%s/%s.port", dir, name);
	snprintf(logfile, sizeof(logfile), "%s/%s.log", dir, name);
	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, tls ? tls : "");
	snprintf(key, sizeof(key), "%s/%s.key", dir, tls ? tls : "");
	pid_t pid = fork();
	if (pid == 0) {
		if (tls)
			execlp("python3", "python3", "tests/upstream.py", portfile, logfile, cert, key, (char *)NULL);
		else
			execlp("python3", "python3", "tests/upstream.py", portfile, logfile, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) {	/* poll, bounded (10 s) */
		FILE *fp = fopen(portfile, "r");
		if (fp) {
			int ok = fscanf(fp, "%d", port) == 1;
			fclose(fp);
			if (ok)
				return pid;
		}
		usleep(10000);
	}
	printf("Bail out! tests/upstream.py did not start\n");
	kill(pid, SIGTERM);
	exit(1);
}

/* the upstream log's entries (JSON lines) */
static json_t *
log_entry(const char *dir, const char *name, int idx, int want_closed)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s.log", dir, name);
	for (int tries = 0; tries < 1000; tries++) {	/* the upstream writes it when it notices */
		FILE *fp = fopen(path, "r");
		char line[65536];
		int i = 0;
		json_t *found = NULL;
		while (fp && fgets(line, sizeof(line), fp))
			if (i++ == idx)
				found = json_loads(line, 0, NULL);
		if (fp)
			fclose(fp);
		if (found && (!want_closed || json_is_true(json_object_get(found, "client_closed"))))
			return found;
		json_decref(found);
		usleep(10000);
	}
	return NULL;
}

static int
count_substr(const char *s, const char *sub)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, sub)) != NULL; p++)
		n++;
	return n;
}

int
main(int argc, char **argv)
{
	struct outcome o = { 0 };
	char url[256], cafile[512], other[512];
	int port, tport;

	if (argc < 2) {
		printf("1..0 # SKIP usage: t_upstream DIR\n");
		return 0;
	}
	const char *dir = argv[1];
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	pid_t up = start_upstream(dir, "plain", NULL, &port);
	int n_log = 0;

	/* a stream arrives whole, with the key and the path */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/", port);
	post(url, NULL, 1, 5000, 1 << 20, "safe 4", &o);
	ok(o.done && !o.failed && o.status == 200 && strcmp(o.ctype, "text/event-stream") == 0,
	    "a stream: 200 text/event-stream, complete (%s)", o.failed ? o.err.msg : "");
	ok(o.body.p && count_substr(o.body.p, "data: ") == 6 && strstr(o.body.p, "data: [DONE]\n\n"),
	    "its 6 events arrived, [DONE] last");
	json_t *l = log_entry(dir, "plain", n_log++, 0);
	ok(l && strcmp(json_string_value(json_object_get(l, "path")), "/v1/chat/completions") == 0 &&
	    strcmp(json_string_value(json_object_get(l, "authorization")), "Bearer sekrit") == 0,
	    "the upstream saw POST /v1/chat/completions with the bearer key");
	json_decref(l);
	buf_free(&o.body);

	/* closing on demand: the upstream sees the client go while it still talks */
	o.close_after = 3;
	post(url, NULL, 1, 5000, 1 << 20, "unsafe 2", &o);
	ok(o.closed_at_chunk == 3 && !o.failed, "closed after the 3rd piece of body");
	l = log_entry(dir, "plain", n_log++, 1);
	ok(l && json_is_true(json_object_get(l, "client_closed")) &&
	    json_integer_value(json_object_get(l, "chunks")) < 300,
	    "the upstream saw the connection closed (after %d chunks)",
	    l ? (int)json_integer_value(json_object_get(l, "chunks")) : -1);
	json_decref(l);
	buf_free(&o.body);
	o.close_after = 0;

	/* an HTTP error status reaches the caller with its body */
	post(url, NULL, 1, 5000, 1 << 20, "status 429", &o);
	ok(o.done && o.status == 429 && o.body.p && strstr(o.body.p, "scripted failure"),
	    "an error status and its body are handed on (%d)", o.status);
	buf_free(&o.body);
	json_decref(log_entry(dir, "plain", n_log++, 0));

	/* silence: 504 */
	post(url, NULL, 1, 300, 1 << 20, "hang", &o);
	ok(o.failed && o.err.http_status == 504 && strcmp(o.err.code, "upstream_timeout") == 0 &&
	    strstr(o.err.msg, "upstream.timeout_ms (300 ms)"), "a silent stream times out: %d %s",
	    o.err.http_status, o.err.msg);
	buf_free(&o.body);
	post(url, NULL, 1, 300, 1 << 20, "hanghead", &o);
	ok(o.failed && o.err.http_status == 504 && strstr(o.err.msg, "silent"),
	    "no answer at all times out: %d %s", o.err.http_status, o.err.msg);
	buf_free(&o.body);
	n_log += 2;

	/* cut mid-stream, garbage, too large */
	post(url, NULL, 1, 5000, 1 << 20, "cut 2", &o);
	ok(o.failed && o.err.http_status == 502 && strcmp(o.err.code, "upstream_closed") == 0,
	    "a stream cut short: 502 %s (%s)", o.err.code, o.err.msg);
	buf_free(&o.body);
	post(url, NULL, 1, 5000, 1 << 20, "garbage", &o);
	ok(o.failed && o.err.http_status == 502, "garbage instead of HTTP: 502 %s (%s)",
	    o.err.code ? o.err.code : "-", o.err.msg);
	buf_free(&o.body);
	post(url, NULL, 1, 5000, 4096, "big 100000", &o);
	ok(o.failed && o.err.http_status == 502 && strcmp(o.err.code, "upstream_too_large") == 0 &&
	    o.body.n <= 4096, "a body over max_response_bytes: 502 %s after %zu bytes (%s)",
	    o.err.code ? o.err.code : "-", o.body.n, o.err.msg);
	buf_free(&o.body);

	/* nobody listening: 502 unreachable */
	kill(up, SIGTERM);
	waitpid(up, NULL, 0);
	post(url, NULL, 1, 5000, 1 << 20, "safe", &o);
	ok(o.failed && o.err.http_status == 502 && strcmp(o.err.code, "upstream_unreachable") == 0 &&
	    strstr(o.err.msg, "127.0.0.1:"), "a closed port: 502 %s (%s)", o.err.code ? o.err.code : "-",
	    o.err.msg);
	buf_free(&o.body);

	/* TLS: the test's own certificate */
	up = start_upstream(dir, "tls", "cert", &tport);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1", tport);
	snprintf(cafile, sizeof(cafile), "%s/cert.pem", dir);
	snprintf(other, sizeof(other), "%s/other.pem", dir);
	post(url, NULL, 1, 5000, 1 << 20, "safe 2", &o);
	ok(o.failed && o.err.http_status == 502 && strcmp(o.err.code, "upstream_tls") == 0,
	    "https with the system's CAs: the self-signed certificate refused (%s)", o.err.msg);
	buf_free(&o.body);
	post(url, other, 1, 5000, 1 << 20, "safe 2", &o);
	ok(o.failed && strcmp(o.err.code ? o.err.code : "", "upstream_tls") == 0,
	    "another CA: refused (%s)", o.err.msg);
	buf_free(&o.body);
	post(url, cafile, 1, 5000, 1 << 20, "safe 2", &o);
	ok(o.done && !o.failed && o.status == 200 && o.body.p && strstr(o.body.p, "[DONE]"),
	    "with its CA as upstream.ca_file: accepted, the stream complete (%s)", o.failed ? o.err.msg : "");
	buf_free(&o.body);
	snprintf(url, sizeof(url), "https://localhost:%d/v1", tport);
	post(url, cafile, 1, 5000, 1 << 20, "safe 2", &o);
	ok(o.done && !o.failed && o.status == 200, "by its name localhost too (%s)", o.failed ? o.err.msg : "");
	buf_free(&o.body);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1", tport);
	post(url, NULL, 0, 5000, 1 << 20, "safe 2", &o);
	ok(o.done && !o.failed && o.status == 200, "upstream.verify false: accepted without a CA (%s)",
	    o.failed ? o.err.msg : "");
	buf_free(&o.body);
	kill(up, SIGTERM);
	waitpid(up, NULL, 0);
	/* a certificate trusted but made out to another name */
	up = start_upstream(dir, "wrong", "wrong", &tport);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1", tport);
	snprintf(other, sizeof(other), "%s/wrong.pem", dir);
	post(url, other, 1, 5000, 1 << 20, "safe 2", &o);
	ok(o.failed && o.err.http_status == 502 && strcmp(o.err.code ? o.err.code : "", "upstream_tls") == 0 &&
	    strstr(o.err.msg, "mismatch"), "a trusted certificate for another name: refused (%s)", o.err.msg);
	buf_free(&o.body);
	kill(up, SIGTERM);
	waitpid(up, NULL, 0);

	/* setup errors */
	struct err e;
	struct upstream_opts bad = { "ftp://x", NULL, NULL, 1, 1000, 1000, 4096 };
	ok(upstream_post(base, &bad, "/chat/completions", "{}", 2, &cbs, &o, &e) == NULL &&
	    strstr(e.msg, "http or https"), "an ftp url is refused (%s)", e.msg);
	struct upstream_opts noca = { "https://127.0.0.1:1/v1", NULL, "/nonexistent/ca.pem", 1, 1000, 1000, 4096 };
	ok(upstream_post(base, &noca, "/chat/completions", "{}", 2, &cbs, &o, &e) == NULL &&
	    strstr(e.msg, "/nonexistent/ca.pem"), "a missing CA file is named (%s)", e.msg);
	ok(upstream_url_check("http://u:p@h/v1", &e) == -1 && strstr(e.msg, "user"), "a user in the url is refused");
	ok(upstream_url_check("http://h:99999/v1", &e) == -1, "a port out of range is refused (%s)", e.msg);
	ok(upstream_url_check("https://[::1]:8443/v1", &e) == 0, "an IPv6 literal is fine");

	event_base_free(base);
	printf("1..%d\n", tap_n);
	return tap_fail != 0;
}
