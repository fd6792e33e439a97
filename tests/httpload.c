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
	double *lat;
	int done, errors;
};

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
		double t0 = now();
		if (use_http) {
			if (send(fd, http_req, http_req_len, MSG_NOSIGNAL) != (ssize_t)http_req_len ||
			    http_answer(fd, buf, 1 << 20) == -1) {
				c->errors += per - i;
				break;
			}
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
			for (;;) {
				if (msgpack_unpacker_next(&up, &res) == MSGPACK_UNPACK_SUCCESS)
					break;
				msgpack_unpacker_reserve_buffer(&up, 65536);
				ssize_t n = recv(fd, msgpack_unpacker_buffer(&up), 65536, 0);
				if (n <= 0) {
					c->errors += per - i;
					goto out;
				}
				msgpack_unpacker_buffer_consumed(&up, (size_t)n);
			}
		}
		c->lat[c->done++] = (now() - t0) * 1e3;
	}
out:
	msgpack_unpacked_destroy(&res);
	msgpack_unpacker_destroy(&up);
	close(fd);
	free(buf);
	return NULL;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* one path's run; fills p50 and mean, returns requests/s (-1 on errors) */
static double
bench(int http, int n, double *p50, double *mean)
{
	struct client *c = calloc((size_t)n, sizeof(*c));
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	double *all = calloc((size_t)(n * per) + 1, sizeof(double)), sum = 0;
	int k = 0, errors = 0;

	use_http = http;
	double t0 = now();
	for (int i = 0; i < n; i++) {
		c[i].lat = calloc((size_t)per, sizeof(double));
		pthread_create(&th[i], NULL, run, &c[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		memcpy(all + k, c[i].lat, (size_t)c[i].done * sizeof(double));
		k += c[i].done;
		errors += c[i].errors;
		free(c[i].lat);
	}
	double el = now() - t0;
	qsort(all, (size_t)k, sizeof(double), cmp);
	for (int i = 0; i < k; i++)
		sum += all[i];
	*p50 = k ? all[k / 2] : 0;
	*mean = k ? sum / k : 0;
	printf("%-8s %2d clients: %4d requests in %6.2f s: %8.1f requests/s, latency p50 %7.3f ms, "
	    "mean %7.3f ms%s\n", http ? "http" : "msgpack", n, k, el, k / el, *p50, *mean,
	    errors ? " (errors!)" : "");
	free(all);
	free(c);
	free(th);
	return errors ? -1 : k / el;
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
	double mp50, mmean, hp50, hmean, p, q;
	/* a warm-up of each, then the measured runs */
	per = per < 5 ? per : 5;
	p = bench(0, 1, &mp50, &mmean);
	q = bench(1, 1, &hp50, &hmean);
	per = atoi(argv[4]);
	p = bench(0, n, &mp50, &mmean);
	q = bench(1, n, &hp50, &hmean);
	printf("HTTP overhead per request: p50 %+.3f ms, mean %+.3f ms; throughput %.1f%% of "
	    "msgpack's\n", hp50 - mp50, hmean - mmean, p > 0 && q > 0 ? 100 * q / p : 0.0);
	free(http_req);
	return p < 0 || q < 0 ? 1 : 0;
}
