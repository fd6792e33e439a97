/* vision_int.h - the vision tower's entry point below mllama_encode (no struct ctx: the
 * benchmark builds a tower of the 11B shape in memory) and its blocked attention. */
#ifndef GUARDD_VISION_INT_H
#define GUARDD_VISION_INT_H

#include <stdint.h>

#include "core/mllama.h"
#include "util/err.h"

struct mllama;
struct pool;

/* mllama_encode on the tower M, projecting to n_embd, on pool's threads. */
struct mllama_image *vision_encode(const struct mllama *M, int n_embd, struct pool *pool,
    const float *pixels, int aspect_ratio_id, int num_tiles, mllama_stage_fn stage, void *arg,
    struct err *e);

#endif
