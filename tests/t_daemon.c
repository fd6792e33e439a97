/* t_daemon.c - guardd from the outside: real daemons on private sockets in a temp dir,
 * readiness polled with a bound, then round trips, pipelining, 16 concurrent clients,
 * malformed/oversize/truncated/slow/vanishing clients (and the daemon still serving), a
 * full queue, deadlines, the verdict log, SIGHUP reloads, SIGTERM drain, guardd -t.
 *   t_daemon GUARDD RIG_MODEL SLOW_MODEL POLICY */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <jansson.h>
#include <msgpack.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mpclient.h"
#include "tap.h"

static const char *guardd, *rig, *slow, *policy;
static char dir[256];

/* --- a daemon ---------------------------------------------------------------------------- */

struct daemon_t {
	pid_t pid;
	char sock[300], conf[300], log[300];
};

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fputs(text, fp) == EOF || fclose(fp) != 0) {
		printf("Bail out! %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* starts guardd -f with this configuration; waits (bounded) until it accepts */
static int
start(struct daemon_t *d, const char *name, const char *extra)
{
	char text[4096];

	snprintf(d->sock, sizeof(d->sock), "%s/%s.sock", dir, name);
	snprintf(d->conf, sizeof(d->conf), "%s/%s.yaml", dir, name);
	snprintf(d->log, sizeof(d->log), "%s/%s.jsonl", dir, name);
	snprintf(text, sizeof(text), "listen: %s\nsocket_mode: \"0600\"\nthreads: 2\n"
	    "log: {path: %s, content: sha256}\n%s", d->sock, d->log, extra);
	write_file(d->conf, text);
	if ((d->pid = fork()) == 0) {
		char errpath[320];
		snprintf(errpath, sizeof(errpath), "%s/%s.stderr", dir, name);
		int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		execl(guardd, guardd, "-f", "-c", d->conf, (char *)NULL);
		_exit(127);
	}
	for (double t0 = now(); now() - t0 < 30;) {
		int fd = try_connect(d->sock);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		int st;
		if (waitpid(d->pid, &st, WNOHANG) == d->pid)
			return -1;
		poll(NULL, 0, 20);
	}
	return -1;
}

static int
alive(const struct daemon_t *d)
{
	return kill(d->pid, 0) == 0 && waitpid(d->pid, NULL, WNOHANG) == 0;
}

/* waits (bounded) for the daemon to exit; its status, or -1 */
static int
wait_exit(struct daemon_t *d, double limit)
{
	int st;

	for (double t0 = now(); now() - t0 < limit; poll(NULL, 0, 20))
		if (waitpid(d->pid, &st, WNOHANG) == d->pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	return -1;
}

/* --- a client ---------------------------------------------------------------------------- */

struct cl {
	int fd;
	msgpack_unpacker up;
};

static int
cl_open(struct cl *c, const char *sock)
{
	if ((c->fd = try_connect(sock)) < 0)
		return -1;
	msgpack_unpacker_init(&c->up, 65536);
	return 0;
}

static void
cl_close(struct cl *c)
{
	close(c->fd);
	msgpack_unpacker_destroy(&c->up);
}

static int
cl_send(struct cl *c, const void *p, size_t n)
{
	const char *b = p;

	while (n > 0) {
		ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
		if (w < 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static json_t *
obj_json(const msgpack_object *o)
{
	json_t *j;

	switch (o->type) {
	case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR: return json_stringn(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_ARRAY:
		j = json_array();
		for (uint32_t i = 0; i < o->via.array.size; i++)
			json_array_append_new(j, obj_json(&o->via.array.ptr[i]));
		return j;
	case MSGPACK_OBJECT_MAP:
		j = json_object();
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			char k[128];
			snprintf(k, sizeof(k), "%.*s", (int)o->via.map.ptr[i].key.via.str.size,
			    o->via.map.ptr[i].key.via.str.ptr);
			json_object_set_new(j, k, obj_json(&o->via.map.ptr[i].val));
		}
		return j;
	default: return json_null();
	}
}

/* the next answer, NULL on EOF or after `limit` seconds */
static json_t *
cl_recv(struct cl *c, double limit)
{
	msgpack_unpacked r;
	double t0 = now();

	msgpack_unpacked_init(&r);
	for (;;) {
		if (msgpack_unpacker_next(&c->up, &r) == MSGPACK_UNPACK_SUCCESS) {
			json_t *j = obj_json(&r.data);
			msgpack_unpacked_destroy(&r);
			return j;
		}
		struct pollfd pf = { c->fd, POLLIN, 0 };
		int left = (int)((limit - (now() - t0)) * 1000);
		if (left <= 0 || poll(&pf, 1, left) <= 0)
			break;
		msgpack_unpacker_reserve_buffer(&c->up, 65536);
		ssize_t n = recv(c->fd, msgpack_unpacker_buffer(&c->up), 65536, 0);
		if (n <= 0)
			break;
		msgpack_unpacker_buffer_consumed(&c->up, (size_t)n);
	}
	msgpack_unpacked_destroy(&r);
	return NULL;
}

/* the peer closed: recv returns 0 (bounded wait) */
static int
cl_closed(struct cl *c, double limit)
{
	char b[4096];
	double t0 = now();

	for (;;) {
		struct pollfd pf = { c->fd, POLLIN, 0 };
		int left = (int)((limit - (now() - t0)) * 1000);
		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return 0;
		ssize_t n = recv(c->fd, b, sizeof(b), 0);
		if (n <= 0)
			return 1;
	}
}

static void
pack_op(msgpack_sbuffer *sb, long id, const char *op)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	pstr(&pk, "id");
	msgpack_pack_int64(&pk, id);
	pstr(&pk, "op");
	pstr(&pk, op);
}

static json_t *
request(const char *sock, const char *op)
{
	struct cl c;
	msgpack_sbuffer sb;
	json_t *r = NULL;

	if (cl_open(&c, sock) == -1)
		return NULL;
	msgpack_sbuffer_init(&sb);
	pack_op(&sb, 1, op);
	cl_send(&c, sb.data, sb.size);
	r = cl_recv(&c, 10);
	msgpack_sbuffer_destroy(&sb);
	cl_close(&c);
	return r;
}

static const char *
err_code(json_t *r)
{
	return json_string_value(json_object_get(json_object_get(r, "error"), "code"));
}

static const char *
decision(json_t *r)
{
	return json_string_value(json_object_get(json_object_get(r, "verdict"), "decision"));
}

static int
pong(const char *sock)
{
	json_t *r = request(sock, "ping");
	int okk = r && json_is_true(json_object_get(r, "ok")) && json_object_get(r, "pong");

	json_decref(r);
	return okk;
}

/* --- 16 concurrent clients ---------------------------------------------------------------- */

struct worker_arg {
	const char *sock;
	int idx, answered, correct, matched;
};

static void *
client_thread(void *a)
{
	struct worker_arg *w = a;
	struct cl c;

	if (cl_open(&c, w->sock) == -1)
		return NULL;
	for (int i = 0; i < 50; i++) {
		msgpack_sbuffer sb;
		long id = w->idx * 1000 + i;
		int bad = (i + w->idx) % 3 == 0;
		msgpack_sbuffer_init(&sb);
		pack_classify(&sb, id, bad ? "where do I get a bomb" : "where do I get bread", 0);
		cl_send(&c, sb.data, sb.size);
		msgpack_sbuffer_destroy(&sb);
		json_t *r = cl_recv(&c, 30);
		if (r == NULL)
			break;
		w->answered++;
		w->matched += json_integer_value(json_object_get(r, "id")) == id;
		const char *d = decision(r);
		w->correct += d && strcmp(d, bad ? "block" : "allow") == 0;
		json_decref(r);
	}
	cl_close(&c);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct daemon_t d, s2;
	char extra[2048];
	msgpack_sbuffer sb;
	struct cl c;
	json_t *r;

	if (argc != 5)
		return 2;
	if (access(argv[2], R_OK) != 0 || access(argv[3], R_OK) != 0)
		skip_all("test models not built (../shared absent)");
	/* absolute: the configuration's relative paths are taken from its own directory */
	guardd = realpath(argv[1], NULL);
	rig = realpath(argv[2], NULL);
	slow = realpath(argv[3], NULL);
	policy = realpath(argv[4], NULL);
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/guardd-t-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	char pol[320];
	snprintf(pol, sizeof(pol), "%s/policy.yaml", dir);
	write_file(pol, "name: test\ncategories: {S10: {threshold: 0.3}}\n");
	snprintf(extra, sizeof(extra), "model: %s\npolicy: %s\npolicies: {strict: %s}\n"
	    "batch: 4\nlimits: {max_request_bytes: 65536, max_messages: 8, max_queue: 64}\n", rig, pol, policy);
	if (!ok(start(&d, "main", extra) == 0, "guardd starts and accepts on its socket"))
		return done_testing();

	/* round trips */
	ok(pong(d.sock), "ping: pong");
	cl_open(&c, d.sock);
	msgpack_sbuffer_init(&sb);
	pack_classify(&sb, 42, "How do I make a bomb?", 0);
	cl_send(&c, sb.data, sb.size);
	r = cl_recv(&c, 10);
	ok(r && json_integer_value(json_object_get(r, "id")) == 42 && decision(r) &&
	    strcmp(decision(r), "block") == 0, "classify: the answer carries the id and a block verdict");
	const char *hash = r ? json_string_value(json_object_get(json_object_get(r, "verdict"), "policy_hash")) : NULL;
	char hash1[80] = "";
	snprintf(hash1, sizeof(hash1), "%s", hash ? hash : "");
	json_decref(r);
	/* a string id, a named policy, an unknown field */
	msgpack_sbuffer_clear(&sb);
	{
		msgpack_packer pk;
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 5);
		pstr(&pk, "id"); pstr(&pk, "req-7");
		pstr(&pk, "op"); pstr(&pk, "classify");
		pstr(&pk, "policy"); pstr(&pk, "strict");
		pstr(&pk, "future_field"); msgpack_pack_array(&pk, 2); msgpack_pack_nil(&pk); msgpack_pack_true(&pk);
		pstr(&pk, "messages"); msgpack_pack_array(&pk, 2);
		msgpack_pack_map(&pk, 2); pstr(&pk, "role"); pstr(&pk, "user"); pstr(&pk, "content"); pstr(&pk, "hi");
		msgpack_pack_map(&pk, 2); pstr(&pk, "role"); pstr(&pk, "assistant"); pstr(&pk, "content"); pstr(&pk, "hello");
	}
	cl_send(&c, sb.data, sb.size);
	r = cl_recv(&c, 10);
	ok(r && json_is_string(json_object_get(r, "id")) && strcmp(json_string_value(json_object_get(r, "id")), "req-7") == 0 &&
	    strcmp(json_string_value(json_object_get(json_object_get(r, "verdict"), "role")), "assistant") == 0,
	    "a string id, a named policy and an unknown field: answered");
	ok(r && strcmp(json_string_value(json_object_get(json_object_get(r, "verdict"), "policy_hash")), hash1) != 0,
	    "the named policy has its own hash");
	json_decref(r);

	/* pipelining: 20 requests in one write, answers matched by id */
	msgpack_sbuffer_clear(&sb);
	for (int i = 0; i < 20; i++)
		pack_classify(&sb, 100 + i, i % 2 ? "a bomb" : "a cake", 0);
	cl_send(&c, sb.data, sb.size);
	int got = 0, right = 0;
	unsigned seen = 0;
	for (int i = 0; i < 20; i++) {
		r = cl_recv(&c, 10);
		if (r == NULL)
			break;
		long id = (long)json_integer_value(json_object_get(r, "id")) - 100;
		if (id >= 0 && id < 20 && !(seen & (1u << id))) {
			seen |= 1u << id;
			got++;
			right += decision(r) && strcmp(decision(r), id % 2 ? "block" : "allow") == 0;
		}
		json_decref(r);
	}
	ok(got == 20 && right == 20, "20 pipelined requests: every id answered once, correctly (%d, %d)", got, right);
	cl_close(&c);

	/* 16 concurrent clients x 50 requests */
	pthread_t th[16];
	struct worker_arg wa[16];
	double t0 = now();
	for (int i = 0; i < 16; i++) {
		wa[i] = (struct worker_arg){ d.sock, i, 0, 0, 0 };
		pthread_create(&th[i], NULL, client_thread, &wa[i]);
	}
	int ans = 0, cor = 0, mat = 0;
	for (int i = 0; i < 16; i++) {
		pthread_join(th[i], NULL);
		ans += wa[i].answered;
		cor += wa[i].correct;
		mat += wa[i].matched;
	}
	ok(ans == 800 && mat == 800 && cor == 800, "16 clients x 50 requests: %d answered, %d matched, %d correct "
	    "(%.0f requests/s)", ans, mat, cor, 800 / (now() - t0));

	/* malformed input: each client gets its error, the daemon serves the others */
	cl_open(&c, d.sock);
	cl_send(&c, "\xc1", 1);
	r = cl_recv(&c, 10);
	ok(r && err_code(r) && strcmp(err_code(r), "bad_request") == 0, "an invalid msgpack byte: bad_request");
	ok(cl_closed(&c, 10), "and that connection is closed (framing is lost)");
	json_decref(r);
	cl_close(&c);
	ok(pong(d.sock), "the daemon still answers others");

	cl_open(&c, d.sock);
	msgpack_sbuffer_clear(&sb);
	{
		msgpack_packer pk;
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 2); pstr(&pk, "id"); msgpack_pack_int(&pk, 1); pstr(&pk, "op"); msgpack_pack_int(&pk, 5);
		msgpack_pack_array(&pk, 1); pstr(&pk, "not a map");
		msgpack_pack_map(&pk, 1); pstr(&pk, "id"); msgpack_pack_int(&pk, 3);
		msgpack_pack_map(&pk, 2); pstr(&pk, "id"); msgpack_pack_int(&pk, 4); pstr(&pk, "op"); pstr(&pk, "explode");
		msgpack_pack_map(&pk, 3); pstr(&pk, "id"); msgpack_pack_int(&pk, 5); pstr(&pk, "op"); pstr(&pk, "classify");
		pstr(&pk, "messages"); msgpack_pack_array(&pk, 2);
		for (int k = 0; k < 2; k++) {
			msgpack_pack_map(&pk, 2); pstr(&pk, "role"); pstr(&pk, "user"); pstr(&pk, "content"); pstr(&pk, "x");
		}
		msgpack_pack_map(&pk, 4); pstr(&pk, "id"); msgpack_pack_int(&pk, 6); pstr(&pk, "op"); pstr(&pk, "classify");
		pstr(&pk, "policy"); pstr(&pk, "nope");
		pstr(&pk, "messages"); msgpack_pack_array(&pk, 1);
		msgpack_pack_map(&pk, 2); pstr(&pk, "role"); pstr(&pk, "user"); pstr(&pk, "content"); pstr(&pk, "x");
		msgpack_pack_map(&pk, 3); pstr(&pk, "id"); msgpack_pack_int(&pk, 7); pstr(&pk, "op"); pstr(&pk, "classify");
		pstr(&pk, "messages"); msgpack_pack_array(&pk, 9);
		for (int k = 0; k < 9; k++) {
			msgpack_pack_map(&pk, 2); pstr(&pk, "role"); pstr(&pk, k % 2 ? "assistant" : "user"); pstr(&pk, "content"); pstr(&pk, "x");
		}
	}
	pack_op(&sb, 8, "ping");
	cl_send(&c, sb.data, sb.size);
	const char *want[] = { "bad_request", "bad_request", "bad_request", "unknown_op", "bad_request",
		"unknown_policy", "bad_request" };
	const char *what[] = { "op of the wrong type", "a request that is not a map", "a request without op",
		"an unknown op", "roles that do not alternate", "an unknown policy", "more messages than the limit" };
	for (int i = 0; i < 7; i++) {
		r = cl_recv(&c, 10);
		ok(r && err_code(r) && strcmp(err_code(r), want[i]) == 0, "%s: %s (%s)", what[i], want[i],
		    r ? json_string_value(json_object_get(json_object_get(r, "error"), "message")) : "no answer");
		json_decref(r);
	}
	r = cl_recv(&c, 10);
	ok(r && json_integer_value(json_object_get(r, "id")) == 8 && json_is_true(json_object_get(r, "ok")),
	    "the same connection keeps working after those errors");
	json_decref(r);
	cl_close(&c);

	/* oversize: a declared size beyond the limit, and real bytes beyond it */
	cl_open(&c, d.sock);
	cl_send(&c, "\x81\xa2id\xdb\x00\xa0\x00\x00", 9);	/* str32 of 10 MB */
	r = cl_recv(&c, 10);
	ok(r && err_code(r) && strcmp(err_code(r), "too_large") == 0, "a frame declaring 10 MB: too_large");
	ok(cl_closed(&c, 10), "and the connection is closed");
	json_decref(r);
	cl_close(&c);
	cl_open(&c, d.sock);
	char *big = malloc(100000);
	memset(big, 'x', 99999);
	big[99999] = '\0';
	msgpack_sbuffer_clear(&sb);
	pack_classify(&sb, 9, big, 0);
	cl_send(&c, sb.data, sb.size);
	r = cl_recv(&c, 10);
	ok(r && err_code(r) && strcmp(err_code(r), "too_large") == 0, "a 100 KB request over a 64 KB limit: too_large");
	json_decref(r);
	cl_close(&c);
	/* truncated: half a frame, then the client stops writing */
	cl_open(&c, d.sock);
	msgpack_sbuffer_clear(&sb);
	pack_classify(&sb, 10, "a cake", 0);
	cl_send(&c, sb.data, sb.size / 2);
	shutdown(c.fd, SHUT_WR);
	r = cl_recv(&c, 10);
	ok(r && err_code(r) && strcmp(err_code(r), "bad_request") == 0 &&
	    strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")), "truncated"),
	    "a truncated frame: bad_request, truncated");
	json_decref(r);
	cl_close(&c);
	/* a slow client: one byte at a time */
	cl_open(&c, d.sock);
	msgpack_sbuffer_clear(&sb);
	pack_classify(&sb, 11, "slowly, a bomb", 0);
	for (size_t i = 0; i < sb.size; i++) {
		cl_send(&c, sb.data + i, 1);
		poll(NULL, 0, 1);
	}
	r = cl_recv(&c, 10);
	ok(r && json_integer_value(json_object_get(r, "id")) == 11 && decision(r) && strcmp(decision(r), "block") == 0,
	    "a client sending one byte at a time gets its verdict");
	json_decref(r);
	cl_close(&c);
	ok(alive(&d) && pong(d.sock), "after all that the daemon is alive and answers");

	/* stats, and the verdict log */
	r = request(d.sock, "stats");
	json_t *st = json_object_get(r, "stats");
	ok(st && json_integer_value(json_object_get(json_object_get(st, "verdicts"), "block")) > 0 &&
	    json_is_number(json_object_get(json_object_get(st, "latency_ms"), "p99")) &&
	    json_object_get(json_object_get(st, "policies"), "strict"), "stats: verdict counters, latency percentiles, policies");
	json_decref(r);
	FILE *fp = fopen(d.log, "r");
	char line[65536];
	int lines = 0, parsed = 0, hashed = 0;
	while (fp && fgets(line, sizeof(line), fp)) {
		json_error_t je;
		json_t *j = json_loads(line, 0, &je);
		lines++;
		if (j) {
			parsed++;
			hashed += json_is_string(json_object_get(j, "policy_hash")) &&
			    json_is_string(json_object_get(j, "content_sha256")) &&
			    json_is_integer(json_object_get(json_object_get(j, "peer"), "uid")) &&
			    json_object_get(j, "time") != NULL;
		}
		json_decref(j);
	}
	if (fp)
		fclose(fp);
	ok(lines >= 800 && parsed == lines && hashed == lines, "the verdict log: %d lines, all JSON with time, "
	    "peer, policy hash and content sha256", lines);

	/* SIGHUP with a broken policy keeps the old one; a good one replaces it */
	write_file(pol, "name: test\ncategories: {S10: {threshold: 7}}\n");
	kill(d.pid, SIGHUP);
	r = request(d.sock, "reload");
	ok(r && err_code(r) && strcmp(err_code(r), "reload_failed") == 0 &&
	    strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")), "outside [0, 1]"),
	    "reload of a broken policy: reload_failed with the file's error");
	json_decref(r);
	r = request(d.sock, "stats");
	ok(r && strcmp(json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(r, "stats"),
	    "policies"), "default"), "hash")), hash1) == 0, "the old policy is still in force");
	json_decref(r);
	write_file(pol, "name: test\ncategories: {S10: {threshold: 0.2}}\n");
	kill(d.pid, SIGHUP);
	int changed = 0;
	for (double tt = now(); now() - tt < 20 && !changed; poll(NULL, 0, 20)) {
		r = request(d.sock, "stats");
		const char *h = json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(r,
		    "stats"), "policies"), "default"), "hash"));
		changed = h && strcmp(h, hash1) != 0;
		json_decref(r);
	}
	ok(changed, "SIGHUP with a fixed policy: the new hash is in force");
	ok(pong(d.sock) && alive(&d), "and the daemon serves on");

	/* SIGTERM: in-flight work is answered, the socket goes, exit 0 */
	cl_open(&c, d.sock);
	msgpack_sbuffer_clear(&sb);
	for (int i = 0; i < 8; i++)
		pack_classify(&sb, 200 + i, "a bomb, again", 0);
	cl_send(&c, sb.data, sb.size);
	r = cl_recv(&c, 10);	/* the first answer: the rest is queued or in flight */
	json_decref(r);
	kill(d.pid, SIGTERM);
	int answered = 1;
	while ((r = cl_recv(&c, 10)) != NULL) {
		answered++;
		json_decref(r);
	}
	cl_close(&c);
	int code = wait_exit(&d, 20);
	ok(answered == 8, "SIGTERM: all 8 in-flight requests were answered (%d)", answered);
	ok(code == 0, "SIGTERM: exit status 0 (%d)", code);
	ok(access(d.sock, F_OK) != 0, "SIGTERM: the socket is removed");

	/* a slow model: a full queue says busy, deadlines give timeout, vanished clients */
	snprintf(extra, sizeof(extra), "model: %s\npolicy: %s\nbatch: 1\nlimits: {max_queue: 2, "
	    "max_request_bytes: 1048576}\n", slow, policy);
	if (ok(start(&s2, "slow", extra) == 0, "a second guardd with a slower model and a queue of 2")) {
		char *longmsg = malloc(20001);
		for (int i = 0; i < 20000; i++)
			longmsg[i] = "abcdefgh "[i % 9];
		longmsg[20000] = '\0';
		cl_open(&c, s2.sock);
		msgpack_sbuffer_clear(&sb);
		for (int i = 0; i < 12; i++)
			pack_classify(&sb, 300 + i, longmsg, 0);
		cl_send(&c, sb.data, sb.size);
		int busy = 0, n = 0;
		for (; n < 12; n++) {
			r = cl_recv(&c, 60);
			if (r == NULL)
				break;
			busy += err_code(r) && strcmp(err_code(r), "busy") == 0;
			json_decref(r);
		}
		ok(n == 12 && busy > 0, "12 requests at once into a queue of 2: all answered, %d busy", busy);
		msgpack_sbuffer_clear(&sb);
		pack_classify(&sb, 400, longmsg, 1);
		cl_send(&c, sb.data, sb.size);
		r = cl_recv(&c, 60);
		ok(r && err_code(r) && strcmp(err_code(r), "timeout") == 0, "a 1 ms deadline: timeout");
		json_decref(r);
		cl_close(&c);
		/* a client that disconnects mid-request */
		for (int i = 0; i < 3; i++) {
			cl_open(&c, s2.sock);
			msgpack_sbuffer_clear(&sb);
			pack_classify(&sb, 500 + i, longmsg, 0);
			cl_send(&c, sb.data, sb.size);
			cl_close(&c);
		}
		ok(pong(s2.sock), "clients that vanish mid-request: the daemon answers the next one");
		int dropped = 0;
		for (double tt = now(); now() - tt < 30 && !dropped; poll(NULL, 0, 50)) {
			r = request(s2.sock, "stats");
			st = json_object_get(json_object_get(r, "stats"), "errors");
			dropped = json_integer_value(json_object_get(st, "dropped")) > 0;
			json_decref(r);
		}
		ok(dropped, "their queued work was dropped, not computed");
		kill(s2.pid, SIGTERM);
		ok(wait_exit(&s2, 30) == 0, "the second daemon stops cleanly");
		free(longmsg);
	}

	/* started as root: drop to the configured user after binding; the socket's group */
	if (geteuid() == 0) {
		snprintf(extra, sizeof(extra), "model: %s\nuser: nobody\nsocket_group: nogroup\n"
		    "limits: {max_connections: 2}\n", rig);
		if (ok(start(&s2, "priv", extra) == 0, "a guardd configured with user nobody starts")) {
			char path[64], line[256];
			unsigned uid = 0;
			/* privilege separation: the serving (inference) process is the child */
			json_t *sr = request(s2.sock, "stats");
			long cpid = (long)json_integer_value(json_object_get(json_object_get(
			    json_object_get(sr, "stats"), "process"), "pid"));
			json_decref(sr);
			snprintf(path, sizeof(path), "/proc/%ld/status", cpid);
			FILE *st_fp = fopen(path, "r");
			while (st_fp && fgets(line, sizeof(line), st_fp))
				if (sscanf(line, "Uid:\t%u", &uid) == 1)
					break;
			if (st_fp)
				fclose(st_fp);
			ok(cpid > 0 && cpid != (long)s2.pid && uid == 65534,
			    "its inference process %ld runs as nobody (uid %u)", cpid, uid);
			struct stat sst;
			struct group *ng = getgrnam("nogroup");
			ok(stat(s2.sock, &sst) == 0 && ng && sst.st_gid == ng->gr_gid && (sst.st_mode & 0777) == 0600,
			    "the socket has the configured group and mode");
			/* max_connections: 2 */
			struct cl a, b, x;
			cl_open(&a, s2.sock);
			cl_open(&b, s2.sock);
			cl_open(&x, s2.sock);
			r = cl_recv(&x, 10);
			ok(r && err_code(r) && strcmp(err_code(r), "too_many_connections") == 0,
			    "a third connection over max_connections 2: too_many_connections");
			json_decref(r);
			cl_close(&x);
			msgpack_sbuffer_clear(&sb);
			pack_op(&sb, 1, "ping");
			cl_send(&a, sb.data, sb.size);
			r = cl_recv(&a, 10);
			ok(r && json_is_true(json_object_get(r, "ok")), "the first two are served");
			json_decref(r);
			cl_close(&a);
			cl_close(&b);
			kill(s2.pid, SIGTERM);
			ok(wait_exit(&s2, 20) == 0, "and it stops cleanly");
		}
	}

	/* who may connect */
	snprintf(extra, sizeof(extra), "model: %s\nallow_uids: [4242]\nallow_gids: [4242]\n", rig);
	if (start(&s2, "acl", extra) == 0) {
		cl_open(&c, s2.sock);
		r = cl_recv(&c, 10);
		ok(r && err_code(r) && strcmp(err_code(r), "forbidden") == 0, "allow_uids/allow_gids: others are refused");
		json_decref(r);
		cl_close(&c);
		kill(s2.pid, SIGTERM);
		wait_exit(&s2, 20);
	}

	/* systemd socket activation: the socket arrives as fd 3 (LISTEN_FDS, LISTEN_PID) */
	{
		char path[320], conf[320], text[1024];
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		snprintf(path, sizeof(path), "%s/activated.sock", dir);
		if (strlen(path) < sizeof(sun.sun_path))
			memcpy(sun.sun_path, path, strlen(path) + 1);
		int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
		int bound = bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == 0 && listen(lfd, 16) == 0;
		snprintf(conf, sizeof(conf), "%s/activated.yaml", dir);
		snprintf(text, sizeof(text), "listen: %s/unused.sock\nmodel: %s\n", dir, rig);
		write_file(conf, text);
		pid_t pid = fork();
		if (pid == 0) {
			char n[32];
			dup2(lfd, 3);
			snprintf(n, sizeof(n), "%d", (int)getpid());
			setenv("LISTEN_PID", n, 1);
			setenv("LISTEN_FDS", "1", 1);
			int null = open("/dev/null", O_WRONLY);
			dup2(null, 2);
			execl(guardd, guardd, "-f", "-c", conf, (char *)NULL);
			_exit(127);
		}
		close(lfd);
		int up = 0;
		for (double tt = now(); bound && now() - tt < 30 && !up; poll(NULL, 0, 20))
			up = pong(path);
		ok(bound && up, "socket activation: guardd serves the socket it was given");
		ok(access(path, F_OK) == 0 && access(conf, F_OK) == 0, "and does not create its own");
		struct daemon_t a = { .pid = pid };
		kill(pid, SIGTERM);
		ok(wait_exit(&a, 20) == 0 && access(path, F_OK) == 0,
		    "on SIGTERM it exits 0 and leaves the socket to systemd");
	}

	/* guardd -t */
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "%s -t -c %s 2>/dev/null", guardd, d.conf);
	ok(system(cmd) == 0, "guardd -t on a good configuration: exit 0");
	char bad[320];
	snprintf(bad, sizeof(bad), "%s/bad.yaml", dir);
	write_file(bad, "listen: /tmp/x.sock\nmodel: /nonexistent.gguf\n");
	snprintf(cmd, sizeof(cmd), "%s -t -c %s 2>&1", guardd, bad);
	fp = popen(cmd, "r");
	char out[2048] = "";
	size_t on = fread(out, 1, sizeof(out) - 1, fp);
	out[on] = '\0';
	int rc = pclose(fp);
	ok(WEXITSTATUS(rc) == 1 && strstr(out, "/nonexistent.gguf"), "guardd -t with a missing model: exit 1, named");
	write_file(bad, "listen: /tmp/x.sock\nmodel: m.gguf\nlimits: {max_queue: 0}\n");
	fp = popen(cmd, "r");
	on = fread(out, 1, sizeof(out) - 1, fp);
	out[on] = '\0';
	rc = pclose(fp);
	ok(WEXITSTATUS(rc) == 1 && strstr(out, "bad.yaml:3:21: limits.max_queue: 0 is outside"),
	    "guardd -t with a bad limit: exit 1, file:line:column and key (%s)", out);
	write_file(bad, "listen: /tmp/x.sock\nmodel: m.gguf\nmodle: typo\n");
	fp = popen(cmd, "r");
	on = fread(out, 1, sizeof(out) - 1, fp);
	out[on] = '\0';
	rc = pclose(fp);
	ok(WEXITSTATUS(rc) == 1 && strstr(out, "modle: unknown key"), "guardd -t with an unknown key: exit 1");

	msgpack_sbuffer_destroy(&sb);
	free(big);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
