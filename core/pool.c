/* pool.c - worker threads for the kernels: spin briefly for the next job, then sleep, so the
 * threads do not steal cores from OpenBLAS between our own parallel sections. */
#include "core/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_ROUNDS 20000

struct pool {
	int n;
	pthread_t *th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_uint gen;	/* bumped for each job */
	atomic_int pending;	/* workers still running the current job */
	atomic_int stop;
	pool_fn fn;
	void *arg;
};

struct start {
	struct pool *p;
	int ith;
};

static void *
worker(void *a)
{
	struct start *s = a;
	struct pool *p = s->p;
	int ith = s->ith;
	unsigned seen = 0;

	free(s);
	for (;;) {
		unsigned g;
		int spins = 0;
		while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop)) {
			if (++spins < SPIN_ROUNDS)
				continue;
			pthread_mutex_lock(&p->mu);
			while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
				pthread_cond_wait(&p->cv, &p->mu);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->stop))
			return NULL;
		seen = g;
		p->fn(p->arg, ith, p->n);
		atomic_fetch_sub(&p->pending, 1);
	}
}

int
pool_default_threads(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

struct pool *
pool_new(int n)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	if (n < 1)
		n = 1;
	p->n = n;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->th = calloc((size_t)n, sizeof(*p->th));
	if (p->th == NULL) {
		free(p);
		return NULL;
	}
	for (int i = 1; i < n; i++) {
		struct start *s = malloc(sizeof(*s));
		if (s != NULL) {
			s->p = p;
			s->ith = i;
		}
		if (s == NULL || pthread_create(&p->th[i], NULL, worker, s) != 0) {
			free(s);
			p->n = i;
			break;
		}
	}
	return p;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, 1);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->th);
	free(p);
}

void
pool_run(struct pool *p, pool_fn fn, void *arg)
{
	if (p == NULL || p->n == 1) {
		fn(arg, 0, 1);
		return;
	}
	p->fn = fn;
	p->arg = arg;
	atomic_store(&p->pending, p->n - 1);
	pthread_mutex_lock(&p->mu);
	atomic_fetch_add(&p->gen, 1);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	fn(arg, 0, p->n);
	while (atomic_load(&p->pending) > 0)
		sched_yield();
}

int pool_size(const struct pool *p) { return p ? p->n : 1; }
