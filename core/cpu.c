/* cpu.c - which kernel family runs: what the CPU reports (cpuid) AND the OS has enabled
 * (XGETBV: the register state is saved on context switches), capped by GUARD_KERNELS.
 * Decided once per process (pthread_once), so every thread and call sees the same set. */
#include "core/kern.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* ---- AMX: advertised is not enough ----
 * The tile registers need the kernel's permission (arch_prctl(ARCH_REQ_XCOMP_PERM)), and a
 * host can advertise AMX in cpuid yet fault on it (a plain AMX build of llama.cpp died with
 * SIGILL on this machine). So the first tile instructions run in a forked child: a SIGILL
 * there kills the child only, and AMX counts as usable only if the child computed a known
 * product. The first BF16 matmul calls it (kern_bf16_amx_on): the probe forks, so a sandbox
 * that forbids fork only loses the tiles. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__) && __GNUC__ >= 11
#include <immintrin.h>

enum { ARCH_REQ_XCOMP_PERM_ = 0x1023, XFEATURE_XTILEDATA_ = 18 };

struct tilecfg {
	uint8_t palette, start;
	uint8_t pad[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

/* Both probes' tiles, each 2 rows of 8 bytes: configured, C (tile 0) zeroed, A (tile 1) and
 * B (tile 2) loaded from a and b. */
__attribute__((target("amx-tile"))) static inline __attribute__((always_inline)) void
amx_probe_tiles(const void *a, const void *b)
{
	struct tilecfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.palette = 1;
	for (int t = 0; t < 3; t++) {
		cfg.colsb[t] = 8;
		cfg.rows[t] = 2;
	}
	_tile_loadconfig(&cfg);
	_tile_zero(0);
	_tile_loadd(1, a, 8);
	_tile_loadd(2, b, 8);
}

/* C (2 x 2 int32) = A (2 x 8 int8, all 1) . B (2 x 8 int8, all 2): every element 16 */
__attribute__((target("amx-tile,amx-int8"))) static int
amx_probe_child(void)
{
	int8_t a[16], b[16];
	int32_t c[4] = { 0, 0, 0, 0 };

	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	amx_probe_tiles(a, b);
	_tile_dpbssd(0, 1, 2);
	_tile_stored(0, c, 8);
	_tile_release();
	return c[0] == 16 && c[1] == 16 && c[2] == 16 && c[3] == 16;
}

/* C (2 x 2 float) = A (2 x 4 BF16, all 1.5) . B (2 rows of 2 pairs, all 2): every element
 * 4 x 1.5 x 2 = 12 */
__attribute__((target("amx-tile,amx-bf16"))) static int
amx_probe_bf16_child(void)
{
	uint16_t a[8], b[8];
	float c[4] = { 0, 0, 0, 0 };

	for (int i = 0; i < 8; i++) {
		a[i] = 0x3fc0;	/* 1.5 */
		b[i] = 0x4000;	/* 2.0 */
	}
	amx_probe_tiles(a, b);
	_tile_dpbf16ps(0, 1, 2);
	_tile_stored(0, c, 8);
	_tile_release();
	return c[0] == 12.0f && c[1] == 12.0f && c[2] == 12.0f && c[3] == 12.0f;
}

/* bit 0: AMX-INT8 tiles run; bit 1: AMX-BF16 tiles run */
static int
amx_detect(void)
{
	unsigned a, b, c, d;

	if (kern_set() < KERN_AVX512 || __get_cpuid_max(0, NULL) < 7)
		return 0;
	__cpuid_count(7, 0, a, b, c, d);
	/* AMX-TILE (and AMX-INT8 or AMX-BF16); XTILECFG and XTILEDATA enabled in XCR0 */
	int int8 = (d >> 25) & 1, bf16 = (d >> 22) & 1;
	if (!((d >> 24) & 1) || !(int8 || bf16) || (xgetbv0() & 0x60000) != 0x60000)
		return 0;
	if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM_, XFEATURE_XTILEDATA_) != 0)
		return 0;
	pid_t pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0)
		_exit((int8 && amx_probe_child() ? 1 : 0) | (bf16 && amx_probe_bf16_child() ? 2 : 0));
	int st, r;
	while ((r = (int)waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	return r == pid && WIFEXITED(st) ? WEXITSTATUS(st) & 3 : 0;
}

#else

static int amx_detect(void) { return 0; }

#endif

static int has_amx;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

/* GUARD_AMX=0: no tiles (no probe either); otherwise BF16 and quantized weights use them
 * where the probe proves they run */
static int
amx_env(void)
{
	const char *env = getenv("GUARD_AMX");

	return env == NULL || *env == '\0' ? -1 : strcmp(env, "0") == 0 ? 0 : 1;
}

static void amx_init(void) { has_amx = amx_env() == 0 ? 0 : amx_detect(); }

int
kern_cpu_amx(void)
{
	pthread_once(&amx_once, amx_init);
	return has_amx & 1;
}

int
kern_cpu_amx_bf16(void)
{
	pthread_once(&amx_once, amx_init);
	return (has_amx >> 1) & 1;
}

int
kern_bf16_amx_on(void)
{
	/* on by default where the tiles run (GUARD_AMX=0 turns them off): 2 x 16 x 16 x 32
	 * products per pair of instructions against 16 x 32 for vdpbf16ps */
	return amx_env() != 0 && kern_set() >= KERN_AVX512BF16 && kern_cpu_amx_bf16();
}

int
kern_amx_on(void)
{
	/* on by default where the tiles run (GUARD_AMX=0 turns them off): the tile product of a
	 * scale group overlaps the vector unit's float steps of the one before (kern_q_amx.c) */
	return amx_env() != 0 && kern_set() >= KERN_AVX512 && kern_cpu_amx();
}

const char *
kern_set_name(enum kern_set s)
{
	return (unsigned)s <= KERN_AVX512BF16 ? names[s] : "?";
}
