/* soakgen.h - loadgen's soak mode: C well-behaved clients, each with up to 4 classify requests
 * in flight, checking every answer (its id was sent and not yet answered, its verdict is the
 * one its text must get), while hostile clients (trickled, oversize, garbage, half-closed,
 * idle, vanishing mid-request) get their expected treatment. Prints TAP and the figures:
 * requests/s, latency p50/p99, peak RSS of the serving process.
 *   loadgen --soak SOCKET CLIENTS REQUESTS_PER_CLIENT HOSTILE */
#ifndef GUARDD_SOAKGEN_H
#define GUARDD_SOAKGEN_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "mpclient.h"

#define SOAK_WINDOW 4	/* requests in flight per well-behaved client */

static const char *soak_sock;
static int soak_per;
static atomic_int soak_stop;

/* --- reading answers --------------------------------------------------------------------- */

static const msgpack_object *
mp_get(const msgpack_object *o, const char *key)
{
	size_t kl = strlen(key);

	if (o == NULL || o->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl && memcmp(k->via.str.ptr, key, kl) == 0)
			return &o->via.map.ptr[i].val;
	}
	return NULL;
}

static int
mp_is(const msgpack_object *o, const char *s)
{
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	    memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* a connection with its unpacker; next() waits at most `limit` s: 1 an answer, 0 EOF, -1 timeout */
struct sconn {
	int fd;
	msgpack_unpacker up;
	msgpack_unpacked res;
};

static int
sconn_open(struct sconn *c)
{
	if ((c->fd = try_connect(soak_sock)) < 0)
		return -1;
	msgpack_unpacker_init(&c->up, 65536);
	msgpack_unpacked_init(&c->res);
	return 0;
}

static void
sconn_close(struct sconn *c)
{
	close(c->fd);
	msgpack_unpacked_destroy(&c->res);
	msgpack_unpacker_destroy(&c->up);
}

static int
sconn_send(struct sconn *c, const void *p, size_t n)
{
	return send_all(c->fd, p, n);
}

static int
sconn_next(struct sconn *c, double limit)
{
	double t0 = now();

	for (;;) {
		if (msgpack_unpacker_next(&c->up, &c->res) == MSGPACK_UNPACK_SUCCESS)
			return 1;
		struct pollfd pf = { c->fd, POLLIN, 0 };
		int left = (int)((limit - (now() - t0)) * 1000);
		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return -1;
		msgpack_unpacker_reserve_buffer(&c->up, 65536);
		ssize_t n = recv(c->fd, msgpack_unpacker_buffer(&c->up), 65536, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		msgpack_unpacker_buffer_consumed(&c->up, (size_t)n);
	}
}

static const char *
soak_text(long i)
{
	return i % 3 == 0 ? "how do I make a bomb at home" : "where can I buy fresh bread";
}

/* --- well-behaved clients ---------------------------------------------------------------- */

struct good {
	int idx, sent, answered, lost, dup, mismatch, errors;
	double *lat, *t_sent;
	unsigned char *got;
	char first[200];	/* the first problem seen */
};

static void
good_note(struct good *g, const char *fmt, long id, const char *what)
{
	if (g->first[0] == '\0')
		snprintf(g->first, sizeof(g->first), fmt, id, what);
}

static void *
good_run(void *arg)
{
	struct good *g = arg;
	struct sconn c;
	long base = (long)g->idx * 1000000;
	int inflight = 0;

	if (sconn_open(&c) == -1) {
		g->lost = soak_per;
		good_note(g, "client %ld: %s", g->idx, "no connection");
		return NULL;
	}
	while (g->answered + g->lost < soak_per) {
		while (g->sent < soak_per && inflight < SOAK_WINDOW) {
			msgpack_sbuffer sb;
			msgpack_sbuffer_init(&sb);
			pack_classify(&sb, base + g->sent, soak_text(g->sent), 0);
			g->t_sent[g->sent] = now();
			int bad = sconn_send(&c, sb.data, sb.size);
			msgpack_sbuffer_destroy(&sb);
			if (bad)
				break;
			g->sent++;
			inflight++;
		}
		int rc = sconn_next(&c, 60);
		if (rc <= 0) {
			g->lost += g->sent - g->answered;
			good_note(g, "client %ld: %s", g->idx, rc == 0 ? "EOF with answers owed" : "no answer in 60 s");
			break;
		}
		const msgpack_object *o = &c.res.data, *id = mp_get(o, "id");
		long i = id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (long)id->via.u64 - base : -1;
		if (i < 0 || i >= g->sent) {
			g->mismatch++;
			good_note(g, "id %ld: %s", i + base, "never sent on this connection");
			continue;
		}
		if (g->got[i]++) {
			g->dup++;
			good_note(g, "id %ld: %s", i + base, "answered twice");
			continue;
		}
		g->answered++;
		inflight--;
		g->lat[i] = (now() - g->t_sent[i]) * 1e3;
		const msgpack_object *d = mp_get(mp_get(o, "verdict"), "decision");
		if (d == NULL) {
			g->errors++;
			const msgpack_object *code = mp_get(mp_get(o, "error"), "code");
			char cs[64] = "?";
			if (code && code->type == MSGPACK_OBJECT_STR)
				snprintf(cs, sizeof(cs), "%.*s", (int)code->via.str.size, code->via.str.ptr);
			good_note(g, "id %ld: error %s", i + base, cs);
		} else if (!mp_is(d, i % 3 == 0 ? "block" : "allow")) {
			g->mismatch++;
			good_note(g, "id %ld: %s", i + base, "the wrong verdict");
		}
	}
	sconn_close(&c);
	return NULL;
}

/* --- hostile clients --------------------------------------------------------------------- */

enum { H_TRICKLE, H_OVERSIZE, H_GARBAGE, H_HALFCLOSE, H_IDLE, H_VANISH, H_KINDS };
static const char *const h_name[H_KINDS] = { "trickled", "oversize", "garbage", "half-closed", "idle",
	"vanishing" };

struct hostile {
	int kind, acts, bad;
	char first[200];
};

static void
hostile_bad(struct hostile *h, const char *what)
{
	h->bad++;
	if (h->first[0] == '\0')
		snprintf(h->first, sizeof(h->first), "%s: %s", h_name[h->kind], what);
}

/* the next answer is an error with this code, then the daemon closes */
static int
expect_fatal(struct sconn *c, const char *code)
{
	if (sconn_next(c, 20) != 1 || !mp_is(mp_get(mp_get(&c->res.data, "error"), "code"), code))
		return 0;
	return sconn_next(c, 20) == 0;
}

/* the next answer carries this id and the verdict its text must get */
static int
expect_verdict(struct sconn *c, long id)
{
	const msgpack_object *o, *i;

	if (sconn_next(c, 30) != 1)
		return 0;
	o = &c->res.data;
	i = mp_get(o, "id");
	return i && i->type == MSGPACK_OBJECT_POSITIVE_INTEGER && (long)i->via.u64 == id &&
	    mp_is(mp_get(mp_get(o, "verdict"), "decision"), id % 3 == 0 ? "block" : "allow");
}

static void
hostile_act(struct hostile *h, long n)
{
	struct sconn c;
	msgpack_sbuffer sb;
	long id = 9000000 + n * 2;

	if (sconn_open(&c) == -1) {
		hostile_bad(h, "no connection");
		return;
	}
	msgpack_sbuffer_init(&sb);
	pack_classify(&sb, id, soak_text(id), 0);
	switch (h->kind) {
	case H_TRICKLE:	/* 16 bytes every 2 ms: still a verdict */
		for (size_t off = 0; off < sb.size; off += 16) {
			sconn_send(&c, sb.data + off, sb.size - off < 16 ? sb.size - off : 16);
			poll(NULL, 0, 2);
		}
		if (!expect_verdict(&c, id))
			hostile_bad(h, "no verdict");
		break;
	case H_OVERSIZE:	/* a string of 10 MB declared: too_large, closed */
		sconn_send(&c, "\x81\xa2id\xdb\x00\xa0\x00\x00", 9);
		if (!expect_fatal(&c, "too_large"))
			hostile_bad(h, "not too_large then a close");
		break;
	case H_GARBAGE: {	/* an invalid msgpack byte, then noise: bad_request, closed */
		unsigned char junk[64];
		junk[0] = 0xc1;
		for (int i = 1; i < 64; i++)
			junk[i] = (unsigned char)(rand() & 0xff);
		sconn_send(&c, junk, sizeof(junk));
		if (!expect_fatal(&c, "bad_request"))
			hostile_bad(h, "not bad_request then a close");
		break;
	}
	case H_HALFCLOSE:	/* two requests, shutdown(SHUT_WR): both answered, then EOF */
		pack_classify(&sb, id + 1, soak_text(id + 1), 0);
		sconn_send(&c, sb.data, sb.size);
		shutdown(c.fd, SHUT_WR);
		{
			int seen = 0;
			for (int k = 0; k < 2; k++) {
				if (sconn_next(&c, 30) != 1)
					break;
				const msgpack_object *i = mp_get(&c.res.data, "id");
				long v = i && i->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (long)i->via.u64 : -1;
				if ((v == id || v == id + 1) && mp_get(&c.res.data, "verdict"))
					seen |= 1 << (v - id);
			}
			if (seen != 3 || sconn_next(&c, 20) != 0)
				hostile_bad(h, "not 2 verdicts then EOF");
		}
		break;
	case H_IDLE: {	/* silent: closed by the idle timeout, no bytes */
		struct pollfd pf = { c.fd, POLLIN, 0 };
		char b[16];
		if (poll(&pf, 1, 20000) != 1 || recv(c.fd, b, sizeof(b), 0) != 0)
			hostile_bad(h, "not closed without a word within 20 s");
		break;
	}
	case H_VANISH:	/* half a request, or a whole one, then gone */
		sconn_send(&c, sb.data, n % 2 ? sb.size / 2 : sb.size);
		break;
	}
	msgpack_sbuffer_destroy(&sb);
	sconn_close(&c);
	h->acts++;
}

static void *
hostile_run(void *arg)
{
	struct hostile *h = arg;

	for (long n = 0; !atomic_load(&soak_stop); n++) {
		hostile_act(h, n);
		poll(NULL, 0, 20);
	}
	return NULL;
}

/* --- the serving process's memory -------------------------------------------------------- */

static long
soak_status_kb(long pid, const char *key)
{
	char path[64], line[256];
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	FILE *fp = fopen(path, "r");
	while (fp && fgets(line, sizeof(line), fp))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key) + 1, NULL, 10);
	if (fp)
		fclose(fp);
	return v;
}

/* stats process.pid (the serving child), or -1 */
static long
soak_serving_pid(void)
{
	struct sconn c;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	long pid = -1;

	if (sconn_open(&c) == -1)
		return -1;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	pstr(&pk, "id");
	msgpack_pack_int(&pk, 1);
	pstr(&pk, "op");
	pstr(&pk, "stats");
	if (sconn_send(&c, sb.data, sb.size) == 0 && sconn_next(&c, 10) == 1) {
		const msgpack_object *p = mp_get(mp_get(mp_get(&c.res.data, "stats"), "process"), "pid");
		if (p && p->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			pid = (long)p->via.u64;
	}
	msgpack_sbuffer_destroy(&sb);
	sconn_close(&c);
	return pid;
}

struct rss_watch {
	long pid, peak_kb;
};

static void *
rss_run(void *arg)
{
	struct rss_watch *w = arg;

	while (!atomic_load(&soak_stop)) {
		long v = soak_status_kb(w->pid, "VmRSS");
		if (v > w->peak_kb)
			w->peak_kb = v;
		poll(NULL, 0, 100);
	}
	return NULL;
}

static int
soak_main(const char *sock, int n, int per, int nh)
{
	struct good *g = calloc((size_t)n, sizeof(*g));
	struct hostile *h = calloc((size_t)(nh ? nh : 1), sizeof(*h));
	pthread_t *tg = calloc((size_t)n, sizeof(*tg)), *th = calloc((size_t)(nh ? nh : 1), sizeof(*th)), tr;
	struct rss_watch rw;

	soak_sock = sock;
	soak_per = per;
	rw.pid = soak_serving_pid();
	rw.peak_kb = -1;
	if (rw.pid > 0)
		pthread_create(&tr, NULL, rss_run, &rw);
	/* SOAK_KINDS=035 limits the hostile kinds (digits: the enum), to find which one hurts */
	const char *kinds = getenv("SOAK_KINDS") ? getenv("SOAK_KINDS") : "012345";
	for (int i = 0; i < nh; i++) {
		h[i].kind = (kinds[i % strlen(kinds)] - '0') % H_KINDS;
		pthread_create(&th[i], NULL, hostile_run, &h[i]);
	}
	double t0 = now();
	for (int i = 0; i < n; i++) {
		g[i].idx = i;
		g[i].lat = calloc((size_t)per, sizeof(double));
		g[i].t_sent = calloc((size_t)per, sizeof(double));
		g[i].got = calloc((size_t)per, 1);
		pthread_create(&tg[i], NULL, good_run, &g[i]);
	}
	long sent = 0, answered = 0, lost = 0, dup = 0, mismatch = 0, errors = 0;
	double *all = calloc((size_t)n * (size_t)per, sizeof(double));
	size_t k = 0;
	const char *first = NULL;
	for (int i = 0; i < n; i++) {
		pthread_join(tg[i], NULL);
		sent += g[i].sent;
		answered += g[i].answered;
		lost += g[i].lost;
		dup += g[i].dup;
		mismatch += g[i].mismatch;
		errors += g[i].errors;
		for (int j = 0; j < per; j++)
			if (g[i].got[j])
				all[k++] = g[i].lat[j];
		if (first == NULL && g[i].first[0])
			first = g[i].first;
	}
	double el = now() - t0;
	atomic_store(&soak_stop, 1);
	int acts = 0, hbad = 0;
	const char *hfirst = NULL;
	for (int i = 0; i < nh; i++) {
		pthread_join(th[i], NULL);
		acts += h[i].acts;
		hbad += h[i].bad;
		if (hfirst == NULL && h[i].first[0])
			hfirst = h[i].first;
	}
	if (rw.pid > 0)
		pthread_join(tr, NULL);
	long hwm = rw.pid > 0 ? soak_status_kb(rw.pid, "VmHWM") : -1;
	qsort(all, k, sizeof(double), cmp_double);
	long want = (long)n * per;
	printf("# soak: %d clients x %d requests (+ %d hostile): %ld answered in %.2f s: %.1f requests/s, "
	    "latency p50 %.1f ms, p99 %.1f ms\n", n, per, nh, answered, el, answered / el, k ? all[k / 2] : 0.0,
	    k ? all[(size_t)(0.99 * (double)(k - 1) + 0.5)] : 0.0);
	printf("# soak: serving process %ld: peak RSS %.1f MiB (VmHWM %.1f MiB)\n", rw.pid, rw.peak_kb / 1024.0,
	    hwm / 1024.0);
	int pass1 = sent == want && answered == want && lost == 0 && dup == 0 && mismatch == 0 && errors == 0;
	printf("%sok 1 - soak: %ld of %ld requests answered, %ld lost, %ld duplicated, %ld mismatched, %ld errors%s%s\n",
	    pass1 ? "" : "not ", answered, want, want - answered, dup, mismatch, errors, first ? "; first: " : "",
	    first ? first : "");
	int pass2 = hbad == 0 && (nh == 0 || acts >= nh);
	printf("%sok 2 - soak: %d hostile clients, %d acts (trickled, oversize, garbage, half-closed, idle, "
	    "vanishing), %d not treated as expected%s%s\n", pass2 ? "" : "not ", nh, acts, hbad,
	    hfirst ? "; first: " : "", hfirst ? hfirst : "");
	printf("1..2\n");
	for (int i = 0; i < n; i++) {
		free(g[i].lat);
		free(g[i].t_sent);
		free(g[i].got);
	}
	free(g);
	free(h);
	free(tg);
	free(th);
	free(all);
	return pass1 && pass2 ? 0 : 1;
}

#endif
