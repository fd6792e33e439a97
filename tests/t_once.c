/* t_once.c - the process-wide tables built on first use (byte-level decoding, the kernel
 * family, the hash seed) are built once even when many threads arrive together. Run under
 * ThreadSanitizer (tests/run/10-tokenizer.t builds it so) a racy lazy init is reported and
 * fails the run; plain, it checks every thread saw the same results. */
#include <pthread.h>

#include "core/kern.h"
#include "core/tok_int.h"
#include "util/strmap.h"
#include "tap.h"

enum { NT = 8 };
static pthread_barrier_t go;

struct res {
	char text[8];
	size_t n;
	int rc, set;
	int32_t found;
};

static void *
worker(void *arg)
{
	struct res *r = arg;
	struct strmap m;

	pthread_barrier_wait(&go);
	/* "\xc4\xa0" is GPT-2's byte-level spelling of a space */
	r->rc = bytelevel_decode("a\xc4\xa0" "b", 4, r->text, &r->n);
	r->set = (int)kern_set();
	r->found = -2;
	if (strmap_init(&m, 4) == 0) {
		strmap_put(&m, "key", 3, 7);
		r->found = strmap_get(&m, "key", 3);
		strmap_free(&m);
	}
	return NULL;
}

int
main(void)
{
	pthread_t th[NT];
	struct res r[NT];
	int same = 1;

	memset(r, 0, sizeof(r));
	pthread_barrier_init(&go, NULL, NT);
	for (int i = 0; i < NT; i++)
		pthread_create(&th[i], NULL, worker, &r[i]);
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NT; i++)
		same &= r[i].rc == 0 && r[i].n == 3 && memcmp(r[i].text, "a b", 3) == 0 &&
		    r[i].set == r[0].set && r[i].found == 7;
	ok(same, "%d threads starting together: same decoding ('%.3s'), kernel family (%s), "
	    "hash lookups", NT, r[0].text, kern_set_name((enum kern_set)r[0].set));
	pthread_barrier_destroy(&go);
	return done_testing();
}
