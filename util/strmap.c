/* strmap.c - the tokenizers' hash maps (linear probing, power-of-two tables). */
#include "util/strmap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Keys come from model files and requests: a per-process random basis keeps anyone from
 * precomputing a set of colliding names that would make every probe walk the whole table. */
static uint64_t seed = 0xcbf29ce484222325ull;
static _Atomic unsigned long long probes;	/* slots visited by every lookup: tests read it */

unsigned long long strmap_probes(void) { return probes; }
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void
seed_init(void)
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&r;
	seed ^= r;
}

static uint64_t
hash_bytes(const char *p, size_t n)
{
	uint64_t h = seed;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	/* FNV's low bits mix poorly (names like "blk.7.x" cluster): finish with murmur3's
	 * avalanche so the table index (the low bits) depends on every input bit */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

/* A zeroed table of *cap slots (a power of two, at least twice expect) for either map, the
 * seed drawn first; NULL when out of memory. */
static void *
table_new(size_t expect, size_t slot_size, size_t *cap)
{
	pthread_once(&seed_once, seed_init);
	*cap = 16;
	while (*cap < expect * 2 + 1)
		*cap <<= 1;
	return calloc(*cap, slot_size);
}

int
strmap_init(struct strmap *m, size_t expect)
{
	m->n = 0;
	m->slots = table_new(expect, sizeof(*m->slots), &m->cap);
	return m->slots ? 0 : -1;
}

void
strmap_free(struct strmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static int
strmap_grow(struct strmap *m)
{
	struct strmap old = *m;

	if (strmap_init(m, old.cap) == -1) {
		*m = old;
		return -1;
	}
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].key != NULL)
			strmap_put(m, old.slots[i].key, old.slots[i].len, old.slots[i].val);
	free(old.slots);
	return 0;
}

int
strmap_put(struct strmap *m, const char *key, size_t len, int32_t val)
{
	if (len > UINT32_MAX)
		return -1;
	if ((m->n + 1) * 2 > m->cap && strmap_grow(m) == -1)
		return -1;
	size_t i = hash_bytes(key, len) & (m->cap - 1), n = 1;
	while (m->slots[i].key != NULL) {
		if (m->slots[i].len == len && memcmp(m->slots[i].key, key, len) == 0) {
			m->slots[i].val = val;
			atomic_fetch_add_explicit(&probes, n, memory_order_relaxed);
			return 0;
		}
		i = (i + 1) & (m->cap - 1);
		n++;
	}
	atomic_fetch_add_explicit(&probes, n, memory_order_relaxed);
	/* an empty key needs a non-NULL pointer to mark the slot used */
	m->slots[i].key = key ? key : "";
	m->slots[i].len = (uint32_t)len;
	m->slots[i].val = val;
	m->n++;
	return 0;
}

int32_t
strmap_get(const struct strmap *m, const char *key, size_t len)
{
	if (m->cap == 0 || len > UINT32_MAX)
		return -1;
	size_t i = hash_bytes(key, len) & (m->cap - 1), n = 1;
	int32_t v = -1;
	while (m->slots[i].key != NULL) {
		if (m->slots[i].len == len && memcmp(m->slots[i].key, key, len) == 0) {
			v = m->slots[i].val;
			break;
		}
		i = (i + 1) & (m->cap - 1);
		n++;
	}
	atomic_fetch_add_explicit(&probes, n, memory_order_relaxed);
	return v;
}

static uint64_t
pair_key(int32_t a, int32_t b)
{
	return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
}

static size_t
pair_slot(uint64_t k, size_t cap)
{
	k ^= seed;
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k & (cap - 1);
}

int
pairmap_init(struct pairmap *m, size_t expect)
{
	m->n = 0;
	m->slots = table_new(expect, sizeof(*m->slots), &m->cap);
	return m->slots ? 0 : -1;
}

void
pairmap_free(struct pairmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

int
pairmap_put(struct pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t result)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct pairmap old = *m;
		if (pairmap_init(m, old.cap) == -1) {
			*m = old;
			return -1;
		}
		for (size_t i = 0; i < old.cap; i++)
			if (old.slots[i].key != 0) {
				size_t j = pair_slot(old.slots[i].key, m->cap);
				while (m->slots[j].key != 0)
					j = (j + 1) & (m->cap - 1);
				m->slots[j] = old.slots[i];
				m->n++;
			}
		free(old.slots);
	}
	uint64_t k = pair_key(a, b);
	size_t i = pair_slot(k, m->cap);
	while (m->slots[i].key != 0) {
		if (m->slots[i].key == k)
			return 0;
		i = (i + 1) & (m->cap - 1);
	}
	m->slots[i].key = k;
	m->slots[i].rank = rank;
	m->slots[i].result = result;
	m->n++;
	return 0;
}

int
pairmap_get(const struct pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *result)
{
	uint64_t k = pair_key(a, b);

	if (m->cap == 0)
		return 0;
	size_t i = pair_slot(k, m->cap);
	while (m->slots[i].key != 0) {
		if (m->slots[i].key == k) {
			*rank = m->slots[i].rank;
			*result = m->slots[i].result;
			return 1;
		}
		i = (i + 1) & (m->cap - 1);
	}
	return 0;
}
