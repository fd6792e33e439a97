/* t_kq.c - the SIMD kernels for quantized weights (core/kern_q_*.c), every family this CPU
 * runs (the others are skipped, saying so), for each of the nine types of core/quant.h:
 *   - random blocks (valid scales) x random activations give exactly the bits of the
 *     canonical per-row sum (kern_q_int.h) computed here in scalar C straight from the
 *     GGUF block definitions, and agree with a float64 product of the dequantized values;
 *   - every token row is bit-identical for batches of 1..40 tokens at any offset and for
 *     different row ranges [r0, r1) (16 tokens and more: AMX tiles where they run, not
 *     under GUARD_AMX=0);
 *   - they agree with quant_matmul_generic (core/quant.c, another float order) to 1e-5;
 *   - the SIMD activation quantizers write qact_quantize_row's bytes, ties rounding to
 *     even, NaN and infinity included;
 *   - kern_q_pick / kern_qact_pick choose the family GUARD_KERNELS and the CPU allow.
 * Usage: t_kq (GUARD_KERNELS caps what the pick may choose; GUARD_AMX=0 takes AMX tiles away) */
#include <cpuid.h>
#include <math.h>

#include "core/gguf.h"
#include "core/half.h"
#include "core/kern.h"
#include "core/quant.h"
#include "tap.h"
#include "xorshift.h"

static uint32_t rng = 2024;

static uint32_t
rnd32(void)
{
	return xorshift32(&rng);
}

static float
rndf(float lo, float hi)
{
	return lo + (hi - lo) * (float)(rnd32() & 0xffffff) / 16777216.0f;
}

static size_t
act_bytes(int64_t k)
{
	return ((size_t)k + (size_t)k / 32 * 6 + 63) / 64 * 64;
}

/* ---- scalar definitions, straight from ggml's block layouts ---- */

/* quant.h: d = amax / 127, q = round-half-even(x * (1/d)) clamped, s = sum q */
static void
act_quantize(const float *x, int64_t k, uint8_t *row)
{
	int8_t *q = (int8_t *)row;
	float *d = (float *)(row + k);
	int16_t *s = (int16_t *)(row + k + k / 32 * 4);

	memset(row, 0, act_bytes(k));
	for (int64_t b = 0; b < k / 32; b++) {
		float amax = 0;
		for (int i = 0; i < 32; i++)
			amax = fmaxf(amax, fabsf(x[32 * b + i]));
		float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
		int sum = 0;
		for (int i = 0; i < 32; i++) {
			float v = nearbyintf(x[32 * b + i] * id);
			int qi = v > 127 ? 127 : v < -127 ? -127 : (int)v;
			q[32 * b + i] = (int8_t)qi;
			sum += qi;
		}
		d[b] = db;
		s[b] = (int16_t)sum;
	}
}

static float
h2f(const uint8_t *p)
{
	return f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

/* Block b (32 elements) of a row: integer values (offset removed), scale of each group of
 * g elements (32, or 16 for Q6_K), float minimum term coefficient (0 if none). */
static int
block_ints(int type, const uint8_t *row, int64_t b, int q[32], float ds[2], float *dm)
{
	const uint8_t *p;
	int j = (int)(b % 8);

	*dm = 0;
	switch (type) {
	case GGML_TYPE_Q8_0:
		p = row + b * 34;
		ds[0] = h2f(p);
		for (int i = 0; i < 32; i++)
			q[i] = (int8_t)p[2 + i];
		return 32;
	case GGML_TYPE_Q8_K:
		p = row + b / 8 * 292;
		memcpy(&ds[0], p, 4);
		for (int i = 0; i < 32; i++)
			q[i] = (int8_t)p[4 + 32 * j + i];
		return 32;
	case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: {
		int hasm = type == GGML_TYPE_Q4_1 || type == GGML_TYPE_Q5_1;
		int five = type == GGML_TYPE_Q5_0 || type == GGML_TYPE_Q5_1;
		int sz = 18 + 2 * hasm + 4 * five;
		p = row + b * sz;
		ds[0] = h2f(p);
		if (hasm)
			*dm = h2f(p + 2);
		uint32_t qh = 0;
		if (five)
			memcpy(&qh, p + 2 + 2 * hasm, 4);
		const uint8_t *qs = p + 2 + 2 * hasm + 4 * five;
		for (int i = 0; i < 32; i++) {
			int v = i < 16 ? qs[i] & 15 : qs[i - 16] >> 4;
			if (five)
				v |= ((qh >> i) & 1) << 4;
			q[i] = v - (hasm ? 0 : five ? 16 : 8);
		}
		return 32;
	}
	case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: {
		int five = type == GGML_TYPE_Q5_K, sc, mn;
		p = row + b / 8 * (five ? 176 : 144);
		const uint8_t *s = p + 4;
		if (j < 4) {
			sc = s[j] & 63;
			mn = s[j + 4] & 63;
		} else {
			sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
			mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
		}
		ds[0] = h2f(p) * (float)sc;
		*dm = -(h2f(p + 2) * (float)mn);
		const uint8_t *qs = p + (five ? 48 : 16) + 32 * (j / 2), *qh = p + 16;
		for (int i = 0; i < 32; i++) {
			q[i] = (j & 1) ? qs[i] >> 4 : qs[i] & 15;
			if (five)
				q[i] |= ((qh[i] >> j) & 1) << 4;
		}
		return 32;
	}
	case GGML_TYPE_Q6_K: {
		int n = j / 4, s = j % 4;
		p = row + b / 8 * 210;
		float d = h2f(p + 208);
		const int8_t *sc = (const int8_t *)(p + 192) + 8 * n + 2 * s;
		ds[0] = d * (float)sc[0];
		ds[1] = d * (float)sc[1];
		const uint8_t *ql = p + 64 * n, *qh = p + 128 + 32 * n;
		for (int l = 0; l < 32; l++) {
			int lo = s & 1 ? ql[l + 32] : ql[l];
			lo = s >> 1 ? lo >> 4 : lo & 15;
			q[l] = (lo | (((qh[l] >> (2 * s)) & 3) << 4)) - 32;
		}
		return 16;
	}
	default:
		return 0;
	}
}

/* the canonical float sum of kern_q_int.h */
static float
canon(int type, const uint8_t *row, int64_t k, const uint8_t *act)
{
	const int8_t *qa = (const int8_t *)act;
	const float *da = (const float *)(act + k);
	const int16_t *sa = (const int16_t *)(act + k + k / 32 * 4);
	float acc = 0;

	for (int64_t b = 0; b < k / 32; b++) {
		int q[32];
		float ds[2], dm;
		int gl = block_ints(type, row, b, q, ds, &dm);
		for (int g = 0; g < 32 / gl; g++) {
			int32_t dot = 0;
			for (int i = g * gl; i < (g + 1) * gl; i++)
				dot += q[i] * qa[32 * b + i];
			acc = fmaf((float)dot, ds[g] * da[b], acc);
		}
		if (type == GGML_TYPE_Q4_1 || type == GGML_TYPE_Q5_1 ||
		    type == GGML_TYPE_Q4_K || type == GGML_TYPE_Q5_K)
			acc = fmaf(dm, da[b] * (float)sa[b], acc);
	}
	return acc;
}

/* float64 product of the dequantized weights and activations, and sum |w x| */
static double
exact(int type, const uint8_t *row, int64_t k, const uint8_t *act, double *mag)
{
	const int8_t *qa = (const int8_t *)act;
	const float *da = (const float *)(act + k);
	double s = 0;

	*mag = 0;
	for (int64_t b = 0; b < k / 32; b++) {
		int q[32];
		float ds[2], dm;
		int gl = block_ints(type, row, b, q, ds, &dm);
		for (int i = 0; i < 32; i++) {
			double w = (double)ds[i / gl] * q[i] + dm, x = (double)da[b] * qa[32 * b + i];
			s += w * x;
			*mag += fabs(w * x);
		}
	}
	return s;
}

/* ---- random weights ---- */

static uint16_t
rnd_half(float lo, float hi)
{
	return f32_to_f16(rndf(lo, hi) * (rnd32() & 1 ? -1.0f : 1.0f));
}

static void
put_half(uint8_t *p, uint16_t h)
{
	p[0] = (uint8_t)h;
	p[1] = (uint8_t)(h >> 8);
}

static void
fill_weights(int type, uint8_t *w, size_t n, size_t bsz)
{
	for (size_t i = 0; i < n; i++)
		w[i] = (uint8_t)rnd32();
	for (size_t o = 0; o + bsz <= n; o += bsz) {
		uint8_t *p = w + o;
		switch (type) {
		case GGML_TYPE_Q8_0: case GGML_TYPE_Q4_0: case GGML_TYPE_Q5_0:
			put_half(p, rnd_half(1e-3f, 2e-2f));
			break;
		case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_1:
			put_half(p, f32_to_f16(rndf(1e-3f, 2e-2f)));
			put_half(p + 2, rnd_half(1e-2f, 1e-1f));
			break;
		case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K:
			put_half(p, f32_to_f16(rndf(1e-4f, 1e-3f)));
			put_half(p + 2, f32_to_f16(rndf(1e-4f, 1e-3f)));
			break;
		case GGML_TYPE_Q6_K:
			put_half(p + 208, f32_to_f16(rndf(1e-4f, 1e-3f)));
			break;
		case GGML_TYPE_Q8_K: {
			float d = rndf(1e-4f, 1e-2f);
			memcpy(p, &d, 4);
			break;
		}
		default: break;
		}
	}
}

static const int types[] = { GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0,
	GGML_TYPE_Q5_1, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_Q8_K };

struct family {
	const char *name;
	kern_q_fn fn;
	kern_qact_fn qact;
	int runs;
};

static void
test_type(const struct family *f, int type, int64_t rows, int64_t k, const int M)
{
	uint64_t block, bytes;
	ggml_type_size((uint32_t)type, &block, &bytes);
	size_t rb = (size_t)(k / (int64_t)block) * bytes, ab = act_bytes(k);
	uint8_t *w = malloc(rb * (size_t)rows), *xq = aligned_alloc(64, ab * M);
	float *x = malloc(sizeof(float) * (size_t)(M * k));
	float *ref = malloc(sizeof(float) * (size_t)(M * rows));
	float *y = malloc(sizeof(float) * (size_t)(M * rows));
	const char *tn = ggml_type_name((uint32_t)type);

	fill_weights(type, w, rb * (size_t)rows, bytes);
	for (int64_t i = 0; i < M * k; i++)
		x[i] = rndf(-1, 1) * (i % 97 == 0 ? 8.0f : 1.0f);
	for (int t = 0; t < M; t++)
		act_quantize(x + t * k, k, xq + ab * (size_t)t);
	double maxrel = 0;
	for (int t = 0; t < M; t++)
		for (int64_t r = 0; r < rows; r++) {
			double mag, e = exact(type, w + rb * (size_t)r, k, xq + ab * (size_t)t, &mag);
			ref[t * rows + r] = canon(type, w + rb * (size_t)r, k, xq + ab * (size_t)t);
			maxrel = fmax(maxrel, fabs(ref[t * rows + r] - e) / (mag + 1e-30));
		}
	/* all tokens at once, all rows */
	f->fn(type, w, k, 0, rows, xq, M, y, rows);
	int bad = -1;
	for (int64_t i = 0; i < M * rows && bad < 0; i++)
		if (memcmp(&y[i], &ref[i], 4) != 0)
			bad = (int)i;
	ok(bad < 0, "%s %s %lldx%lld: %d tokens give the canonical per-row sum bit for bit%s",
	    f->name, tn, (long long)rows, (long long)k, M, bad < 0 ? "" : " (first difference below)");
	if (bad >= 0)
		diag("token %d row %d: %.9g, canonical %.9g", bad / (int)rows, bad % (int)rows,
		    y[bad], ref[bad]);
	ok(maxrel < 1e-5, "%s %s: canonical sum within 1e-5 of float64 (relative to sum |w x|: "
	    "%.2g)", f->name, tn, maxrel);
	/* the portable reference (core/quant.c) sums in its own float order: close, not equal */
	quant_matmul_generic(type, w, k, 0, rows, xq, M, y, rows);
	double gen = 0;
	for (int t = 0; t < M; t++)
		for (int64_t r = 0; r < rows; r++) {
			double mag;
			exact(type, w + rb * (size_t)r, k, xq + ab * (size_t)t, &mag);
			gen = fmax(gen, fabs(y[t * rows + r] - ref[t * rows + r]) / (mag + 1e-30));
		}
	ok(gen < 1e-5, "%s %s: within 1e-5 of quant_matmul_generic (relative to sum |w x|: %.2g)",
	    f->name, tn, gen);
	/* every batch size at a moving offset, row ranges split at odd places */
	int same = 1;
	for (int m = 1; m <= M; m++) {
		int t0 = (m * 5) % (M - m + 1);
		int64_t cut1 = (m * 7) % rows, cut2 = cut1 + (rows - cut1) / 2 + 1;
		int64_t cuts[4] = { 0, cut1, cut2 < rows ? cut2 : rows, rows };
		for (int i = 0; i < M * rows; i++)
			y[i] = NAN;
		for (int c = 0; c < 3; c++)
			if (cuts[c + 1] > cuts[c])
				f->fn(type, w, k, cuts[c], cuts[c + 1], xq + ab * (size_t)t0, m, y, rows);
		if (memcmp(y, ref + t0 * rows, sizeof(float) * (size_t)(m * rows)) != 0)
			same = 0;
	}
	ok(same, "%s %s: batches of 1-%d tokens at any offset, rows split in 3 ranges: same bits",
	    f->name, tn, M);
	free(w);
	free(xq);
	free(x);
	free(ref);
	free(y);
}

static void
test_qact(const struct family *f)
{
	enum { K = 1024 };
	float x[K];
	uint8_t *a = aligned_alloc(64, act_bytes(K)), *b = aligned_alloc(64, act_bytes(K));
	int same = 1;

	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < K; i++)
			x[i] = rndf(-1, 1) * (float)(1 << (round % 8));
		/* a zero block; ties: amax 127 makes d = 1, x * 1 = n + 0.5 must go to even */
		memset(x, 0, 32 * sizeof(float));
		for (int i = 0; i < 32; i++)
			x[32 + i] = i == 0 ? 127.0f : (float)(i - 16) + 0.5f;
		x[64] = -127.0f;
		/* non-finite values: a NaN block, an infinity, a NaN beside finite values */
		if (round == 19) {
			for (int i = 0; i < 32; i++)
				x[96 + i] = NAN;
			x[130] = INFINITY;
			x[170] = -NAN;
		}
		memset(a, 0xaa, act_bytes(K));
		memset(b, 0x55, act_bytes(K));
		qact_quantize_row(x, K, a);
		f->qact(x, K, b);
		if (memcmp(a, b, act_bytes(K)) != 0)
			same = 0;
		if (round < 19) {	/* this file's reading of quant.h, on finite values */
			memset(b, 0x55, act_bytes(K));
			act_quantize(x, K, b);
			if (memcmp(a, b, act_bytes(K)) != 0)
				same = 0;
		}
	}
	ok(same, "%s activation quantizer writes qact_quantize_row's bytes (ties to even, zero "
	    "blocks, NaN and infinity, padding)", f->name);
	ok(act_bytes(K) == qact_row_bytes(K) && act_bytes(96) == qact_row_bytes(96),
	    "activation row size is quant.h's");
	free(a);
	free(b);
}

int
main(void)
{
	enum kern_set cpu = kern_cpu_set(), act = kern_set();
	const char *want = getenv("GUARD_KERNELS");
	struct family fam[] = {
		{ "avx512vnni", kern_q_vnni, kern_qact_avx512, kern_cpu_vnni() },
		{ "avx2", kern_q_avx2, kern_qact_avx2, act >= KERN_AVX2 },
	};

	diag("CPU and OS support %s%s; in use: %s (GUARD_KERNELS=%s)", kern_set_name(cpu),
	    kern_cpu_vnni() ? " + avx512vnni" : "", kern_set_name(act), want ? want : "");
	kern_q_fn pick = kern_q_pick(GGML_TYPE_Q8_0);
	const char *pn = pick == kern_q_vnni ? "avx512vnni" : pick == kern_q_avx2 ? "avx2" :
	    pick == NULL ? "none" : "?";
	const char *expect = kern_cpu_vnni() ? "avx512vnni" : act >= KERN_AVX2 ? "avx2" : "none";
	ok(strcmp(pn, expect) == 0, "kern_q_pick chooses %s (expected %s)", pn, expect);
	kern_qact_fn qp = kern_qact_pick();
	ok(qp == (act >= KERN_AVX512 ? kern_qact_avx512 : act >= KERN_AVX2 ? kern_qact_avx2 : NULL),
	    "kern_qact_pick matches the family in use");
	ok(kern_q_pick(GGML_TYPE_F32) == NULL && kern_q_pick(GGML_TYPE_BF16) == NULL &&
	    kern_q_pick(GGML_TYPE_Q2_K) == NULL, "kern_q_pick has no kernel for F32, BF16, Q2_K");
	/* AMX: the probe runs tiles in a forked child, so this process survives a host that
	 * advertises AMX and faults on it */
	unsigned a = 0, b = 0, c = 0, d = 0;
	if (__get_cpuid_max(0, NULL) >= 7)
		__cpuid_count(7, 0, a, b, c, d);
	int adv = (d >> 24) & 1;
	int amx = kern_cpu_amx();
	diag("AMX: cpuid %s it; the tile probe says %s", adv ? "advertises" : "does not advertise",
	    amx ? "tiles run (a 2x8 by 8x2 int8 product was right)" : "not usable");
	const char *ga = getenv("GUARD_AMX");
	diag("the VNNI family %s AMX tiles (GUARD_AMX=%s)", kern_amx_on() ? "uses" : "does not use",
	    ga ? ga : "");
	ok(amx == kern_cpu_amx() && (!amx || (adv && act >= KERN_AVX512)),
	    "AMX probe: answered without a crash, %s, only where advertised and AVX-512 is allowed",
	    amx ? "usable" : "not usable");
	for (size_t fi = 0; fi < sizeof(fam) / sizeof(fam[0]); fi++) {
		const struct family *f = &fam[fi];
		if (!f->runs) {
			ok(1, "# skip %s kernels: this CPU or GUARD_KERNELS=%s does not allow them",
			    f->name, want ? want : "");
			continue;
		}
		if (fi == 1 && act >= KERN_AVX512)
			diag("avx2 family forced on an AVX-512 CPU");
		test_qact(f);
		for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
			/* 40 tokens: AMX tiles (groups of 16, where they run) beside the VNNI tiles */
			test_type(f, types[ti], 45, 1280, 40);
			test_type(f, types[ti], 16, 256, 13);
		}
	}
	return done_testing();
}
