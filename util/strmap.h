/* strmap.h - open-addressing hash maps used by the tokenizers: bytes -> id, id pair -> merge. */
#ifndef GUARDD_STRMAP_H
#define GUARDD_STRMAP_H

#include <stddef.h>
#include <stdint.h>

/* Keys are borrowed (pointer + length) and must outlive the map. */
struct strmap {
	struct strmap_slot {
		const char *key;
		uint32_t len;
		int32_t val;
	} *slots;
	size_t cap, n;
};

int strmap_init(struct strmap *m, size_t expect);
void strmap_free(struct strmap *m);
/* Inserts or replaces. Returns -1 on allocation failure. */
int strmap_put(struct strmap *m, const char *key, size_t len, int32_t val);
/* Returns the value or -1 when absent. */
int32_t strmap_get(const struct strmap *m, const char *key, size_t len);

/* Slots visited by all strmap lookups and inserts so far, process-wide (tests check that
 * lookups stay O(1) on real key sets). */
unsigned long long strmap_probes(void);

struct pairmap {
	struct pairmap_slot {
		uint64_t key;	/* (left << 32 | right) + 1; 0 marks empty */
		int32_t rank, result;
	} *slots;
	size_t cap, n;
};

int pairmap_init(struct pairmap *m, size_t expect);
void pairmap_free(struct pairmap *m);
/* Keeps the first (lowest-rank) entry for a pair. */
int pairmap_put(struct pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t result);
/* Returns 1 and fills rank/result when the pair merges. */
int pairmap_get(const struct pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *result);

#endif
