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

#define WINDOW 32	/* filter: requests in flight */

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

/* the next response as JSON; NULL when the connection ends or stalls */
static json_t *
recv_one(struct client *c, int timeout_ms)
{
	msgpack_unpacked res;

	msgpack_unpacked_init(&res);
	for (;;) {
		if (msgpack_unpacker_next(&c->up, &res) == MSGPACK_UNPACK_SUCCESS) {
			json_t *j = to_json(&res.data);
			msgpack_unpacked_destroy(&res);
			return j;
		}
		struct pollfd pf = { c->fd, POLLIN, 0 };
		int pr = poll(&pf, 1, timeout_ms);
		if (pr <= 0) {
			warnx_(pr == 0 ? "no answer from guardd" : "poll: %s", strerror(errno));
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
	return NULL;
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
		pack_str(&pk, "messages", 8);
		msgpack_pack_array(&pk, cv->n);
		for (size_t i = 0; i < cv->n; i++) {
			const struct conv_msg *m = &cv->msg[i];
			msgpack_pack_map(&pk, 2);
			pack_str(&pk, "role", 4);
			pack_str(&pk, m->assistant ? "assistant" : "user", m->assistant ? 9 : 4);
			pack_str(&pk, "content", 7);
			if (m->n_parts == 1)
				pack_str(&pk, m->parts[0], m->part_len[0]);
			else {
				msgpack_pack_array(&pk, m->n_parts);
				for (size_t k = 0; k < m->n_parts; k++) {
					msgpack_pack_map(&pk, 2);
					pack_str(&pk, "type", 4);
					pack_str(&pk, "text", 4);
					pack_str(&pk, "text", 4);
					pack_str(&pk, m->parts[k], m->part_len[k]);
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

/* filter through the daemon: up to WINDOW requests in flight, output in input order */
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
	struct line *ring = calloc(WINDOW, sizeof(*ring));
	int *pending = calloc(WINDOW, sizeof(int));
	long next_line = 0, first = 0;	/* lines [first, next_line) are in the ring */
	char *buf = NULL;
	size_t cap = 0;
	int eof = 0, broken = 0;
	double t0 = now_s();

	if (client_open(&c, sock) == -1) {
		free(ring);
		free(pending);
		json_decref(st);
		return ST_ERROR;
	}
	while (!eof || first < next_line) {
		/* fill the window */
		while (!eof && next_line - first < WINDOW) {
			ssize_t r = getline(&buf, &cap, stdin);
			if (r < 0) {
				eof = 1;
				break;
			}
			if (r > 0 && buf[r - 1] == '\n')
				r--;
			if (r > 0 && buf[r - 1] == '\r')
				r--;
			struct line *l = &ring[next_line % WINDOW];
			memset(l, 0, sizeof(*l));
			l->no = next_line + 1;
			l->text = strndup(buf, (size_t)r);
			l->len = (size_t)r;
			line_parse(l);
			pending[next_line % WINDOW] = l->err[0] ? 0 : l->n_cv;
			for (int k = 0; k < l->n_cv && !broken; k++) {
				msgpack_sbuffer sb;
				msgpack_sbuffer_init(&sb);
				/* id: line index times two, plus the verdict's slot */
				pack_request(&sb, next_line * 2 + k, "classify", policy, &l->cv[k]);
				broken = send_all(&c, sb.data, sb.size) == -1;
				msgpack_sbuffer_destroy(&sb);
			}
			next_line++;
		}
		/* write every finished line at the head of the window */
		while (first < next_line && pending[first % WINDOW] == 0) {
			emit_line(&ring[first % WINDOW], o, p, &t);
			line_free(&ring[first % WINDOW]);
			first++;
		}
		if (first == next_line)
			continue;
		if (broken)
			break;
		json_t *r = recv_one(&c, 600000);
		if (r == NULL) {
			broken = 1;
			break;
		}
		long id = (long)json_integer_value(json_object_get(r, "id"));
		long ln = id / 2;
		int k = (int)(id % 2);
		if (ln < first || ln >= next_line || k >= ring[ln % WINDOW].n_cv ||
		    ring[ln % WINDOW].vj[k] != NULL) {
			warnx_("guardd answered an unknown id %ld", id);
			json_decref(r);
			continue;
		}
		struct line *l = &ring[ln % WINDOW];
		if (json_is_true(json_object_get(r, "ok")))
			l->vj[k] = json_incref(json_object_get(r, "verdict"));
		else {
			/* a protocol error (busy, timeout...) stands in as an error verdict */
			snprintf(l->err, sizeof(l->err), "guardd: %s", error_text(r));
			for (int q = 0; q < l->n_cv; q++) {
				json_decref(l->vj[q]);
				l->vj[q] = NULL;
			}
			pending[ln % WINDOW] = 1;
		}
		json_decref(r);
		pending[ln % WINDOW]--;
	}
	if (broken)
		while (first < next_line) {	/* what never came back is an error */
			struct line *l = &ring[first % WINDOW];
			snprintf(l->err, sizeof(l->err), "no answer from guardd");
			emit_line(l, o, p, &t);
			line_free(l);
			first++;
		}
	double el = now_s() - t0;
	fprintf(stderr, "guard filter: %ld lines: %ld allowed, %ld flagged, %ld blocked, %ld errors in "
	    "%.2f s (%.2f lines/s)\n", t.lines, t.allow, t.flag, t.block, t.errors, el,
	    el > 0 ? t.lines / el : 0.0);
	free(buf);
	free(ring);
	free(pending);
	client_close(&c);
	json_decref(st);
	return o->exit_zero ? EXIT_OK : (broken ? ST_ERROR : t.status);
}
