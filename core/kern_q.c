/* kern_q.c - which SIMD kernel runs quantized weights. None is written yet: every type runs
 * quant_matmul_generic (core/quant.c). */
#include "core/kern.h"

#include <stddef.h>

kern_q_fn
kern_q_pick(int type)
{
	(void)type;
	return NULL;
}

kern_qact_fn
kern_qact_pick(void)
{
	return NULL;
}
