/* chatgen.c - chat load on guardd for `make bench`: N chats at once (stream: true), each on
 * its own connection, all started together; then the daemon's stats. Prints per run the
 * aggregate tokens/s, time to the first released token, the guard's share of the time
 * (stats chat.check_ms over the wall time), the cost of one response check in ms and in
 * tokens evaluated, and the inference process's RSS with the positions the KV caches held.
 * Figures only: nothing here asserts a time; it fails (status 1) only when a chat does not
 * come back as a complete answer.
 *   chatgen SOCKET CHATS MAX_TOKENS MESSAGE
 * The last line of the output is one JSON object with every figure (for tests/bench_chat.sh). */
#include <jansson.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpclient.h"
#include "proto/mpjson.h"
#include "proto/proto.h"

static const char *sock, *msg;
static int max_tokens;

struct chat_run {
	int id;
	double t_send, t_first, t_end;	/* seconds (t_first 0: no delta came) */
	int deltas;
	json_t *final;			/* the final answer's "chat" map */
	char error[256];
};

/* One answer from the connection: a new JSON value, or NULL (closed or garbage: why). */
static json_t *
next_answer(int fd, msgpack_unpacker *up, char *why, size_t whylen)
{
	msgpack_unpacked res;
	json_t *j = NULL;
	const char *bad;

	msgpack_unpacked_init(&res);
	if ((bad = recv_object(fd, up, &res)) != NULL) {
		snprintf(why, whylen, "%s", bad);
		goto out;
	}
	/* back to bytes, then through the project's checked msgpack -> JSON decoder */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct err e;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_object(&pk, res.data);
	if ((j = mpjson_decode((const unsigned char *)sb.data, sb.size, &e)) == NULL)
		snprintf(why, whylen, "answer: %.200s", e.msg);
	msgpack_sbuffer_destroy(&sb);
out:
	msgpack_unpacked_destroy(&res);
	return j;
}

static int
send_json(int fd, json_t *req)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_pack_json(&sb, req);
	int rc = send_all(fd, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void *
run_chat(void *arg)
{
	struct chat_run *c = arg;
	int fd = try_connect(sock);
	msgpack_unpacker up;

	if (fd == -1) {
		snprintf(c->error, sizeof(c->error), "cannot connect to %s", sock);
		return NULL;
	}
	msgpack_unpacker_init(&up, 65536);
	json_t *req = json_pack("{s:i, s:s, s:[{s:s, s:s}], s:b, s:i}", "id", c->id, "op", "chat",
	    "messages", "role", "user", "content", msg, "stream", 1, "max_tokens", max_tokens);
	c->t_send = now();
	if (send_json(fd, req) == -1)
		snprintf(c->error, sizeof(c->error), "send failed");
	json_decref(req);
	while (c->error[0] == '\0') {
		json_t *a = next_answer(fd, &up, c->error, sizeof(c->error));
		if (a == NULL)
			break;
		double t = now();
		json_t *d = json_object_get(a, "delta"), *ch = json_object_get(a, "chat");
		if (json_object_get(a, "ok") != json_true()) {
			json_t *er = json_object_get(a, "error");
			snprintf(c->error, sizeof(c->error), "%s: %s",
			    json_string_value(json_object_get(er, "code")),
			    json_string_value(json_object_get(er, "message")));
		} else if (json_is_object(d)) {
			const char *text = json_string_value(json_object_get(d, "text"));
			if (text != NULL && text[0] != '\0' && c->t_first == 0)
				c->t_first = t;
			c->deltas++;
		} else if (json_is_object(ch)) {
			c->t_end = t;
			c->final = json_incref(ch);
		} else {
			snprintf(c->error, sizeof(c->error), "an answer with neither delta nor chat");
		}
		json_decref(a);
		if (c->final != NULL)
			break;
	}
	msgpack_unpacker_destroy(&up);
	close(fd);
	return NULL;
}

/* {id, op: "stats"} on a connection of its own; the "stats" map or NULL */
static json_t *
get_stats(void)
{
	int fd = try_connect(sock);
	msgpack_unpacker up;
	char why[256] = "";
	json_t *st = NULL;

	if (fd == -1)
		return NULL;
	msgpack_unpacker_init(&up, 65536);
	json_t *req = json_pack("{s:s, s:s}", "id", "stats", "op", "stats");
	if (send_json(fd, req) == 0) {
		json_t *a = next_answer(fd, &up, why, sizeof(why));
		if (a != NULL)
			st = json_incref(json_object_get(a, "stats"));
		json_decref(a);
	}
	json_decref(req);
	msgpack_unpacker_destroy(&up);
	close(fd);
	return st;
}

static double
num(const json_t *o, const char *path)
{
	char key[64];
	const char *dot;

	while (o != NULL && (dot = strchr(path, '.')) != NULL) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		o = json_object_get(o, key);
		path = dot + 1;
	}
	return json_number_value(json_object_get(o, path));
}

/* VmRSS and VmHWM of a process in KiB (0 when unreadable) */
static void
proc_mem(long pid, long *rss, long *hwm)
{
	char path[64], line[256];

	*rss = *hwm = 0;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		sscanf(line, "VmRSS: %ld", rss);
		sscanf(line, "VmHWM: %ld", hwm);
	}
	fclose(f);
}

/* how many mappings of a file (by its path's last component) the process has: "mapped once"
 * is one line per model file */
static int
count_maps(long pid, const char *file)
{
	char path[64], line[4096];
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/maps", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = strrchr(line, '/');
		size_t l = strlen(base);
		if (p != NULL && strncmp(p + 1, base, l) == 0 && (p[1 + l] == '\n' || p[1 + l] == '\0'))
			n++;
	}
	fclose(f);
	return n;
}

int
main(int argc, char **argv)
{
	if (argc != 5 || atoi(argv[2]) < 1 || atoi(argv[3]) < 1) {
		fprintf(stderr, "usage: chatgen socket chats max-tokens message\n");
		return 2;
	}
	sock = argv[1];
	int n = atoi(argv[2]);
	max_tokens = atoi(argv[3]);
	msg = argv[4];
	json_t *st0 = get_stats();
	if (st0 == NULL || json_object_get(st0, "chat") == NULL) {
		fprintf(stderr, "chatgen: no chat stats from %s (is guardd up, with a generator?)\n",
		    sock);
		return 1;
	}
	struct chat_run *c = calloc((size_t)n, sizeof(*c));
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	double t0 = now();
	for (int i = 0; i < n; i++) {
		c[i].id = i + 1;
		pthread_create(&th[i], NULL, run_chat, &c[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	double wall = now() - t0;
	json_t *st1 = get_stats();

	double *ttft = calloc((size_t)n, sizeof(double));
	long tokens = 0, released = 0, checks = 0, gen_pos = 0, guard_pos = 0, errors = 0;
	double eval_final = 0;
	int n_final = 0;
	char finish[128] = "";
	for (int i = 0; i < n; i++) {
		if (c[i].final == NULL) {
			fprintf(stderr, "chatgen: chat %d: %s\n", c[i].id,
			    c[i].error[0] ? c[i].error : "no final answer");
			errors++;
			continue;
		}
		json_t *f = c[i].final, *rv = json_object_get(f, "response_verdict");
		tokens += (long)num(f, "usage.completion_tokens");
		released += (long)num(f, "usage.released_tokens");
		checks += (long)num(f, "checks");
		gen_pos += (long)(num(f, "usage.prompt_tokens") + num(f, "usage.completion_tokens"));
		/* the guard's stream held [prefix + conversation + response]: what the last check
		 * reused plus what it evaluated; the request check held its own conversation */
		guard_pos += (long)(num(f, "request_verdict.tokens_cached") +
		    num(f, "request_verdict.tokens_evaluated"));
		if (json_is_object(rv)) {
			guard_pos += (long)(num(rv, "tokens_cached") + num(rv, "tokens_evaluated"));
			eval_final += num(rv, "tokens_evaluated");
			n_final++;
		}
		const char *fr = json_string_value(json_object_get(f, "finish_reason"));
		if (fr != NULL && strstr(finish, fr) == NULL && strlen(finish) + strlen(fr) + 2 <
		    sizeof(finish))
			strcat(strcat(finish, finish[0] ? "," : ""), fr);
		ttft[i - errors] = ((c[i].t_first > 0 ? c[i].t_first : c[i].t_end) - c[i].t_send) * 1e3;
	}
	int ok = n - (int)errors;
	qsort(ttft, (size_t)ok, sizeof(double), cmp_double);
	double ttft_med = ok == 0 ? 0 : ok % 2 ? ttft[ok / 2] : (ttft[ok / 2 - 1] + ttft[ok / 2]) / 2;

	double d_checks = st1 ? num(st1, "chat.checks") - num(st0, "chat.checks") : 0;
	double d_check_ms = st1 ? num(st1, "chat.check_ms") - num(st0, "chat.check_ms") : 0;
	double d_gen = st1 ? num(st1, "chat.tokens_generated") - num(st0, "chat.tokens_generated") : 0;
	long pid = st1 ? (long)num(st1, "process.pid") : 0, ppid = st1 ?
	    (long)num(st1, "process.parent_pid") : 0, rss = 0, hwm = 0;
	if (pid > 0)
		proc_mem(pid, &rss, &hwm);
	const char *gpath = st1 ? json_string_value(json_object_get(json_object_get(st1,
	    "generator"), "path")) : NULL;
	const char *mpath = st1 ? json_string_value(json_object_get(json_object_get(st1,
	    "model"), "path")) : NULL;

	printf("%2d chats: %ld tokens (%ld released) in %.2f s: %.2f tokens/s aggregate; first "
	    "released token p50 %.0f ms; %.0f checks, %.1f ms each (%.1f tokens evaluated by the "
	    "last), guard %.1f%% of the wall time; finish %s; RSS %.0f MiB (peak %.0f)%s\n",
	    n, tokens, released, wall, tokens / wall, ttft_med, d_checks,
	    d_checks > 0 ? d_check_ms / d_checks : 0, n_final ? eval_final / n_final : 0,
	    100 * d_check_ms / 1e3 / wall, finish[0] ? finish : "-", rss / 1024.0, hwm / 1024.0,
	    errors ? " (errors!)" : "");
	json_t *out = json_pack("{s:i, s:i, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, "
	    "s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}",
	    "chats", n, "errors", (int)errors, "tokens", (json_int_t)tokens, "released",
	    (json_int_t)released, "checks_in_answers", (json_int_t)checks, "wall_s", wall,
	    "tok_s", tokens / wall, "ttft_ms_p50", ttft_med, "checks", d_checks, "check_ms",
	    d_check_ms, "eval_per_check_final", n_final ? eval_final / n_final : 0.0,
	    "tokens_generated", d_gen, "pid", (json_int_t)pid, "parent_pid", (json_int_t)ppid,
	    "rss_kb", (json_int_t)rss, "hwm_kb", (json_int_t)hwm, "gen_positions",
	    (json_int_t)gen_pos, "guard_positions", (json_int_t)guard_pos,
	    "generator_maps", (json_int_t)(gpath && pid > 0 ? count_maps(pid, gpath) : -1),
	    "model_maps", (json_int_t)(mpath && pid > 0 ? count_maps(pid, mpath) : -1),
	    "finish", finish);
	char *s = json_dumps(out, JSON_COMPACT);
	printf("%s\n", s);
	free(s);
	json_decref(out);
	json_decref(st0);
	json_decref(st1);
	for (int i = 0; i < n; i++)
		json_decref(c[i].final);
	free(c);
	free(th);
	free(ttft);
	return errors ? 1 : 0;
}
