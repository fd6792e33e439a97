/* cpu.c - which kernel family runs: what the CPU reports (cpuid) AND the OS has enabled
 * (XGETBV: the register state is saved on context switches), capped by GUARD_KERNELS.
 * Decided once per process (pthread_once), so every thread and call sees the same set. */
#include "core/kern.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

static uint64_t
xgetbv0(void)
{
	uint32_t lo, hi;

	/* plain asm: no target attribute needed, only called when OSXSAVE says it exists */
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static int has_vnni;		/* AVX512_VNNI, found by detect() */

static enum kern_set
detect(void)
{
	unsigned a, b, c, d, max = __get_cpuid_max(0, NULL);
	enum kern_set s = KERN_GENERIC;

	if (max < 7 || !__get_cpuid(1, &a, &b, &c, &d))
		return s;
	int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
	if (!osxsave || !avx)
		return s;
	uint64_t xcr0 = xgetbv0();
	/* XMM|YMM state for AVX; plus opmask, ZMM_Hi256 and Hi16_ZMM for AVX-512 */
	int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6;
	__cpuid_count(7, 0, a, b, c, d);
	int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1,
	    avx512vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
	__cpuid_count(7, 1, a, b, c, d);
	int avx512bf16 = (a >> 5) & 1;
	if (os_avx && avx2 && fma && f16c)
		s = KERN_AVX2;
	if (s == KERN_AVX2 && os_avx512 && avx512f && avx512bw && avx512vl)
		s = KERN_AVX512;
	if (s == KERN_AVX512 && avx512bf16)
		s = KERN_AVX512BF16;
	has_vnni = s >= KERN_AVX512 && vnni;
	return s;
}

#else

static int has_vnni;
static enum kern_set detect(void) { return KERN_GENERIC; }

#endif

static const char *const names[] = { "generic", "avx2", "avx512f", "avx512bf16" };
static enum kern_set cpu_set, active_set;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
init(void)
{
	const char *want = getenv("GUARD_KERNELS");

	cpu_set = active_set = detect();
	if (want == NULL || *want == '\0')
		return;
	for (int i = 0; i <= KERN_AVX512BF16; i++)
		if (strcmp(want, names[i]) == 0 || (i == KERN_AVX512 && strcmp(want, "avx512") == 0)) {
			/* a cap: asking for more than the CPU proves it can run gives what it can */
			if ((enum kern_set)i < active_set)
				active_set = (enum kern_set)i;
			return;
		}
	fprintf(stderr, "GUARD_KERNELS='%s' is not one of generic, avx2, avx512f, avx512bf16: "
	    "ignored\n", want);
}

enum kern_set
kern_cpu_set(void)
{
	pthread_once(&once, init);
	return cpu_set;
}

enum kern_set
kern_set(void)
{
	pthread_once(&once, init);
	return active_set;
}

int
kern_cpu_vnni(void)
{
	pthread_once(&once, init);
	/* the int8 dot products are AVX-512 instructions: only under a cap that allows those */
	return has_vnni && active_set >= KERN_AVX512;
}

const char *
kern_set_name(enum kern_set s)
{
	return (unsigned)s <= KERN_AVX512BF16 ? names[s] : "?";
}
