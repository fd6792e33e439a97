/* loadgen.c - load on guardd for `make bench`: C clients, each sending R classify requests
 * one after another on its own connection; prints requests/s and latency percentiles.
 * Figures only: nothing here asserts a time.
 *   loadgen SOCKET CLIENTS REQUESTS_PER_CLIENT MESSAGE
 * With --soak, the soak test of tests/soakgen.h (make soak; a small one in make check):
 *   loadgen --soak SOCKET CLIENTS REQUESTS_PER_CLIENT HOSTILE_CLIENTS */
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mpclient.h"
#include "soakgen.h"

static const char *sock, *msg;
static int per;

struct client {
	double *lat;
	int done, errors;
};

static void *
run(void *arg)
{
	struct client *c = arg;
	int fd = try_connect(sock);
	msgpack_unpacker up;
	msgpack_unpacked res;

	if (fd == -1) {
		c->errors = per;
		return NULL;
	}
	msgpack_unpacker_init(&up, 65536);
	msgpack_unpacked_init(&res);
	for (int i = 0; i < per; i++) {
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		pack_classify(&sb, i, msg, 0);
		double t0 = now();
		if (send(fd, sb.data, sb.size, MSG_NOSIGNAL) != (ssize_t)sb.size)
			c->errors++;
		msgpack_sbuffer_destroy(&sb);
		if (recv_object(fd, &up, &res) != NULL) {
			c->errors += per - i;
			goto out;
		}
		c->lat[c->done++] = (now() - t0) * 1e3;
	}
out:
	msgpack_unpacked_destroy(&res);
	msgpack_unpacker_destroy(&up);
	close(fd);
	return NULL;
}

int
main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "--soak") == 0)
		return soak_main(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	if (argc != 5) {
		fprintf(stderr, "usage: loadgen socket clients requests-per-client message\n"
		    "       loadgen --soak socket clients requests-per-client hostile-clients\n");
		return 2;
	}
	sock = argv[1];
	int n = atoi(argv[2]);
	per = atoi(argv[3]);
	msg = argv[4];
	struct client *c = calloc((size_t)n, sizeof(*c));
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	double t0 = now();
	for (int i = 0; i < n; i++) {
		c[i].lat = calloc((size_t)per, sizeof(double));
		pthread_create(&th[i], NULL, run, &c[i]);
	}
	double *all = calloc((size_t)(n * per), sizeof(double));
	int k = 0, errors = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		memcpy(all + k, c[i].lat, (size_t)c[i].done * sizeof(double));
		k += c[i].done;
		errors += c[i].errors;
	}
	double el = now() - t0;
	qsort(all, (size_t)k, sizeof(double), cmp_double);
	printf("%2d clients: %3d requests in %6.2f s: %6.2f requests/s, latency p50 %7.1f ms, p99 %7.1f ms%s\n",
	    n, k, el, k / el, k ? all[k / 2] : 0.0, k ? all[(int)(0.99 * (k - 1) + 0.5)] : 0.0,
	    errors ? " (errors!)" : "");
	return errors ? 1 : 0;
}
