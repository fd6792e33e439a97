/* kern_q.c - which SIMD kernel runs quantized weights: AVX-512 VNNI where the CPU has it
 * and GUARD_KERNELS allows AVX-512, else AVX2, else none (quant_matmul_generic runs). A CPU
 * with AVX-512 but no VNNI (Skylake-SP) runs the AVX2 family. */
#include "core/kern.h"

#include <stddef.h>

#include "core/kern_q_int.h"

kern_q_fn
kern_q_pick(int type)
{
	struct qp_type t;

	if (!qp_type_get(type, 0, &t))
		return NULL;
#if defined(__x86_64__) && defined(__GNUC__)
	if (kern_cpu_vnni())
		return kern_q_vnni;
	if (kern_set() >= KERN_AVX2)
		return kern_q_avx2;
#endif
	return NULL;
}

kern_qact_fn
kern_qact_pick(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (kern_set() >= KERN_AVX512)
		return kern_qact_avx512;
	if (kern_set() >= KERN_AVX2)
		return kern_qact_avx2;
#endif
	return NULL;
}
