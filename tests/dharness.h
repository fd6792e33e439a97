/* dharness.h - what the daemon tests (t_daemon, t_limits, t_faults) share: a guardd started
 * on a private socket in a temp dir and polled until it answers a ping (never a fixed sleep),
 * a msgpack client with bounded waits, answers as JSON, stats paths, /proc figures. */
#ifndef GUARDD_DHARNESS_H
#define GUARDD_DHARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <msgpack.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "mpclient.h"
#include "tap.h"

static char dir[256];	/* the test's temp dir */
static const char *guardd;

static inline void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fputs(text, fp) == EOF || fclose(fp) != 0) {
		printf("Bail out! %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* a fresh temp dir; GUARDD path made absolute */
static inline void
harness_init(const char *guardd_path)
{
	guardd = realpath(guardd_path, NULL);
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/guardd-t-XXXXXX");
	if (guardd == NULL || mkdtemp(dir) == NULL) {
		printf("Bail out! %s: %s\n", guardd_path, strerror(errno));
		exit(1);
	}
}

/* A daemon test's arguments: argv[1] is guardd (harness_init), argv[2], argv[3], ... the
 * model files, made absolute (a configuration's relative paths are taken from its own
 * directory) into the NULL-ended list of const char ** that follows; skips the whole test
 * when one of them is missing. */
static inline void
harness_args(char **argv, ...)
{
	va_list ap;
	const char **p;
	int i = 2;

	va_start(ap, argv);
	while ((p = va_arg(ap, const char **)) != NULL) {
		if (access(argv[i], R_OK) != 0)
			skip_all("test models not built (../shared absent)");
		*p = realpath(argv[i++], NULL);
	}
	va_end(ap);
	harness_init(argv[1]);
}

static inline void
harness_done(void)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
}

/* --- a client ---------------------------------------------------------------------------- */

struct cl {
	int fd;
	msgpack_unpacker up;
};

static inline int
cl_open(struct cl *c, const char *sock)
{
	if ((c->fd = try_connect(sock)) < 0)
		return -1;
	msgpack_unpacker_init(&c->up, 65536);
	return 0;
}

static inline void
cl_close(struct cl *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	msgpack_unpacker_destroy(&c->up);
}

static inline int
cl_send(struct cl *c, const void *p, size_t n)
{
	return send_all(c->fd, p, n);
}

static inline json_t *
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

/* why the last cl_recv returned NULL */
enum { CL_EOF = 1, CL_TIMEOUT = 2 };
static int cl_why;

/* the next answer; NULL on EOF (cl_why CL_EOF) or after `limit` seconds (CL_TIMEOUT) */
static inline json_t *
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
		if (left <= 0 || poll(&pf, 1, left) <= 0) {
			cl_why = CL_TIMEOUT;
			break;
		}
		msgpack_unpacker_reserve_buffer(&c->up, 65536);
		ssize_t n = recv(c->fd, msgpack_unpacker_buffer(&c->up), 65536, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cl_why = CL_EOF;
			break;
		}
		msgpack_unpacker_buffer_consumed(&c->up, (size_t)n);
	}
	msgpack_unpacked_destroy(&r);
	return NULL;
}

/* the peer closed: recv returns 0 (or an error) within `limit` seconds; bytes read on the
 * way are counted into *extra when it is not NULL */
static inline int
cl_closed_n(struct cl *c, double limit, size_t *extra)
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
		if (extra)
			*extra += (size_t)n;
	}
}

static inline int
cl_closed(struct cl *c, double limit)
{
	return cl_closed_n(c, limit, NULL);
}

static inline void
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

/* one request on a new connection, its answer (NULL: none within `limit` seconds) */
static inline json_t *
request_wait(const char *sock, const char *op, double limit)
{
	struct cl c;
	msgpack_sbuffer sb;
	json_t *r = NULL;

	if (cl_open(&c, sock) == -1)
		return NULL;
	msgpack_sbuffer_init(&sb);
	pack_op(&sb, 1, op);
	if (cl_send(&c, sb.data, sb.size) == 0)
		r = cl_recv(&c, limit);
	msgpack_sbuffer_destroy(&sb);
	cl_close(&c);
	return r;
}

static inline json_t *
request(const char *sock, const char *op)
{
	return request_wait(sock, op, 10);
}

static inline const char *
err_code(const json_t *r)
{
	return json_string_value(json_object_get(json_object_get(r, "error"), "code"));
}

static inline const char *
err_msg(const json_t *r)
{
	const char *m = json_string_value(json_object_get(json_object_get(r, "error"), "message"));

	return m ? m : "";
}

static inline int
is_err(const json_t *r, const char *code)
{
	return r && err_code(r) && strcmp(err_code(r), code) == 0;
}

static inline const char *
decision(const json_t *r)
{
	return json_string_value(json_object_get(json_object_get(r, "verdict"), "decision"));
}

static inline int
pong(const char *sock)
{
	json_t *r = request(sock, "ping");
	int okk = r && json_is_true(json_object_get(r, "ok")) && json_object_get(r, "pong");

	json_decref(r);
	return okk;
}

/* a value inside a JSON tree by a dotted path ("stats.process.pid"), or NULL */
static inline json_t *
jpath(json_t *j, const char *path)
{
	char key[128];

	while (j && *path) {
		size_t n = strcspn(path, ".");
		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		j = json_object_get(j, key);
		path += n + (path[n] == '.');
	}
	return j;
}

/* a JSON string equal to s (NULL-safe) */
static inline int
sstr(const json_t *j, const char *s)
{
	return json_is_string(j) && s && strcmp(json_string_value(j), s) == 0;
}

/* in a forked child about to exec guardd: its stdin/stdout are /dev/null (a test that dies
 * must not leave a daemon holding the TAP pipe open), and it is killed when the test dies */
static inline void
daemon_child_setup(void)
{
	int null = open("/dev/null", O_RDWR);

	dup2(null, 0);
	dup2(null, 1);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* an integer from the daemon's stats ("framing.bytes_in"), or -1 when absent */
static inline long long
stat_int(const char *sock, const char *path)
{
	json_t *r = request(sock, "stats");
	json_t *v = jpath(json_object_get(r, "stats"), path);
	long long x = json_is_integer(v) ? (long long)json_integer_value(v) : -1;

	json_decref(r);
	return x;
}

/* --- a daemon ---------------------------------------------------------------------------- */

struct daemon_t {
	pid_t pid;
	char name[64], sock[300], conf[300], log[300], errpath[300];
};

/* guardd -f with this configuration, under RLIMIT_NOFILE `nofile` when > 0, not waited for */
static inline void
spawn(struct daemon_t *d, const char *name, const char *extra, int nofile)
{
	char text[8192];

	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(d->sock, sizeof(d->sock), "%s/%s.sock", dir, name);
	snprintf(d->conf, sizeof(d->conf), "%s/%s.yaml", dir, name);
	snprintf(d->log, sizeof(d->log), "%s/%s.jsonl", dir, name);
	snprintf(d->errpath, sizeof(d->errpath), "%s/%s.stderr", dir, name);
	int own_log = strstr(extra, "log:") != NULL, own_mode = strstr(extra, "socket_mode:") != NULL;
	snprintf(text, sizeof(text), "listen: %s\n%sthreads: 2\n%s%s%s%s", d->sock,
	    own_mode ? "" : "socket_mode: \"0600\"\n", own_log ? "" : "log: {path: ", own_log ? "" : d->log,
	    own_log ? "" : ", content: sha256}\n", extra);
	write_file(d->conf, text);
	if ((d->pid = fork()) == 0) {
		int fd = open(d->errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		daemon_child_setup();
		if (nofile > 0) {
			struct rlimit rl = { (rlim_t)nofile, (rlim_t)nofile };
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		execl(guardd, guardd, "-f", "-c", d->conf, (char *)NULL);
		_exit(127);
	}
}

/* spawn(), then waits (bounded) until it answers a ping: the socket exists before the
 * inference process is ready */
static inline int
start_ex(struct daemon_t *d, const char *name, const char *extra, int nofile)
{
	spawn(d, name, extra, nofile);
	for (double t0 = now(); now() - t0 < 60;) {
		json_t *r = request_wait(d->sock, "ping", 5);
		/* it answers: a pong, or a refusal by peer credentials or connection count */
		int up = r && (json_object_get(r, "pong") || is_err(r, "forbidden") ||
		    is_err(r, "too_many_connections"));
		json_decref(r);
		if (up)
			return 0;
		int st;
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			char b[512] = "";
			FILE *fp = fopen(d->errpath, "r");
			size_t n = fp ? fread(b, 1, sizeof(b) - 1, fp) : 0;
			b[n] = '\0';
			if (fp)
				fclose(fp);
			diag("guardd '%s' exited at start: %s", name, b);
			d->pid = -1;
			return -1;
		}
		poll(NULL, 0, 20);
	}
	diag("guardd '%s' did not answer a ping within 60 s", name);
	kill(d->pid, SIGKILL);
	waitpid(d->pid, NULL, 0);
	d->pid = -1;
	return -1;
}

static inline int
start(struct daemon_t *d, const char *name, const char *extra)
{
	return start_ex(d, name, extra, 0);
}

static inline int
alive(const struct daemon_t *d)
{
	return d->pid > 0 && kill(d->pid, 0) == 0 && waitpid(d->pid, NULL, WNOHANG) == 0;
}

/* waits (bounded) for the daemon to exit; its status (128 + signal), or -1 (then it is killed) */
static inline int
wait_exit(struct daemon_t *d, double limit)
{
	int st;

	if (d->pid <= 0)
		return -1;
	for (double t0 = now(); now() - t0 < limit; poll(NULL, 0, 20))
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = -1;
	return -1;
}

static inline int
stop(struct daemon_t *d)
{
	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	return wait_exit(d, 30);
}

/* the pid of the process that serves (stats process.pid; the daemon itself when absent) */
static inline pid_t
serving_pid(const struct daemon_t *d)
{
	long long p = stat_int(d->sock, "process.pid");

	return p > 0 ? (pid_t)p : d->pid;
}

/* --- /proc ------------------------------------------------------------------------------- */

/* a "Key:  123 kB" line of /proc/PID/status, or -1 */
static inline long
proc_status_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	long v = -1;
	size_t kl = strlen(key);

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *fp = fopen(path, "r");
	while (fp && fgets(line, sizeof(line), fp))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	if (fp)
		fclose(fp);
	return v;
}

/* user + system CPU seconds of a process (/proc/PID/stat fields 14 and 15), or -1 */
static inline double
proc_cpu_s(pid_t pid)
{
	char path[64], b[1024];
	unsigned long ut, st;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(path, "r");
	size_t n = fp ? fread(b, 1, sizeof(b) - 1, fp) : 0;
	if (fp)
		fclose(fp);
	b[n] = '\0';
	char *p = strrchr(b, ')');	/* the command name may hold spaces */
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

#endif
