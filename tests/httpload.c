/* httpload.c - the HTTP front's cost per moderation request (tests/bench_http.sh): the same
 * text classified through the msgpack socket (classify op) and through POST /v1/moderations
 * on an HTTP Unix socket (keep-alive), by C clients each sending requests one after another,
 * both paths in turn. Prints requests/s, latency p50/mean per path and the difference.
 * Figures only: nothing here asserts a time.
 *   httpload MSGPACK_SOCKET HTTP_SOCKET CLIENTS REQUESTS_PER_CLIENT MESSAGE */
#include <jansson.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mpclient.h"

static const char *mp_sock, *http_sock, *msg;
static int per, use_http;
static char *http_req;
static size_t http_req_len;

struct client {
	double *lat;		/* per request, ms */
	double *front;		/* the same minus the verdict's timings.total: all but the model */
	int done, errors;
};

/* timings.total of a verdict in a msgpack answer {id, ok, verdict: {..., timings: {total}}} */
static double
mp_total(const msgpack_object *o)
{
	for (int depth = 0; depth < 2; depth++) {
		const char *want = depth ? "timings" : "verdict";
		const msgpack_object *next = NULL;
		if (o->type != MSGPACK_OBJECT_MAP)
			return -1;
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(want) &&
			    memcmp(kv->key.via.str.ptr, want, strlen(want)) == 0)
				next = &kv->val;
		}
		if (next == NULL)
			return -1;
		o = next;
	}
	for (uint32_t i = 0; o->type == MSGPACK_OBJECT_MAP && i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 5 &&
		    memcmp(kv->key.via.str.ptr, "total", 5) == 0 &&
		    kv->val.type == MSGPACK_OBJECT_FLOAT64)
			return kv->val.via.f64;
	}
	return -1;
}

/* the same in an HTTP answer's JSON text: the first "total" (one input, one verdict) */
static double
http_total(const char *body)
{
	const char *t = strstr(body, "\"total\":");

	return t ? strtod(t + 8, NULL) : -1;
}

/* one HTTP answer on fd (Content-Length framed); 0, or -1 on a broken or non-200 answer */
static int
http_answer(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	char *end = NULL;

	while (end == NULL) {
		ssize_t n = recv(fd, buf + have, cap - have - 1, 0);
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end == NULL && have + 1 >= cap)
			return -1;
	}
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
		return -1;
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl == NULL || cl > end)
		return -1;
	size_t want = (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10);
	if (want >= cap)
		return -1;
	while (have < want) {
		ssize_t n = recv(fd, buf + have, want - have, 0);
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return 0;
}

static void *
run(void *arg)
{
	struct client *c = arg;
	int fd = try_connect(use_http ? http_sock : mp_sock);
	msgpack_unpacker up;
	msgpack_unpacked res;
	char *buf = malloc(1 << 20);

	if (fd == -1 || buf == NULL) {
		c->errors = per;
		free(buf);
		return NULL;
	}
	msgpack_unpacker_init(&up, 65536);
	msgpack_unpacked_init(&res);
	for (int i = 0; i < per; i++) {
		double t0 = now(), model_ms;
		if (use_http) {
			if (send(fd, http_req, http_req_len, MSG_NOSIGNAL) != (ssize_t)http_req_len ||
			    http_answer(fd, buf, 1 << 20) == -1) {
				c->errors += per - i;
				break;
			}
			model_ms = http_total(strstr(buf, "\r\n\r\n"));
		} else {
			msgpack_sbuffer sb;
			msgpack_sbuffer_init(&sb);
			pack_classify(&sb, i, msg, 0);
			ssize_t w = send(fd, sb.data, sb.size, MSG_NOSIGNAL);
			int bad = w != (ssize_t)sb.size;
			msgpack_sbuffer_destroy(&sb);
			if (bad) {
				c->errors += per - i;
				break;
			}
			if (recv_object(fd, &up, &res) != NULL) {
				c->errors += per - i;
				goto out;
			}
			model_ms = mp_total(&res.data);
		}
		c->lat[c->done] = (now() - t0) * 1e3;
		c->front[c->done] = c->lat[c->done] - model_ms;
		c->done++;
	}
out:
	msgpack_unpacked_destroy(&res);
	msgpack_unpacker_destroy(&up);
	close(fd);
	free(buf);
	return NULL;
}

/* all the latencies of one path over the rounds, and the time its runs took */
struct path {
	double *lat, *front;
	int n, errors;
	double secs;
};

/* one round of one path: n clients, per requests each */
static void
round_of(int http, int n, struct path *p)
{
	struct client *c = calloc((size_t)n, sizeof(*c));
	pthread_t *th = calloc((size_t)n, sizeof(*th));

	use_http = http;
	double t0 = now();
	for (int i = 0; i < n; i++) {
		c[i].lat = calloc((size_t)per, sizeof(double));
		c[i].front = calloc((size_t)per, sizeof(double));
		pthread_create(&th[i], NULL, run, &c[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		memcpy(p->lat + p->n, c[i].lat, (size_t)c[i].done * sizeof(double));
		memcpy(p->front + p->n, c[i].front, (size_t)c[i].done * sizeof(double));
		p->n += c[i].done;
		p->errors += c[i].errors;
		free(c[i].lat);
		free(c[i].front);
	}
	p->secs += now() - t0;
	free(c);
	free(th);
}

static void
report(const char *name, int clients, struct path *p, double *p50, double *mean,
    double *f50)
{
	double sum = 0;

	qsort(p->lat, (size_t)p->n, sizeof(double), cmp_double);
	qsort(p->front, (size_t)p->n, sizeof(double), cmp_double);
	*f50 = p->n ? p->front[p->n / 2] : 0;
	for (int i = 0; i < p->n; i++)
		sum += p->lat[i];
	*p50 = p->n ? p->lat[p->n / 2] : 0;
	*mean = p->n ? sum / p->n : 0;
	printf("%-8s %2d clients: %5d requests in %6.2f s: %8.1f requests/s, latency p50 %7.3f ms, "
	    "mean %7.3f ms, p99 %7.3f ms; outside the model p50 %6.3f ms%s\n", name, clients, p->n,
	    p->secs, p->n / p->secs, *p50, *mean, p->n ? p->lat[(int)(0.99 * (p->n - 1) + 0.5)] :
	    0.0, *f50, p->errors ? " (errors!)" : "");
}

int
main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: httpload msgpack-socket http-socket clients "
		    "requests-per-client message\n");
		return 2;
	}
	mp_sock = argv[1];
	http_sock = argv[2];
	int n = atoi(argv[3]);
	per = atoi(argv[4]);
	msg = argv[5];
	json_t *b = json_pack("{s:s}", "input", msg);
	char *body = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	if (n < 1 || per < 1 || body == NULL)
		return 2;
	size_t cap = strlen(body) + 256;
	http_req = malloc(cap);
	http_req_len = (size_t)snprintf(http_req, cap, "POST /v1/moderations HTTP/1.1\r\n"
	    "Host: localhost\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(body), body);
	free(body);
	/* the two paths in alternating rounds, so the machine's drift hits both alike; a
	 * warm-up round of each first */
	int rounds = 10, total = per;
	per = total / rounds > 0 ? total / rounds : 1;
	size_t all = (size_t)(n * per * (rounds + 1));
	struct path mp = { calloc(all, sizeof(double)), calloc(all, sizeof(double)), 0, 0, 0 };
	struct path hp = { calloc(all, sizeof(double)), calloc(all, sizeof(double)), 0, 0, 0 };
	round_of(0, n, &mp);
	round_of(1, n, &hp);
	mp.n = hp.n = 0;
	mp.secs = hp.secs = 0;
	for (int r = 0; r < rounds; r++) {
		round_of(r & 1, n, r & 1 ? &hp : &mp);
		round_of(!(r & 1), n, r & 1 ? &mp : &hp);
	}
	double mp50, mmean, mf50, hp50, hmean, hf50;
	report("msgpack", n, &mp, &mp50, &mmean, &mf50);
	report("http", n, &hp, &hp50, &hmean, &hf50);
	printf("HTTP overhead per request: p50 %+.3f ms, mean %+.3f ms, outside the model (latency "
	    "minus the verdict's timings.total) p50 %+.3f ms; throughput %.1f%% of msgpack's\n",
	    hp50 - mp50, hmean - mmean, hf50 - mf50, 100 * (hp.n / hp.secs) / (mp.n / mp.secs));
	int bad = mp.errors || hp.errors;
	free(mp.lat);
	free(hp.lat);
	free(mp.front);
	free(hp.front);
	free(http_req);
	return bad;
}
