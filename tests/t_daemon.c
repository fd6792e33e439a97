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
#include <sys/types.h>
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

#include "asan.h"
#include "dharness.h"

static const char *rig, *slow, *policy;

/* --- 16 concurrent clients ---------------------------------------------------------------- */

/* requests per client: under ASan 5 of the 50 (the same paths, 16 clients at once; a
 * request there costs about 30 times the CPU) */
#define PER_CLIENT (UNDER_ASAN ? 5 : 50)

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
	for (int i = 0; i < PER_CLIENT; i++) {
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

/* --- peers by credentials: a client running as nobody ------------------------------------ */

/* runs `guard ARGS` as nobody (setpriv); its exit status, its stdout+stderr in out */
static int
guard_as_nobody(const char *args, char *out, size_t n)
{
	char cmd[1200], gpath[600];
	const char *slash = strrchr(guardd, '/');

	snprintf(gpath, sizeof(gpath), "%.*s/guard", (int)(slash - guardd), guardd);
	snprintf(cmd, sizeof(cmd), "setpriv --reuid=nobody --regid=nogroup --clear-groups %s %s 2>&1", gpath, args);
	FILE *fp = popen(cmd, "r");
	size_t k = fp ? fread(out, 1, n - 1, fp) : 0;
	out[k] = '\0';
	if (k > 0 && out[k - 1] == '\n')
		out[k - 1] = '\0';
	int rc = fp ? pclose(fp) : -1;
	return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* a forked client running as nobody. what 'F': it sends nothing and must be refused with
 * forbidden; 'R': `reload` then `ping` on one connection, forbidden then pong. 0: as expected;
 * 1: no connection; 2: not forbidden; 3: no pong after the refused reload */
static int
as_nobody(const char *sock, int what)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct cl c;
		msgpack_sbuffer sb;
		if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
			_exit(9);
		if (cl_open(&c, sock) == -1)
			_exit(1);
		if (what == 'F')
			_exit(is_err(cl_recv(&c, 10), "forbidden") ? 0 : 2);
		msgpack_sbuffer_init(&sb);
		pack_op(&sb, 1, "reload");
		pack_op(&sb, 2, "ping");
		cl_send(&c, sb.data, sb.size);
		json_t *r = cl_recv(&c, 10);
		if (!is_err(r, "forbidden") || json_integer_value(json_object_get(r, "id")) != 1)
			_exit(2);
		r = cl_recv(&c, 10);
		_exit(r && json_object_get(r, "pong") ? 0 : 3);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void
test_peers(void)
{
	struct daemon_t p;
	char extra[1024], out[1024], args[600];
	int rc;
	json_t *r;

	chmod(dir, 0755);	/* nobody may reach the sockets; their own modes decide */
	snprintf(extra, sizeof(extra), "model: %s\n", rig);
	if (ok(start(&p, "p0600", extra) == 0, "peers: a guardd with a 0600 socket starts")) {
		snprintf(args, sizeof(args), "ping --socket %s", p.sock);
		rc = guard_as_nobody(args, out, sizeof(out));
		ok(rc != 0 && strstr(out, strerror(EACCES)), "nobody on a 0600 root socket: connect fails with "
		    "EACCES (exit %d: %s)", rc, out);
		stop(&p);
	}
	snprintf(extra, sizeof(extra), "model: %s\nsocket_mode: \"0666\"\nallow_uids: [0]\n", rig);
	if (ok(start(&p, "pdeny", extra) == 0, "peers: a guardd with a 0666 socket and allow_uids [0] starts")) {
		rc = as_nobody(p.sock, 'F');
		ok(rc == 0, "nobody, not in allow_uids: refused with forbidden (%d)", rc);
		ok(pong(p.sock), "root, in allow_uids: served");
		stop(&p);
	}
	snprintf(extra, sizeof(extra), "model: %s\nsocket_mode: \"0666\"\nallow_uids: [0, 65534]\n", rig);
	if (ok(start(&p, "pallow", extra) == 0, "peers: a guardd with allow_uids [0, 65534] starts")) {
		snprintf(args, sizeof(args), "ping --socket %s", p.sock);
		rc = guard_as_nobody(args, out, sizeof(out));
		ok(rc == 0 && strstr(out, "pong (protocol"), "nobody, in allow_uids: ping answered (exit %d: %s)", rc, out);
		snprintf(args, sizeof(args), "reload --socket %s", p.sock);
		rc = guard_as_nobody(args, out, sizeof(out));
		ok(rc != 0 && strstr(out, "forbidden"), "nobody, a client but not in control_uids: reload is forbidden "
		    "(exit %d: %s)", rc, out);
		rc = as_nobody(p.sock, 'R');
		ok(rc == 0, "nobody's reload: forbidden, and the same connection still answers a ping (%d)", rc);
		int done_ok = 0;
		for (double t0 = now(); now() - t0 < 10 && !done_ok; poll(NULL, 0, 20)) {
			r = request(p.sock, "reload");	/* "already running" is a fair answer: retry */
			done_ok = r && json_is_true(json_object_get(r, "ok"));
			if (!done_ok)
				diag("root's reload: %s: %s", err_code(r) ? err_code(r) : "no answer", err_msg(r));
			json_decref(r);
		}
		ok(done_ok, "root's reload on the same daemon: done");
		long long n = stat_int(p.sock, "reloads.ok");
		ok(n == 1, "stats: exactly one reload was done (root's), none for nobody (%lld)", n);
		stop(&p);
	}
	snprintf(extra, sizeof(extra), "model: %s\nsocket_mode: \"0666\"\ncontrol_uids: [65534]\n", rig);
	if (ok(start(&p, "pctl", extra) == 0, "peers: a guardd with control_uids [65534] starts")) {
		snprintf(args, sizeof(args), "reload --socket %s", p.sock);
		rc = guard_as_nobody(args, out, sizeof(out));
		ok(rc == 0 && strstr(out, "\"default\""), "nobody, in control_uids: reload done (exit %d)", rc);
		stop(&p);
	}
	chmod(dir, 0700);
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
	harness_init(argv[1]);
	rig = realpath(argv[2], NULL);
	slow = realpath(argv[3], NULL);
	policy = realpath(argv[4], NULL);
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
	    sstr(jpath(r, "verdict.role"), "assistant"),
	    "a string id, a named policy and an unknown field: answered");
	ok(r && json_is_string(jpath(r, "verdict.policy_hash")) && !sstr(jpath(r, "verdict.policy_hash"), hash1),
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
	if (UNDER_ASAN)
		diag("ASan: 16 clients x %d of 50 requests each", PER_CLIENT);
	ok(ans == 16 * PER_CLIENT && mat == ans && cor == ans, "16 clients x %d requests: %d answered, "
	    "%d matched, %d correct (%.0f requests/s)", PER_CLIENT, ans, mat, cor,
	    ans / (now() - t0));

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
	    strstr(err_msg(r), "truncated"),
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
	long long restarts = stat_int(d.sock, "process.restarts");
	ok(restarts == 0, "and its inference process never crashed (process.restarts %lld)", restarts);

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
	ok(lines >= 16 * PER_CLIENT && parsed == lines && hashed == lines, "the verdict log: %d lines, all JSON with time, "
	    "peer, policy hash and content sha256", lines);

	/* SIGHUP with a broken policy keeps the old one; a good one replaces it */
	write_file(pol, "name: test\ncategories: {S10: {threshold: 7}}\n");
	kill(d.pid, SIGHUP);
	r = request(d.sock, "reload");
	ok(r && err_code(r) && strcmp(err_code(r), "reload_failed") == 0 &&
	    strstr(err_msg(r), "outside [0, 1]"),
	    "reload of a broken policy: reload_failed with the file's error");
	json_decref(r);
	r = request(d.sock, "stats");
	ok(sstr(jpath(r, "stats.policies.default.hash"), hash1), "the old policy is still in force");
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

	/* SIGTERM: in-flight work is answered with real verdicts (the drain bound, 10 s by
	 * default, is far away), the socket goes, exit 0 */
	cl_open(&c, d.sock);
	msgpack_sbuffer_clear(&sb);
	for (int i = 0; i < 8; i++)
		pack_classify(&sb, 200 + i, "a bomb, again", 0);
	cl_send(&c, sb.data, sb.size);
	r = cl_recv(&c, 10);	/* the first answer: the rest is queued or in flight */
	unsigned got8 = 0;
	int verdicts = 0, others = 0;
	kill(d.pid, SIGTERM);
	do {
		long id = r ? (long)json_integer_value(json_object_get(r, "id")) - 200 : -1;
		if (r && id >= 0 && id < 8 && !(got8 & (1u << id)) && decision(r) && strcmp(decision(r), "block") == 0) {
			got8 |= 1u << id;
			verdicts++;
		} else if (r) {
			others++;
			diag("SIGTERM: not a verdict: %s", err_code(r) ? err_code(r) : "?");
		}
		json_decref(r);
	} while ((r = cl_recv(&c, 10)) != NULL);
	int eof = cl_why == CL_EOF;
	cl_close(&c);
	int code = wait_exit(&d, 20);
	ok(verdicts == 8 && others == 0, "SIGTERM: all 8 requests in flight got real block verdicts, each id once "
	    "(%d verdicts, %d other answers)", verdicts, others);
	ok(eof, "SIGTERM: then the connection is closed");
	ok(code == 0, "SIGTERM: exit status 0 (%d)", code);
	ok(access(d.sock, F_OK) != 0, "SIGTERM: the socket is removed");

	/* a slow model: a full queue says busy, deadlines give timeout, vanished clients */
	snprintf(extra, sizeof(extra), "model: %s\npolicy: %s\nbatch: 1\nlimits: {max_queue: 2, "
	    "max_request_bytes: 1048576, drain_ms: 300}\n", slow, policy);
	if (ok(start(&s2, "slow", extra) == 0, "a second guardd with a slower model and a queue of 2")) {
		char *longmsg = malloc(20001);
		for (int i = 0; i < 20000; i++)
			longmsg[i] = "abcdefgh "[i % 9];
		longmsg[3000] = '\0';	/* fits the context: the model really runs (~1000 tokens) */
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
		/* SIGTERM past the drain bound (300 ms): each request still gets one answer, a verdict
		 * if it was done in time, else shutting_down */
		for (double tt = now(); now() - tt < 30 && (stat_int(s2.sock, "queue.depth") > 0 ||
		    stat_int(s2.sock, "queue.working") > 0); poll(NULL, 0, 20))
			;
		cl_open(&c, s2.sock);
		msgpack_sbuffer_clear(&sb);
		for (int i = 0; i < 2; i++)	/* the queue holds 2 */
			pack_classify(&sb, 600 + i, longmsg, 0);
		cl_send(&c, sb.data, sb.size);
		for (double tt = now(); now() - tt < 10 && stat_int(s2.sock, "queue.working") == 0; poll(NULL, 0, 10))
			;
		kill(s2.pid, SIGTERM);
		unsigned seen3 = 0;
		int verd = 0, shut = 0, bad = 0;
		while ((r = cl_recv(&c, 30)) != NULL) {
			long id = (long)json_integer_value(json_object_get(r, "id")) - 600;
			if (id < 0 || id > 1 || (seen3 & (1u << id)))
				bad++;
			else if (decision(r))
				verd++;
			else if (is_err(r, "shutting_down"))
				shut++;
			else {
				bad++;
				diag("drain: id %ld: %s: %s", id + 600, err_code(r) ? err_code(r) : "?", err_msg(r));
			}
			if (id >= 0 && id <= 1)
				seen3 |= 1u << id;
			json_decref(r);
		}
		cl_close(&c);
		ok(seen3 == 3 && bad == 0, "SIGTERM with a 300 ms drain bound: each of 2 requests answered once "
		    "(%d verdicts done in time, %d shutting_down past the bound, %d wrong)", verd, shut, bad);
		ok(wait_exit(&s2, 30) == 0, "the second daemon stops cleanly (exit 0)");
		free(longmsg);
	}

	/* started as root: the serving process drops to the configured user; the parent keeps
	 * root (it owns the socket and the log); the socket's group and mode */
	if (geteuid() == 0) {
		/* nobody must reach the model: a copy in our temp dir, opened to all (the checkout
		 * may sit under a directory only root can enter) */
		char nmodel[400], cmd[1024];
		snprintf(nmodel, sizeof(nmodel), "%s/nobody-model.gguf", dir);
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 644 '%s'", rig, nmodel, nmodel);
		if (chmod(dir, 0755) == -1 || system(cmd) != 0)
			diag("cannot copy the model for nobody: %s", strerror(errno));
		snprintf(extra, sizeof(extra), "model: %s\nuser: nobody\nsocket_group: nogroup\n"
		    "limits: {max_connections: 2}\n", nmodel);
		if (ok(start(&s2, "priv", extra) == 0, "a guardd configured with user nobody starts")) {
			pid_t child = serving_pid(&s2);
			long cuid = proc_status_kb(child, "Uid"), puid = proc_status_kb(s2.pid, "Uid");
			ok(cuid == 65534, "the serving process (pid %d) runs as nobody (uid %ld)", (int)child, cuid);
			ok(child != s2.pid && puid == 0, "privilege separation: the parent (pid %d) keeps root (uid %ld), "
			    "the child (pid %d) serves", (int)s2.pid, puid, (int)child);
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
			ok(is_err(r, "too_many_connections"), "a third connection over max_connections 2: too_many_connections");
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
			ok(stop(&s2) == 0, "and it stops cleanly");
		}
		test_peers();
	} else
		ok(1, "# skip not root: the privilege and peer-credential tests need root");

	/* who may connect (root is not in the list either) */
	snprintf(extra, sizeof(extra), "model: %s\nallow_uids: [4242]\nallow_gids: [4242]\n", rig);
	if (ok(start(&s2, "acl", extra) == 0, "a guardd with allow_uids/allow_gids [4242] starts")) {
		cl_open(&c, s2.sock);
		r = cl_recv(&c, 10);
		ok(is_err(r, "forbidden"), "allow_uids/allow_gids: others are refused with forbidden");
		json_decref(r);
		cl_close(&c);
		stop(&s2);
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
			daemon_child_setup();
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
