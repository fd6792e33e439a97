/* pool.h - a fixed set of worker threads that run one function in parallel at a time. */
#ifndef GUARDD_POOL_H
#define GUARDD_POOL_H

struct pool;

typedef void (*pool_fn)(void *arg, int ith, int nth);

/* n_threads counts the caller: pool_new(1) starts no threads. NULL on failure. */
struct pool *pool_new(int n_threads);
void pool_free(struct pool *p);
/* Runs fn(arg, i, n) for i in [0, n) with i == 0 on the calling thread; returns when all end. */
void pool_run(struct pool *p, pool_fn fn, void *arg);
int pool_size(const struct pool *p);

/* Threads to use when the caller says 0: the CPUs this process may run on. */
int pool_default_threads(void);

#endif
