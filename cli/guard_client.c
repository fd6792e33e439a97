/* guard_client.c - guard talking to guardd: ping, stats, reload, and classify and filter
 * through the socket, with the same output and exit statuses as in-process. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <msgpack.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/guard_cli.h"
#include "proto/proto.h"

#define WINDOW 32	/* filter: lines in flight */

struct client {
	int fd;
	msgpack_unpacker up;
};

static int
client_open(struct client *c, const char *path)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		warnx_("%s: socket path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		warnx_("%s: %s", path, strerror(errno));
		if (c->fd != -1)
			close(c->fd);
		return -1;
	}
	msgpack_unpacker_init(&c->up, 65536);
	return 0;
}

static void
client_close(struct client *c)
{
	close(c->fd);
	msgpack_unpacker_destroy(&c->up);
}

static int
send_all(struct client *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			warnx_("send: %s", strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static json_t *
to_json(const msgpack_object *o)
{
	json_t *j;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return json_null();
	case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
		j = json_stringn(o->via.str.ptr, o->via.str.size);
		return j ? j : json_null();
	case MSGPACK_OBJECT_ARRAY:
		j = json_array();
		for (uint32_t i = 0; i < o->via.array.size; i++)
			json_array_append_new(j, to_json(&o->via.array.ptr[i]));
		return j;
	case MSGPACK_OBJECT_MAP:
		j = json_object();
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;
			if (k->type != MSGPACK_OBJECT_STR)
				continue;
			char *ks = strndup(k->via.str.ptr, k->via.str.size);
			json_object_set_new(j, ks, to_json(&o->via.map.ptr[i].val));
			free(ks);
		}
		return j;
	default:
		return json_null();
	}
}

/* The next response as JSON in *out: 1; 0 when nothing came within timeout_ms; -1 when the
 * connection ended or failed (said on stderr). */
static int
recv_next(struct client *c, int timeout_ms, json_t **out)
{
	msgpack_unpacked res;
	int rc = -1;

	msgpack_unpacked_init(&res);
	for (;;) {
		if (msgpack_unpacker_next(&c->up, &res) == MSGPACK_UNPACK_SUCCESS) {
			*out = to_json(&res.data);
			rc = 1;
			break;
		}
		struct pollfd pf = { c->fd, POLLIN, 0 };
		int pr = poll(&pf, 1, timeout_ms);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			if (pr == 0)
				rc = 0;
			else
				warnx_("poll: %s", strerror(errno));
			break;
		}
		if (!msgpack_unpacker_reserve_buffer(&c->up, 65536))
			break;
		ssize_t r = recv(c->fd, msgpack_unpacker_buffer(&c->up), 65536, 0);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			warnx_("guardd closed the connection");
			break;
		}
		msgpack_unpacker_buffer_consumed(&c->up, (size_t)r);
	}
	msgpack_unpacked_destroy(&res);
	return rc;
}

/* the next response as JSON; NULL when the connection ends or stalls */
static json_t *
recv_one(struct client *c, int timeout_ms)
{
	json_t *j = NULL;
	int r = recv_next(c, timeout_ms, &j);

	if (r == 0)
		warnx_("no answer from guardd");
	return r == 1 ? j : NULL;
}

static void
pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void
pack_request(msgpack_sbuffer *sb, long id, const char *op, const char *policy, const struct conv *cv)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2 + (policy != NULL) + (cv != NULL));
	pack_str(&pk, "id", 2);
	msgpack_pack_int64(&pk, id);
	pack_str(&pk, "op", 2);
	pack_str(&pk, op, strlen(op));
	if (policy) {
		pack_str(&pk, "policy", 6);
		pack_str(&pk, policy, strlen(policy));
	}
	if (cv) {
		size_t img = 0;	/* the conversation's image bytes go to its image parts in order */
		pack_str(&pk, "messages", 8);
		msgpack_pack_array(&pk, cv->n);
		for (size_t i = 0; i < cv->n; i++) {
			const struct conv_msg *m = &cv->msg[i];
			msgpack_pack_map(&pk, 2);
			pack_str(&pk, "role", 4);
			pack_str(&pk, m->assistant ? "assistant" : "user", m->assistant ? 9 : 4);
			pack_str(&pk, "content", 7);
			if (m->n_parts == 1 && m->n_images == 0)
				pack_str(&pk, m->parts[0], m->part_len[0]);
			else {
				msgpack_pack_array(&pk, m->n_parts + m->n_images);
				for (size_t k = 0; k < m->n_parts; k++) {
					msgpack_pack_map(&pk, 2);
					pack_str(&pk, "type", 4);
					pack_str(&pk, "text", 4);
					pack_str(&pk, "text", 4);
					pack_str(&pk, m->parts[k], m->part_len[k]);
				}
				/* images as binary parts {type: image, data: <bin>}, after the text
				 * (where they stand does not change Llama Guard's prompt) */
				for (size_t k = 0; k < m->n_images; k++, img++) {
					msgpack_pack_map(&pk, 2);
					pack_str(&pk, "type", 4);
					pack_str(&pk, "image", 5);
					pack_str(&pk, "data", 4);
					const struct conv_image *ci = img < cv->n_img ? &cv->img[img] : NULL;
					msgpack_pack_bin(&pk, ci ? ci->len : 0);
					msgpack_pack_bin_body(&pk, ci ? (const char *)ci->data : "",
					    ci ? ci->len : 0);
				}
			}
		}
	}
}

static const char *
error_text(const json_t *r)
{
	static char buf[1100];
	json_t *e = json_object_get(r, "error");

	snprintf(buf, sizeof(buf), "%s: %s", json_string_value(json_object_get(e, "code")) ?
	    json_string_value(json_object_get(e, "code")) : "?",
	    json_string_value(json_object_get(e, "message")) ?
	    json_string_value(json_object_get(e, "message")) : "");
	return buf;
}

/* one request, one answer */
static json_t *
round_trip(const char *sock, const char *op, const char *policy, const struct conv *cv)
{
	struct client c;
	msgpack_sbuffer sb;
	json_t *r = NULL;

	if (client_open(&c, sock) == -1)
		return NULL;
	msgpack_sbuffer_init(&sb);
	pack_request(&sb, 1, op, policy, cv);
	if (send_all(&c, sb.data, sb.size) == 0)
		r = recv_one(&c, 600000);
	msgpack_sbuffer_destroy(&sb);
	client_close(&c);
	return r;
}

int
client_classify(const char *sock, const char *policy, const struct conv *cv, int as_json)
{
	json_t *r = round_trip(sock, "classify", policy, cv);
	int st = ST_ERROR;

	if (r == NULL)
		return ST_ERROR;
	if (!json_is_true(json_object_get(r, "ok")))
		warnx_("guardd: %s", error_text(r));
	else {
		json_t *v = json_object_get(r, "verdict");
		verdict_print(v, as_json);
		st = verdict_status(v);
	}
	json_decref(r);
	return st;
}

static int
control(int argc, char **argv, const char *op)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 'S' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	const char *sock = NULL;
	int c, as_json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "S:jh", lo, NULL)) != -1)
		switch (c) {
		case 'S': sock = optarg; break;
		case 'j': as_json = 1; break;
		default: return usage_of(op);
		}
	if (sock == NULL || optind != argc)
		return usage_of(op);
	json_t *r = round_trip(sock, op, NULL, NULL);
	if (r == NULL)
		return EXIT_BAD;
	if (!json_is_true(json_object_get(r, "ok"))) {
		warnx_("guardd: %s", error_text(r));
		json_decref(r);
		return EXIT_BAD;
	}
	json_t *body = json_object_get(r, strcmp(op, "ping") == 0 ? "pong" :
	    strcmp(op, "stats") == 0 ? "stats" : "policies");
	if (strcmp(op, "ping") == 0 && !as_json)
		printf("pong (protocol %lld, model %s)\n",
		    (long long)json_integer_value(json_object_get(body, "protocol")),
		    json_string_value(json_object_get(body, "model")));
	else {
		char *s = json_dumps(body, as_json ? JSON_COMPACT : JSON_INDENT(2));
		printf("%s\n", s);
		free(s);
	}
	json_decref(r);
	return EXIT_OK;
}

int cmd_ping(int argc, char **argv) { return control(argc, argv, "ping"); }
int cmd_stats(int argc, char **argv) { return control(argc, argv, "stats"); }
int cmd_reload(int argc, char **argv) { return control(argc, argv, "reload"); }

/* filter through the daemon: up to WINDOW lines in flight, output in input order. A `busy`
 * answer (the daemon's queue is full) is retried with exponential back-off, at most
 * busy_retries() times per request; then, like any other error answer, it makes that line an
 * error record. Every line is written exactly once. The number of requests in flight adapts
 * to what the daemon takes: halved on each busy answer, one more for each verdict. */
#define BUSY_FIRST_MS 10.0
#define BUSY_MAX_MS 1000.0
#define ANSWER_TIMEOUT_MS 600000

struct slot {
	struct line l;
	int pending;		/* requests of the line without a final answer */
	int done[2];		/* a final answer came for this half */
	int tries[2];		/* busy answers so far */
	double retry_at[2];	/* > 0: resend at that time */
};

/* GUARD_BUSY_RETRIES (0..100) or 8 */
static int
busy_retries(void)
{
	const char *s = getenv("GUARD_BUSY_RETRIES");
	char *end;
	long v = s ? strtol(s, &end, 10) : 8;

	return s && (*s == '\0' || *end != '\0' || v < 0 || v > 100) ? 8 : (int)v;
}

static int
send_half(struct client *c, long ln, int k, const char *policy, const struct conv *cv)
{
	msgpack_sbuffer sb;
	int r;

	msgpack_sbuffer_init(&sb);
	/* id: line index times two, plus the verdict's slot */
	pack_request(&sb, ln * 2 + k, "classify", policy, cv);
	r = send_all(c, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return r;
}

static void
finish_line(struct slot *s, const struct copts *o, const struct policy *p, struct tally *t)
{
	if (s->l.err[0])	/* an error record replaces whatever verdicts came */
		for (int k = 0; k < 2; k++) {
			json_decref(s->l.vj[k]);
			s->l.vj[k] = NULL;
		}
	emit_line(&s->l, o, p, t);
	line_free(&s->l);
}

/* one answer: a verdict, a busy to retry, or an error for the line */
static void
take_answer(struct slot *ring, long first, long next_line, json_t *r, int max_tries, int *limit)
{
	json_t *idj = json_object_get(r, "id");
	long id = json_is_integer(idj) ? (long)json_integer_value(idj) : -1;
	long ln = id >= 0 ? id / 2 : -1;
	int k = (int)(id % 2);
	struct slot *s = ln >= first && ln < next_line ? &ring[ln % WINDOW] : NULL;

	if (s == NULL || k >= s->l.n_cv || s->done[k] || s->retry_at[k] > 0) {
		warnx_("guardd answered an unknown id %ld", id);
		return;
	}
	if (json_is_true(json_object_get(r, "ok"))) {
		if (*limit < 2 * WINDOW)
			(*limit)++;
		if (s->l.err[0] == '\0')
			s->l.vj[k] = json_incref(json_object_get(r, "verdict"));
	} else {
		const char *code = json_string_value(json_object_get(json_object_get(r, "error"), "code"));
		int busy = code && strcmp(code, "busy") == 0;
		if (busy && *limit > 1)
			*limit /= 2;
		if (busy && s->tries[k] < max_tries) {
			/* back-off doubling from BUSY_FIRST_MS, spread by line so retries do not
			 * arrive together */
			double ms = BUSY_FIRST_MS * (double)(1L << s->tries[k]);
			ms = (ms < BUSY_MAX_MS ? ms : BUSY_MAX_MS) * (0.75 + 0.05 * (double)(ln % 10));
			s->tries[k]++;
			s->retry_at[k] = now_s() + ms / 1000.0;
			return;
		}
		if (s->l.err[0] == '\0') {
			snprintf(s->l.err, sizeof(s->l.err), "guardd: %s", error_text(r));
			if (busy && s->tries[k] > 0) {
				size_t n = strlen(s->l.err);
				snprintf(s->l.err + n, sizeof(s->l.err) - n, " (gave up after %d tries)",
				    s->tries[k] + 1);
			}
		}
	}
	s->done[k] = 1;
	s->pending--;
	for (int q = 0; q < s->l.n_cv && s->l.err[0]; q++)
		if (s->retry_at[q] > 0) {	/* the line is an error already: no need to retry */
			s->retry_at[q] = 0;
			s->done[q] = 1;
			s->pending--;
		}
}

int
client_filter(const char *sock, const char *policy, const struct copts *oin,
    const struct policy *p)
{
	struct copts opts = *oin, *o = &opts;
	struct client c;
	/* the daemon's policy, for the error verdicts of lines that never reach it */
	json_t *st = round_trip(sock, "stats", NULL, NULL);
	json_t *pe = json_object_get(json_object_get(json_object_get(st, "stats"), "policies"),
	    policy ? policy : "default");
	if (pe != NULL) {
		o->remote_policy = json_string_value(json_object_get(pe, "name"));
		o->remote_hash = json_string_value(json_object_get(pe, "hash"));
		o->remote_flag_errors = !json_is_false(json_object_get(pe, "on_error_blocks"));
	}
	struct tally t = { 0 };
	struct slot *ring = calloc(WINDOW, sizeof(*ring));
	long next_line = 0, first = 0;	/* lines [first, next_line) are in the ring */
	char *buf = NULL;
	size_t cap = 0;
	int eof = 0, broken = 0, max_tries = busy_retries();
	int inflight = 0, limit = 2 * WINDOW;	/* requests sent and not answered; the most */
	double t0 = now_s();

	if (ring == NULL || client_open(&c, sock) == -1) {
		free(ring);
		json_decref(st);
		return ST_ERROR;
	}
	while (!eof || first < next_line) {
		/* fill the window */
		while (!eof && next_line - first < WINDOW && inflight < limit) {
			ssize_t r = getline(&buf, &cap, stdin);
			if (r < 0) {
				eof = 1;
				break;
			}
			if (r > 0 && buf[r - 1] == '\n')
				r--;
			if (r > 0 && buf[r - 1] == '\r')
				r--;
			struct slot *s = &ring[next_line % WINDOW];
			memset(s, 0, sizeof(*s));
			s->l.no = next_line + 1;
			s->l.text = strndup(buf, (size_t)r);
			s->l.len = (size_t)r;
			line_parse(&s->l);
			s->pending = s->l.err[0] ? 0 : s->l.n_cv;
			for (int k = 0; k < s->pending && !broken; k++, inflight++)
				broken = send_half(&c, next_line, k, policy, &s->l.cv[k]) == -1;
			next_line++;
		}
		/* write every finished line at the head of the window */
		while (first < next_line && ring[first % WINDOW].pending == 0) {
			finish_line(&ring[first % WINDOW], o, p, &t);
			first++;
		}
		if (first == next_line)
			continue;
		if (broken)
			break;
		/* resend the busy requests that are due; wait no longer than the next one */
		double now = now_s(), due = 0;
		for (long ln = first; ln < next_line && !broken; ln++)
			for (int k = 0; k < 2 && !broken; k++) {
				struct slot *s = &ring[ln % WINDOW];
				if (s->retry_at[k] <= 0)
					continue;
				if (s->retry_at[k] <= now) {
					if (inflight >= limit)
						continue;	/* due, but the daemon is full: wait for an answer */
					s->retry_at[k] = 0;
					inflight++;
					broken = send_half(&c, ln, k, policy, &s->l.cv[k]) == -1;
				} else if (due == 0 || s->retry_at[k] < due)
					due = s->retry_at[k];
			}
		if (broken)
			break;
		json_t *r = NULL;
		int got = recv_next(&c, due > 0 ? (int)((due - now) * 1000) + 1 : ANSWER_TIMEOUT_MS, &r);
		if (got == 0 && due > 0)
			continue;	/* a retry is due */
		if (got <= 0) {
			if (got == 0)
				warnx_("no answer from guardd");
			broken = 1;
			break;
		}
		inflight--;
		take_answer(ring, first, next_line, r, max_tries, &limit);
		json_decref(r);
	}
	if (broken)
		while (first < next_line) {	/* what never came back is an error */
			struct slot *s = &ring[first % WINDOW];
			if (s->l.err[0] == '\0')
				snprintf(s->l.err, sizeof(s->l.err), "no answer from guardd");
			finish_line(s, o, p, &t);
			first++;
		}
	double el = now_s() - t0;
	fprintf(stderr, "guard filter: %ld lines: %ld allowed, %ld flagged, %ld blocked, %ld errors in "
	    "%.2f s (%.2f lines/s)\n", t.lines, t.allow, t.flag, t.block, t.errors, el,
	    el > 0 ? t.lines / el : 0.0);
	free(buf);
	free(ring);
	client_close(&c);
	json_decref(st);
	return o->exit_zero ? EXIT_OK : (broken ? ST_ERROR : t.status);
}
