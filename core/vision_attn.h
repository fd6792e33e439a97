/* vision_attn.h - the vision tower's bidirectional self-attention over all tiles' tokens,
 * blocked per head (core/vision_attn.c). */
#ifndef GUARDD_VISION_ATTN_H
#define GUARDD_VISION_ATTN_H

#include <stdint.h>

struct pool;
struct vattn;

/* Scratch for T tokens of width D in `heads` heads, on n_threads threads. NULL when out of
 * memory. */
struct vattn *vattn_new(int T, int D, int heads, int n_threads);
void vattn_free(struct vattn *A);
/* att (T, D) = per head softmax(scale q k^T) v, q, k, v (T, D) row-major. A token with
 * valid[i] set sees every token; another sees the valid ones only. Each row's bits are
 * attn_row's (ops.h) on the same keys, whatever the thread count. */
void vattn_run(struct vattn *A, struct pool *pool, const float *q, const float *k,
    const float *v, const uint8_t *valid, float scale, float *att);

#endif
