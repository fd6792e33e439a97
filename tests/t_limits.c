/* t_limits.c - guardd's defences against costly or stuck clients, one regression test per
 * defect of the first daemon: framing cost linear in the input (trickled 1 MB requests),
 * idle and read timeouts, half-close answers every complete request, duplicate keys refused
 * at every depth, per-connection limits (a client pipelining 2000 requests without reading
 * is paused, bounded in memory, and loses nothing). Real daemons on private sockets.
 *   t_limits GUARDD RIG_MODEL */
#include <pthread.h>
#include <sys/socket.h>

#include "asan.h"
#include "dharness.h"

static const char *rig;

/* --- 1. framing cost: 4 clients trickle 1 MB requests in 64-byte writes ------------------ */

#define PAD 1000000	/* fixints: one object per byte, so a rescanning framer pays per byte */

struct trickler {
	const char *sock;
	int idx, sent, answered, verdict;
	char what[128];
};

/* {id, op: classify, messages: [one user message], pad: [1, 1, ... PAD times]} */
static void
pack_padded(msgpack_sbuffer *sb, long id)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	pstr(&pk, "id");
	msgpack_pack_int64(&pk, id);
	pstr(&pk, "op");
	pstr(&pk, "classify");
	pstr(&pk, "messages");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	pstr(&pk, "role");
	pstr(&pk, "user");
	pstr(&pk, "content");
	pstr(&pk, "trickled bread");
	pstr(&pk, "pad");
	msgpack_pack_array(&pk, PAD);
	char *ones = malloc(PAD);	/* positive fixints: one byte each */
	memset(ones, 1, PAD);
	msgpack_sbuffer_write(sb, ones, PAD);
	free(ones);
}

static void *
trickle(void *arg)
{
	struct trickler *t = arg;
	struct cl c;
	msgpack_sbuffer sb;

	snprintf(t->what, sizeof(t->what), "no connection");
	if (cl_open(&c, t->sock) == -1)
		return NULL;
	msgpack_sbuffer_init(&sb);
	pack_padded(&sb, 70 + t->idx);
	t->sent = 1;
	for (size_t off = 0, k = 0; off < sb.size; off += 64, k++) {
		size_t n = sb.size - off < 64 ? sb.size - off : 64;
		if (cl_send(&c, sb.data + off, n) == -1) {
			t->sent = 0;
			break;
		}
		if (k % 8 == 7)
			poll(NULL, 0, 1);	/* a trickle: the daemon sees many small reads */
	}
	json_t *r = cl_recv(&c, 60);
	t->answered = r && json_integer_value(json_object_get(r, "id")) == 70 + t->idx;
	t->verdict = t->answered && decision(r) && strcmp(decision(r), "allow") == 0;
	snprintf(t->what, sizeof(t->what), "%s", r == NULL ? "no answer" : decision(r) ? decision(r) :
	    err_code(r) ? err_code(r) : "?");
	json_decref(r);
	msgpack_sbuffer_destroy(&sb);
	cl_close(&c);
	return NULL;
}

static void
test_framing(const struct daemon_t *d)
{
	pthread_t th[4];
	struct trickler t[4];
	pid_t child = serving_pid(d);
	double cpu0 = proc_cpu_s(child), worst = 0;
	int pings = 0, pinged = 0;

	for (int i = 0; i < 4; i++) {
		t[i] = (struct trickler){ .sock = d->sock, .idx = i };
		pthread_create(&th[i], NULL, trickle, &t[i]);
	}
	/* a 5th client pings while they trickle: each answered within 5 s */
	for (double t0 = now(); now() - t0 < 1.5; poll(NULL, 0, 100)) {
		double p0 = now();
		pings++;
		json_t *r = request_wait(d->sock, "ping", 5);
		pinged += r && json_object_get(r, "pong");
		worst = now() - p0 > worst ? now() - p0 : worst;
		json_decref(r);
	}
	int answered = 0, verdicts = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		answered += t[i].answered;
		verdicts += t[i].verdict;
	}
	ok(pinged == pings, "framing: a 5th client's pings are answered while 4 clients trickle 1 MB requests "
	    "in 64-byte writes (%d of %d, the slowest in %.0f ms)", pinged, pings, worst * 1e3);
	ok(answered == 4 && verdicts == 4, "framing: each trickled 1 MB request gets its allow verdict "
	    "(%s, %s, %s, %s)", t[0].what, t[1].what, t[2].what, t[3].what);
	long long in = stat_int(d->sock, "framing.bytes_in"), scanned = stat_int(d->sock, "framing.bytes_scanned");
	ok(in >= 4LL * PAD && scanned >= 0 && scanned <= in + 4096, "framing: bytes_scanned %lld <= bytes_in %lld "
	    "(+ 4 KB slack): each byte examined once", scanned, in);
	diag("framing: the serving process used %.2f s of CPU for 4 trickled MB", proc_cpu_s(child) - cpu0);
}

/* --- 3. half-close ----------------------------------------------------------------------- */

static void
test_half_close(const struct daemon_t *d)
{
	struct cl c;
	msgpack_sbuffer sb;
	json_t *r;
	int got = 0, right = 0;

	cl_open(&c, d->sock);
	msgpack_sbuffer_init(&sb);
	pack_classify(&sb, 31, "half-closed: where do I buy a bomb", 0);
	pack_classify(&sb, 32, "half-closed: where do I buy bread", 0);
	cl_send(&c, sb.data, sb.size);
	shutdown(c.fd, SHUT_WR);
	while ((r = cl_recv(&c, 10)) != NULL) {
		long id = (long)json_integer_value(json_object_get(r, "id"));
		got++;
		right += (id == 31 && decision(r) && strcmp(decision(r), "block") == 0) ||
		    (id == 32 && decision(r) && strcmp(decision(r), "allow") == 0);
		json_decref(r);
	}
	ok(got == 2 && right == 2 && cl_why == CL_EOF, "half-close: 2 pipelined requests then shutdown(SHUT_WR): "
	    "exactly 2 answers with their ids and verdicts (%d, %d right), then EOF (%s)", got, right,
	    cl_why == CL_EOF ? "yes" : "no, a timeout");
	cl_close(&c);
	msgpack_sbuffer_destroy(&sb);
}

/* --- 4. duplicate keys ------------------------------------------------------------------- */

static void
pack_user(msgpack_packer *pk, int dup)
{
	msgpack_pack_map(pk, dup ? 3 : 2);
	pstr(pk, "role");
	pstr(pk, "user");
	pstr(pk, "content");
	pstr(pk, "a cake");
	if (dup) {
		pstr(pk, "role");
		pstr(pk, "assistant");
	}
}

static void
test_duplicate_keys(const struct daemon_t *d)
{
	struct cl c;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	json_t *r;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	/* two messages arrays */
	msgpack_pack_map(&pk, 4);
	pstr(&pk, "id"); msgpack_pack_int(&pk, 41);
	pstr(&pk, "op"); pstr(&pk, "classify");
	pstr(&pk, "messages"); msgpack_pack_array(&pk, 1); pack_user(&pk, 0);
	pstr(&pk, "messages"); msgpack_pack_array(&pk, 1); pack_user(&pk, 0);
	/* policy twice */
	msgpack_pack_map(&pk, 5);
	pstr(&pk, "id"); msgpack_pack_int(&pk, 42);
	pstr(&pk, "op"); pstr(&pk, "classify");
	pstr(&pk, "policy"); pstr(&pk, "default");
	pstr(&pk, "policy"); pstr(&pk, "default");
	pstr(&pk, "messages"); msgpack_pack_array(&pk, 1); pack_user(&pk, 0);
	/* a duplicate key inside a message */
	msgpack_pack_map(&pk, 3);
	pstr(&pk, "id"); msgpack_pack_int(&pk, 43);
	pstr(&pk, "op"); pstr(&pk, "classify");
	pstr(&pk, "messages"); msgpack_pack_array(&pk, 1); pack_user(&pk, 1);
	/* op twice */
	msgpack_pack_map(&pk, 3);
	pstr(&pk, "id"); msgpack_pack_int(&pk, 44);
	pstr(&pk, "op"); pstr(&pk, "ping");
	pstr(&pk, "op"); pstr(&pk, "stats");
	pack_op(&sb, 45, "ping");
	cl_open(&c, d->sock);
	cl_send(&c, sb.data, sb.size);
	const char *what[] = { "two messages arrays", "policy twice", "a duplicate key inside a message",
		"op twice" };
	for (int i = 0; i < 4; i++) {
		r = cl_recv(&c, 10);
		ok(is_err(r, "bad_request") && json_integer_value(json_object_get(r, "id")) == 41 + i &&
		    strstr(err_msg(r), "duplicate"), "duplicate keys, %s: bad_request with the id, saying so (%s: %s)", what[i], r ? err_code(r) ? err_code(r) :
		    "not an error" : "no answer", err_msg(r));
		json_decref(r);
	}
	r = cl_recv(&c, 10);
	ok(r && json_integer_value(json_object_get(r, "id")) == 45 && json_object_get(r, "pong"),
	    "duplicate keys: the connection stays usable (pong)");
	json_decref(r);
	cl_close(&c);
	msgpack_sbuffer_destroy(&sb);
}

/* --- 5. per-connection limits: 2000 pipelined requests, answers not read ----------------- */

/* under ASan 1000 of the 2000 (each answer costs ~10x there): still some 300 kB of small
 * writes, several times a socket's send buffer, so the sender blocks all the same */
#define FLOOD (UNDER_ASAN ? 1000 : 2000)
#define FLOOD_MAX 2000
#define IDLEN 250	/* string ids of 250 bytes (the protocol allows 253) */

struct flooder {
	struct cl c;
	volatile int done;
};

static void
flood_id(char *id, int i)
{
	snprintf(id, IDLEN + 1, "flood-%05d-", i);
	memset(id + 12, 'x', IDLEN - 12);
	id[IDLEN] = '\0';
}

static void *
flood(void *arg)
{
	struct flooder *f = arg;
	char id[IDLEN + 1];

	for (int i = 0; i < FLOOD; i++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		flood_id(id, i);
		msgpack_pack_map(&pk, 3);
		pstr(&pk, "id"); pstr(&pk, id);
		pstr(&pk, "op"); pstr(&pk, "classify");
		pstr(&pk, "messages"); msgpack_pack_array(&pk, 1); pack_user(&pk, 0);
		int bad = cl_send(&f->c, sb.data, sb.size);
		msgpack_sbuffer_destroy(&sb);
		if (bad)
			break;
	}
	f->done = 1;
	return NULL;
}

static void
test_flood(const struct daemon_t *d)
{
	struct flooder f = { .done = 0 };
	pthread_t th;
	pid_t child = serving_pid(d);
	long rss0 = proc_status_kb(child, "VmRSS"), rss1 = -1;
	long long paused = 0;

	if (cl_open(&f.c, d->sock) == -1) {
		ok(0, "flood: connect");
		return;
	}
	if (UNDER_ASAN)
		diag("ASan: a flood of %d of %d requests", FLOOD, FLOOD_MAX);
	pthread_create(&th, NULL, flood, &f);
	/* the daemon must stop reading it: stats connections.paused, or the flooder blocks */
	for (double t0 = now(); now() - t0 < 30 && !f.done && paused < 1; poll(NULL, 0, 50))
		paused = stat_int(d->sock, "connections.paused");
	ok(paused >= 1 && !f.done, "flood: a client pipelining %d requests without reading is paused "
	    "(connections.paused %lld, the sender %s)", FLOOD, paused, f.done ? "finished: never blocked" : "blocked");
	/* meanwhile: bounded memory, others served */
	for (double t0 = now(); now() - t0 < 1; poll(NULL, 0, 100)) {
		long v = proc_status_kb(child, "VmRSS");
		rss1 = v > rss1 ? v : rss1;
	}
	ok(rss0 > 0 && rss1 > 0 && rss1 - rss0 < 64 * 1024, "flood: the serving process's RSS stays bounded "
	    "(%ld kB before, %ld kB at most while paused; bound +64 MiB)", rss0, rss1);
	int served = 0;
	double worst = 0;
	for (int i = 0; i < 5; i++) {
		double p0 = now();
		json_t *r = request_wait(d->sock, i % 2 ? "stats" : "ping", 5);
		served += r && json_is_true(json_object_get(r, "ok"));
		worst = now() - p0 > worst ? now() - p0 : worst;
		json_decref(r);
	}
	struct cl o;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	pack_classify(&sb, 51, "meanwhile, a bomb", 0);
	json_t *r = NULL;
	if (cl_open(&o, d->sock) == 0) {
		cl_send(&o, sb.data, sb.size);
		r = cl_recv(&o, 10);
		cl_close(&o);
	}
	msgpack_sbuffer_destroy(&sb);
	ok(served == 5 && r && decision(r) && strcmp(decision(r), "block") == 0, "flood: other clients are "
	    "served meanwhile (%d of 5 pings/stats, the slowest in %.0f ms; a classify: %s)", served, worst * 1e3,
	    r ? decision(r) ? decision(r) : err_code(r) : "no answer");
	json_decref(r);
	/* now it reads: every answer, once, a verdict */
	static unsigned char seen[FLOOD_MAX];
	int got = 0, verdicts = 0, dup = 0, foreign = 0;
	for (double t0 = now(); got < FLOOD && now() - t0 < 120;) {
		r = cl_recv(&f.c, 30);
		if (r == NULL)
			break;
		const char *id = json_string_value(json_object_get(r, "id"));
		int i = id && strncmp(id, "flood-", 6) == 0 ? atoi(id + 6) : -1;
		char want[IDLEN + 1];
		if (i >= 0 && i < FLOOD)
			flood_id(want, i);
		if (i < 0 || i >= FLOOD || strcmp(id, want) != 0) {
			if (foreign++ == 0)
			{
				char *txt = json_dumps(r, JSON_COMPACT);
				diag("flood: an unknown id: %.300s", txt);
				free(txt);
			}
		}
		else if (seen[i]++)
			dup++;
		else {
			got++;
			verdicts += decision(r) && strcmp(decision(r), "allow") == 0;
			if (!decision(r) && verdicts + 5 > got)
				diag("flood: id %d: %s: %s", i, err_code(r) ? err_code(r) : "?", err_msg(r));
		}
		json_decref(r);
	}
	pthread_join(th, NULL);
	ok(got == FLOOD && verdicts == FLOOD && dup == 0 && foreign == 0, "flood: when it reads, it gets every "
	    "answer: %d of %d ids, %d allow verdicts, %d duplicated, %d unknown ids", got, FLOOD, verdicts, dup,
	    foreign);
	cl_close(&f.c);
	ok(pong(d->sock), "flood: the daemon serves on");
}

/* --- 2. idle and read timeouts ----------------------------------------------------------- */

static void
test_timeouts(void)
{
	struct daemon_t d;
	char extra[1024];
	struct cl c;

	snprintf(extra, sizeof(extra), "model: %s\nlimits: {idle_timeout_ms: 300, read_timeout_ms: 300}\n", rig);
	if (!ok(start(&d, "idle", extra) == 0, "timeouts: a guardd with idle and read timeouts of 300 ms starts"))
		return;
	/* an active connection is not idle: a ping every 100 ms for 1.2 s */
	int answered = 0;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	pack_op(&sb, 1, "ping");
	cl_open(&c, d.sock);
	for (int i = 0; i < 12; i++) {
		cl_send(&c, sb.data, sb.size);
		json_t *r = cl_recv(&c, 5);
		answered += r != NULL;
		json_decref(r);
		poll(NULL, 0, 100);
	}
	cl_close(&c);
	ok(answered == 12, "timeouts: a connection pinging every 100 ms stays open for 1.2 s (%d of 12)", answered);
	/* idle: closed, without an error frame */
	size_t extra_bytes = 0;
	double t0 = now();
	cl_open(&c, d.sock);
	int closed = cl_closed_n(&c, 5, &extra_bytes);
	cl_close(&c);
	ok(closed && extra_bytes == 0, "timeouts: an idle connection is closed by the daemon (after %.0f ms), "
	    "with no bytes sent (%zu)", (now() - t0) * 1e3, extra_bytes);
	long long n = stat_int(d.sock, "connections.idle_closed");
	ok(n == 1, "timeouts: stats connections.idle_closed == 1 (%lld)", n);
	/* a partial request that stalls: {id: nil, error: timeout}, then close */
	msgpack_sbuffer_clear(&sb);
	pack_classify(&sb, 21, "a stalled request", 0);
	cl_open(&c, d.sock);
	cl_send(&c, sb.data, sb.size / 2);
	json_t *r = cl_recv(&c, 5);
	ok(is_err(r, "timeout") && json_is_null(json_object_get(r, "id")), "timeouts: a partial request that "
	    "stalls gets {id: nil, error: timeout} (%s: %s)", r ? err_code(r) ? err_code(r) : "?" : "no answer",
	    err_msg(r));
	json_decref(r);
	ok(cl_closed(&c, 5), "timeouts: and the connection is closed");
	cl_close(&c);
	n = stat_int(d.sock, "connections.read_timeouts");
	ok(n == 1, "timeouts: stats connections.read_timeouts == 1 (%lld)", n);
	msgpack_sbuffer_destroy(&sb);
	ok(stop(&d) == 0, "timeouts: the daemon stops cleanly");
}

int
main(int argc, char **argv)
{
	struct daemon_t d;
	char extra[1024];

	if (argc != 3)
		return 2;
	if (access(argv[2], R_OK) != 0)
		skip_all("test models not built (../shared absent)");
	harness_init(argv[1]);
	rig = realpath(argv[2], NULL);
	snprintf(extra, sizeof(extra), "model: %s\nbatch: 4\nlimits: {max_request_bytes: 2097152}\n", rig);
	if (ok(start(&d, "lim", extra) == 0, "guardd starts (2 MB requests, other limits by default)")) {
		test_framing(&d);
		test_half_close(&d);
		test_duplicate_keys(&d);
		test_flood(&d);
		long long restarts = stat_int(d.sock, "process.restarts");
		ok(restarts == 0, "the inference process never crashed (process.restarts %lld)", restarts);
		ok(stop(&d) == 0, "guardd stops cleanly");
	}
	test_timeouts();
	harness_done();
	return done_testing();
}
