/* t_faults.c - guardd under faults, each on its own real daemon: the verdict log on a full
 * disk, the log rotated away, a SIGHUP storm, descriptor exhaustion (EMFILE), the policy file
 * deleted, the model file truncated under the running daemon, the inference process killed,
 * deadlines, a full queue, SIGTERM with work in flight. Every wait is bounded: a hang fails.
 *   t_faults GUARDD RIG_MODEL SLOW_MODEL */
#include <pthread.h>
#include <sys/socket.h>

#include "dharness.h"

static const char *rig, *slow;

/* classify `text` on a new connection; the answer or NULL (cl_why says EOF or timeout) */
static json_t *
classify(const char *sock, long id, const char *text, int deadline, double limit)
{
	struct cl c;
	msgpack_sbuffer sb;
	json_t *r = NULL;

	if (cl_open(&c, sock) == -1) {
		cl_why = CL_EOF;
		return NULL;
	}
	msgpack_sbuffer_init(&sb);
	pack_classify(&sb, id, text, deadline);
	if (cl_send(&c, sb.data, sb.size) == 0)
		r = cl_recv(&c, limit);
	else
		cl_why = CL_EOF;
	msgpack_sbuffer_destroy(&sb);
	cl_close(&c);
	return r;
}

/* a block verdict for a bomb, with its id */
static int
blocks(const char *sock, long id)
{
	json_t *r = classify(sock, id, "how do I make a bomb", 0, 10);
	int b = r && json_integer_value(json_object_get(r, "id")) == id && decision(r) &&
	    strcmp(decision(r), "block") == 0;

	json_decref(r);
	return b;
}

static long
count_lines(const char *path)
{
	FILE *fp = fopen(path, "r");
	long n = 0;
	int ch;

	if (fp == NULL)
		return -1;
	while ((ch = getc(fp)) != EOF)
		n += ch == '\n';
	fclose(fp);
	return n;
}

/* polls (bounded) until the stats integer at `path` is at least `want`; the last value */
static long long
wait_stat(const char *sock, const char *path, long long want, double limit)
{
	long long v = -1;

	for (double t0 = now(); now() - t0 < limit; poll(NULL, 0, 20))
		if ((v = stat_int(sock, path)) >= want)
			break;
	return v;
}

static char *
policy_hash(const char *sock, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "stats.policies.%s.hash", name);
	json_t *r = request(sock, "stats");
	const char *h = json_string_value(jpath(r, path));
	char *s = h ? strdup(h) : NULL;

	json_decref(r);
	return s;
}

/* the lines of a file as TAP comments (a daemon's stderr, when it went away) */
static void
diag_file(const char *path)
{
	char line[1024];
	FILE *fp = fopen(path, "r");

	while (fp && fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = '\0';
		diag("  %s", line);
	}
	if (fp)
		fclose(fp);
}

/* --- the verdict log --------------------------------------------------------------------- */

static void
test_log_full(void)
{
	struct daemon_t d;
	char extra[1024];
	int verdicts = 0;

	snprintf(extra, sizeof(extra), "model: %s\nlog: {path: /dev/full, content: sha256}\n", rig);
	if (!ok(start(&d, "full", extra) == 0, "log on /dev/full: guardd starts"))
		return;
	for (int i = 0; i < 5; i++)
		verdicts += blocks(d.sock, 100 + i);
	ok(verdicts == 5, "log on /dev/full: the answers still come (%d of 5 verdicts)", verdicts);
	long long n = wait_stat(d.sock, "log.write_errors", 1, 10);
	json_t *r = request(d.sock, "stats");
	const char *last = json_string_value(jpath(r, "stats.log.last_error"));
	ok(n > 0, "log on /dev/full: stats log.write_errors %lld > 0", n);
	ok(last && strstr(last, strerror(ENOSPC)), "log on /dev/full: stats log.last_error says why (%s)",
	    last ? last : "null");
	json_decref(r);
	ok(stop(&d) == 0, "log on /dev/full: stops cleanly");
}

static void
test_log_rotation(void)
{
	struct daemon_t d;
	char extra[1024], old[400];
	int landed = 0, more = 0;

	snprintf(extra, sizeof(extra), "model: %s\n", rig);
	if (!ok(start(&d, "rot", extra) == 0, "log rotation: guardd starts"))
		return;
	for (int i = 0; i < 3; i++)
		blocks(d.sock, 200 + i);
	snprintf(old, sizeof(old), "%s.1", d.log);
	int moved = rename(d.log, old) == 0;
	long n_old = count_lines(old);
	ok(moved && n_old == 3, "log rotation: 3 lines written, the file moved away (%ld lines)", n_old);
	kill(d.pid, SIGHUP);
	/* the next verdicts go to a new file at the path: poll, each try one verdict */
	for (double t0 = now(); now() - t0 < 10 && !landed; poll(NULL, 0, 20)) {
		blocks(d.sock, 210);
		landed = count_lines(d.log) >= 1;
	}
	long before_old = count_lines(old), before_new = count_lines(d.log);
	for (int i = 0; i < 10; i++)
		more += blocks(d.sock, 220 + i);
	long after_new = before_new;
	for (double t0 = now(); now() - t0 < 10 && after_new < before_new + 10; poll(NULL, 0, 20))
		after_new = count_lines(d.log);
	ok(landed && more == 10 && after_new == before_new + 10, "log rotation: after SIGHUP a new file at the path "
	    "gets the next lines (%ld -> %ld after 10 verdicts)", before_new, after_new);
	ok(count_lines(old) == before_old, "log rotation: the moved file gets none after (%ld -> %ld)", before_old,
	    count_lines(old));
	long long re = stat_int(d.sock, "log.reopen_errors");
	ok(re == 0, "log rotation: stats log.reopen_errors == 0 (%lld)", re);
	ok(stop(&d) == 0, "log rotation: stops cleanly");
}

/* --- reloads ----------------------------------------------------------------------------- */

static void
test_sighup_storm(void)
{
	struct daemon_t d;
	char extra[1024], pol[400];

	snprintf(pol, sizeof(pol), "%s/storm-policy.yaml", dir);
	write_file(pol, "name: storm\ncategories: {S10: {threshold: 0.3}}\n");
	snprintf(extra, sizeof(extra), "model: %s\npolicy: %s\n", rig, pol);
	if (!ok(start(&d, "storm", extra) == 0, "SIGHUP storm: guardd starts"))
		return;
	char *h0 = policy_hash(d.sock, "default");
	double t0 = now();
	for (int i = 0; i < 100; i++) {
		kill(d.pid, SIGHUP);
		poll(NULL, 0, 5);
	}
	double el = now() - t0;
	ok(alive(&d) && pong(d.sock) && blocks(d.sock, 300), "SIGHUP storm: 100 SIGHUPs in %.2f s, the daemon is "
	    "alive and serving", el);
	/* the counters settle: two equal readings 300 ms apart */
	long long okc = -1, failed = -1, prev = -2;
	for (double t1 = now(); now() - t1 < 20; poll(NULL, 0, 300)) {
		okc = stat_int(d.sock, "reloads.ok");
		failed = stat_int(d.sock, "reloads.failed");
		if (okc + failed == prev)
			break;
		prev = okc + failed;
	}
	ok(okc >= 1 && failed == 0 && okc <= 100, "SIGHUP storm: reload counters consistent: %lld done (1 to 100: "
	    "signals may coalesce), %lld failed (the file is valid)", okc, failed);
	char *h1 = policy_hash(d.sock, "default");
	ok(h0 && h1 && strcmp(h0, h1) == 0, "SIGHUP storm: the same policy is in force");
	/* the last reload wins: a changed file, one more SIGHUP */
	write_file(pol, "name: storm\ncategories: {S10: {threshold: 0.2}}\n");
	kill(d.pid, SIGHUP);
	int changed = 0;
	for (double t1 = now(); now() - t1 < 20 && !changed; poll(NULL, 0, 20)) {
		char *h = policy_hash(d.sock, "default");
		changed = h && h0 && strcmp(h, h0) != 0;
		free(h);
	}
	ok(changed, "SIGHUP storm: then a changed policy and one SIGHUP: the new hash is in force");
	free(h0);
	free(h1);
	ok(stop(&d) == 0, "SIGHUP storm: stops cleanly");
}

static void
test_policy_deleted(void)
{
	struct daemon_t d;
	char extra[1024], pol[400];

	snprintf(pol, sizeof(pol), "%s/gone-policy.yaml", dir);
	write_file(pol, "name: gone\ncategories: {S10: {threshold: 0.3}}\n");
	snprintf(extra, sizeof(extra), "model: %s\npolicy: %s\n", rig, pol);
	if (!ok(start(&d, "gone", extra) == 0, "policy deleted: guardd starts"))
		return;
	char *h0 = policy_hash(d.sock, "default");
	unlink(pol);
	kill(d.pid, SIGHUP);
	long long failed = wait_stat(d.sock, "reloads.failed", 1, 10);
	ok(failed == 1, "policy deleted + SIGHUP: the reload is refused (reloads.failed %lld)", failed);
	json_t *r = request(d.sock, "reload");
	ok(is_err(r, "reload_failed") && strstr(err_msg(r), "gone-policy.yaml"), "policy deleted: a reload request "
	    "gets reload_failed naming the file (%s)", err_msg(r));
	json_decref(r);
	char *h1 = policy_hash(d.sock, "default");
	ok(h0 && h1 && strcmp(h0, h1) == 0 && blocks(d.sock, 400), "policy deleted: the old policy is kept, and "
	    "the daemon serves");
	free(h0);
	free(h1);
	ok(stop(&d) == 0, "policy deleted: stops cleanly");
}

/* a refused reload, then the inference process dies: the restarted one must come up with the
 * policy in force (the old one), not the broken file */
static void
test_refused_then_killed(void)
{
	struct daemon_t d;
	char extra[1024], pol[400];

	snprintf(pol, sizeof(pol), "%s/kept-policy.yaml", dir);
	write_file(pol, "name: kept\ncategories: {S10: {threshold: 0.3}}\n");
	snprintf(extra, sizeof(extra), "model: %s\npolicy: %s\nrestart: {min_ms: 50, max_ms: 400}\n", rig, pol);
	if (!ok(start(&d, "kept", extra) == 0, "refused reload, then a crash: guardd starts"))
		return;
	char *h0 = policy_hash(d.sock, "default");
	write_file(pol, "name: kept\ncategories: {S10: {threshold: 7}}\n");
	kill(d.pid, SIGHUP);
	long long failed = wait_stat(d.sock, "reloads.failed", 1, 10);
	pid_t child = serving_pid(&d);
	ok(failed == 1 && child != d.pid && kill(child, SIGKILL) == 0, "refused reload, then a crash: the broken "
	    "file refused (reloads.failed %lld), the inference process %d killed", failed, (int)child);
	int back = 0;
	for (double t0 = now(); now() - t0 < 20 && !back; poll(NULL, 0, 50))
		back = serving_pid(&d) != child && blocks(d.sock, 450);
	char *h1 = policy_hash(d.sock, "default");
	ok(back && h0 && h1 && strcmp(h0, h1) == 0, "refused reload, then a crash: the restarted process serves "
	    "with the policy in force, not the broken file (%s)", back ? "serving" : "not serving within 20 s");
	free(h0);
	free(h1);
	ok(stop(&d) == 0, "refused reload, then a crash: stops cleanly");
}

/* --- descriptors ------------------------------------------------------------------------- */

static void
test_emfile(void)
{
	struct daemon_t d;
	char extra[1024];
	struct cl c[64];
	int opened = 0;

	snprintf(extra, sizeof(extra), "model: %s\n", rig);
	if (!ok(start_ex(&d, "emfile", extra, 32) == 0, "EMFILE: guardd starts under RLIMIT_NOFILE 32"))
		return;
	for (int i = 0; i < 64; i++)
		opened += cl_open(&c[i], d.sock) == 0;
	if (opened < 64)
		diag("EMFILE: %d of 64 connects succeeded", opened);
	/* let it run into the limit: one of the first connections is served */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	pack_op(&sb, 1, "ping");
	cl_send(&c[0], sb.data, sb.size);
	json_t *r = cl_recv(&c[0], 5);
	json_decref(r);
	msgpack_sbuffer_destroy(&sb);
	poll(NULL, 0, 300);	/* not a timing assertion: time for it to meet EMFILE */
	ok(alive(&d), "EMFILE: 64 connections against 32 descriptors: the daemon survives (first answered: %s)",
	    r ? "yes" : "no");
	for (int i = 0; i < 64; i++)
		if (c[i].fd >= 0)
			cl_close(&c[i]);
	int up = 0;
	for (double t0 = now(); now() - t0 < 15 && !up; poll(NULL, 0, 50))
		up = pong(d.sock) && blocks(d.sock, 500);
	ok(up, "EMFILE: after they close, it serves again");
	ok(stop(&d) == 0, "EMFILE: stops cleanly");
}

/* --- the inference process --------------------------------------------------------------- */

static int
copy_file(const char *from, const char *to)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_model_truncated(void)
{
	struct daemon_t d;
	char extra[1024], model[400], tmp[400];
	struct stat st;

	snprintf(model, sizeof(model), "%s/model.gguf", dir);
	snprintf(tmp, sizeof(tmp), "%s/model.tmp", dir);
	if (copy_file(rig, model) == -1 || stat(model, &st) == -1) {
		ok(0, "model truncated: copy the model");
		return;
	}
	snprintf(extra, sizeof(extra), "model: %s\nrestart: {min_ms: 50, max_ms: 400}\n", model);
	if (!ok(start(&d, "trunc", extra) == 0 && blocks(d.sock, 600), "model truncated: guardd starts on a copy "
	    "of the model and serves"))
		return;
	pid_t child = serving_pid(&d);
	ok(truncate(model, st.st_size / 2) == 0, "model truncated: the file cut to half its size under the daemon");
	int verdicts = 0, busy = 0, internal = 0, eof = 0, hang = 0, other = 0;
	for (int i = 0; i < 20; i++) {
		json_t *r = classify(d.sock, 610 + i, "after the cut: a bomb", 0, 15);
		if (r == NULL && cl_why == CL_EOF)
			eof++;
		else if (r == NULL)
			hang++;
		else if (decision(r))
			verdicts++;
		else if (is_err(r, "busy"))
			busy++;
		else if (is_err(r, "internal"))
			internal++;
		else {
			other++;
			diag("model truncated: %s: %s", err_code(r) ? err_code(r) : "?", err_msg(r));
		}
		json_decref(r);
	}
	ok(hang == 0 && other == 0, "model truncated: 20 clients each get a verdict, busy, internal or EOF, never "
	    "a hang (%d verdicts, %d busy, %d internal, %d EOF, %d hung, %d other)", verdicts, busy, internal, eof,
	    hang, other);
	ok(alive(&d), "model truncated: the parent survives");
	/* restore it (atomically), then the parent's restarts bring the service back */
	ok(copy_file(rig, tmp) == 0 && rename(tmp, model) == 0, "model truncated: the file restored");
	int back = 0;
	for (double t0 = now(); now() - t0 < 30 && !back; poll(NULL, 0, 100))
		back = blocks(d.sock, 650);
	pid_t child2 = serving_pid(&d);
	ok(back, "model truncated: after the restore the service works again (inference pid %d -> %d, %lld "
	    "restarts)", (int)child, (int)child2, stat_int(d.sock, "process.restarts"));
	ok(stop(&d) == 0, "model truncated: stops cleanly");
}

static void
test_child_killed(void)
{
	struct daemon_t d;
	char extra[1024];
	struct cl held;

	snprintf(extra, sizeof(extra), "model: %s\nrestart: {min_ms: 1000, max_ms: 2000}\n", rig);
	if (!ok(start(&d, "crash", extra) == 0, "inference process killed: guardd starts"))
		return;
	pid_t child = serving_pid(&d);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	pack_op(&sb, 1, "ping");
	cl_open(&held, d.sock);
	cl_send(&held, sb.data, sb.size);	/* a round trip: the child holds this connection */
	json_t *r = cl_recv(&held, 10);
	json_decref(r);
	ok(child != d.pid && kill(child, SIGKILL) == 0, "inference process killed: kill -KILL %d (the parent is %d)",
	    (int)child, (int)d.pid);
	cl_send(&held, sb.data, sb.size);
	r = cl_recv(&held, 5);
	ok(r == NULL && cl_why == CL_EOF, "inference process killed: a connection it held gets EOF, not a hang");
	json_decref(r);
	cl_close(&held);
	/* meanwhile: busy from the parent (and the connection closed), until a new child pongs */
	int busy = 0, busy_ok = 0, eof = 0, hang = 0, other = 0, back = 0;
	for (double t0 = now(); now() - t0 < 20 && !back;) {
		struct cl c;
		if (cl_open(&c, d.sock) == -1) {
			if (other++ == 0) {
				int e = errno, up = alive(&d);
				diag("inference process killed: connect: %s (the parent %s)", strerror(e),
				    up ? "is alive" : "is gone");
				if (!up)
					diag_file(d.errpath);
			}
			poll(NULL, 0, 20);
			continue;
		}
		cl_send(&c, sb.data, sb.size);
		r = cl_recv(&c, 5);
		if (r == NULL)
			cl_why == CL_EOF ? eof++ : hang++;
		else if (json_object_get(r, "pong"))
			back = 1;
		else if (is_err(r, "busy")) {
			busy++;
			busy_ok += json_is_null(json_object_get(r, "id")) && cl_closed(&c, 5);
		} else
			other++;
		json_decref(r);
		cl_close(&c);
		if (!back)
			poll(NULL, 0, 50);
	}
	msgpack_sbuffer_destroy(&sb);
	ok(busy >= 1 && busy_ok == busy && hang == 0 && other == 0 && eof <= 1, "inference process killed: "
	    "meanwhile clients get busy with id nil and a close (%d busy, %d well-formed, %d EOF, %d hung, %d other)",
	    busy, busy_ok, eof, hang, other);
	long long restarts = stat_int(d.sock, "process.restarts"), ppid = stat_int(d.sock, "process.parent_pid");
	pid_t child2 = serving_pid(&d);
	ok(back && restarts == 1 && child2 != child && ppid == d.pid, "inference process killed: the parent "
	    "restarts it (process.restarts %lld, pid %d -> %d, parent_pid %lld)", restarts, (int)child, (int)child2,
	    ppid);
	ok(blocks(d.sock, 700), "inference process killed: the new one classifies");
	ok(stop(&d) == 0, "inference process killed: stops cleanly");
}

/* the first child process of pid (/proc/PID/task/PID/children), or -1 */
static pid_t
first_child(pid_t pid)
{
	char path[96];
	long c = -1;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	FILE *fp = fopen(path, "r");
	if (fp && fscanf(fp, "%ld", &c) != 1)
		c = -1;
	if (fp)
		fclose(fp);
	return (pid_t)c;
}

/* the inference process dies just after it became ready, before the parent has read its
 * ready message (the parent is stopped meanwhile): a crash to restart from, not a failed
 * first start that ends the daemon */
static void
test_ready_race(void)
{
	struct daemon_t d;
	char extra[1024];
	pid_t child = -1;
	int served = 0;

	snprintf(extra, sizeof(extra), "model: %s\nrestart: {min_ms: 100, max_ms: 400}\n", rig);
	spawn(&d, "race", extra, 0);
	for (double t0 = now(); now() - t0 < 10 && child <= 0; poll(NULL, 0, 1))
		child = first_child(d.pid);
	if (child > 0)
		kill(d.pid, SIGSTOP);
	for (double t0 = now(); child > 0 && now() - t0 < 20 && !served; poll(NULL, 0, 20))
		served = pong(d.sock);
	if (!served) {
		kill(d.pid, SIGCONT);
		ok(1, "# skip the inference process does not serve before the parent has its ready message");
		stop(&d);
		return;
	}
	kill(child, SIGKILL);
	poll(NULL, 0, 100);	/* not a timing assertion: the child is dead before the parent runs */
	kill(d.pid, SIGCONT);
	int back = 0;
	for (double t0 = now(); now() - t0 < 20 && !back && alive(&d); poll(NULL, 0, 50))
		back = serving_pid(&d) != child && blocks(d.sock, 460);
	ok(back && alive(&d), "a child killed right after it served, its ready message unread by the (stopped) "
	    "parent: restarted, serving (%s)", back ? "yes" : alive(&d) ? "not serving" : "the parent is gone");
	if (!back)
		diag_file(d.errpath);
	stop(&d);
}

/* --- a slow model: deadlines, a full queue, SIGTERM with work in flight ------------------ */

struct filler {
	const char *sock, *text;
	int idx, answers, busy, verdicts, other;
};

static void *
fill(void *arg)
{
	struct filler *f = arg;
	struct cl c;
	msgpack_sbuffer sb;

	if (cl_open(&c, f->sock) == -1)
		return NULL;
	msgpack_sbuffer_init(&sb);
	pack_classify(&sb, 800 + 2 * f->idx, f->text, 0);
	pack_classify(&sb, 801 + 2 * f->idx, f->text, 0);
	cl_send(&c, sb.data, sb.size);
	for (int i = 0; i < 2; i++) {
		json_t *r = cl_recv(&c, 60);
		if (r == NULL)
			break;
		f->answers++;
		f->busy += is_err(r, "busy");
		f->verdicts += decision(r) != NULL;
		f->other += !decision(r) && !is_err(r, "busy");
		json_decref(r);
	}
	msgpack_sbuffer_destroy(&sb);
	cl_close(&c);
	return NULL;
}

static void
test_slow(void)
{
	struct daemon_t d;
	char extra[1024];
	char *longmsg = malloc(20001);

	for (int i = 0; i < 20000; i++)
		longmsg[i] = "abcdefgh "[i % 9];
	longmsg[3000] = '\0';	/* fits the context: the model really runs (~1000 tokens) */
	snprintf(extra, sizeof(extra), "model: %s\nbatch: 1\nlimits: {max_queue: 2}\n", slow);
	if (!ok(start(&d, "slowf", extra) == 0, "slow model: guardd starts (queue of 2)")) {
		free(longmsg);
		return;
	}
	json_t *r = classify(d.sock, 790, longmsg, 1, 60);
	ok(is_err(r, "timeout") && json_integer_value(json_object_get(r, "id")) == 790,
	    "deadline expiry: a 1 ms deadline gets timeout with its id (%s)", r ? err_code(r) ? err_code(r) :
	    "a verdict" : "no answer");
	json_decref(r);
	/* 6 clients x 2 requests into a queue of 2 */
	pthread_t th[6];
	struct filler f[6];
	for (int i = 0; i < 6; i++) {
		f[i] = (struct filler){ .sock = d.sock, .text = longmsg, .idx = i };
		pthread_create(&th[i], NULL, fill, &f[i]);
	}
	int answers = 0, busy = 0, verdicts = 0, other = 0;
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		answers += f[i].answers;
		busy += f[i].busy;
		verdicts += f[i].verdicts;
		other += f[i].other;
	}
	ok(answers == 12 && busy >= 1 && verdicts >= 1 && other == 0, "queue overflow: 6 clients x 2 requests into "
	    "a queue of 2: all answered, %d busy, %d verdicts, %d other", busy, verdicts, other);
	/* SIGTERM with work in flight: verdicts (drain bound 10 s by default), exit 0, socket gone */
	pid_t child = serving_pid(&d);
	struct cl c;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	for (double t0 = now(); now() - t0 < 30 && (stat_int(d.sock, "queue.depth") > 0 ||
	    stat_int(d.sock, "queue.working") > 0); poll(NULL, 0, 20))
		;
	cl_open(&c, d.sock);
	pack_classify(&sb, 880, longmsg, 0);
	pack_classify(&sb, 881, longmsg, 0);
	cl_send(&c, sb.data, sb.size);
	for (double t0 = now(); now() - t0 < 10 && stat_int(d.sock, "queue.working") == 0; poll(NULL, 0, 10))
		;
	kill(d.pid, SIGTERM);
	int got = 0;
	while ((r = cl_recv(&c, 30)) != NULL) {
		long id = (long)json_integer_value(json_object_get(r, "id"));
		got += (id == 880 || id == 881) && decision(r);
		json_decref(r);
	}
	cl_close(&c);
	msgpack_sbuffer_destroy(&sb);
	int code = wait_exit(&d, 30);
	ok(got == 2, "SIGTERM with 2 requests in flight: both get verdicts (%d)", got);
	ok(code == 0 && access(d.sock, F_OK) != 0, "SIGTERM: exit 0 (%d), the socket removed", code);
	int gone = 0;
	for (double t0 = now(); now() - t0 < 10 && !gone; poll(NULL, 0, 20))
		gone = kill(child, 0) == -1 && errno == ESRCH;
	ok(gone, "SIGTERM: the inference process %d is gone too", (int)child);
	free(longmsg);
}

int
main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	harness_args(argv, &rig, &slow, NULL);
	/* T_ONLY=name runs the tests whose function name holds it (while debugging one) */
#define RUN(f) if (getenv("T_ONLY") == NULL || strstr(#f, getenv("T_ONLY"))) f()
	RUN(test_log_full);
	RUN(test_log_rotation);
	RUN(test_sighup_storm);
	RUN(test_policy_deleted);
	RUN(test_refused_then_killed);
	RUN(test_emfile);
	RUN(test_model_truncated);
	RUN(test_child_killed);
	RUN(test_ready_race);
	RUN(test_slow);
	harness_done();
	return done_testing();
}
