/* kern_walk.h - the walk every SIMD matmul kernel makes (kern_avx2.c, kern_x86.c), written
 * once: Y[t][r] = sum_k X[t][k] W[r][k] (the kern.h contract) in k blocks of KB columns
 * (partial sums added into Y after the first), token blocks of MB, row tiles of RN and token
 * tiles of MT, each a call of the including file's always-inline TILE. A file defines RN, MT
 * and MB before using KERN_GEMM. Macros, so that each kernel compiles to what it did when it
 * wrote the walk out (the same machine code, checked with objdump). */
#ifndef GUARDD_KERN_WALK_H
#define GUARDD_KERN_WALK_H

/* One tile call, mt tokens from t (in scope in KERN_GEMM). TILE's arguments: the weight
 * rows, their stride, how many are real, the tokens, their stride, mt, the columns, Y, its
 * stride, whether to add into Y, and LAST (the file's own, evaluated per call). */
#define KERN_TILE(TILE, mt, LAST) \
	TILE(wr, k, rn, x + (int64_t)t * k + k0, k, mt, kn, y + (int64_t)t * ldy + r, ldy, k0 > 0, LAST)

/* The last token tile of fewer than MT tokens (MT = 3 or 6): a constant mt per call, so each
 * variant keeps its registers. */
#define KERN_TAIL3(TILE, LAST) do { \
	if (t0 + tn - t == 2) \
		KERN_TILE(TILE, 2, LAST); \
	else if (t0 + tn - t == 1) \
		KERN_TILE(TILE, 1, LAST); \
} while (0)
#define KERN_TAIL6(TILE, LAST) do { \
	switch (t0 + tn - t) { \
	case 5: KERN_TILE(TILE, 5, LAST); break; \
	case 4: KERN_TILE(TILE, 4, LAST); break; \
	case 3: KERN_TILE(TILE, 3, LAST); break; \
	case 2: KERN_TILE(TILE, 2, LAST); break; \
	case 1: KERN_TILE(TILE, 1, LAST); break; \
	default: break; \
	} \
} while (0)

/* Defines the kernel name (target attributes attr) for weights of type TW and tokens of type
 * TX; TAIL is KERN_TAIL3 or KERN_TAIL6, as MT is. */
#define KERN_GEMM(name, attr, TW, TX, KB, TILE, LAST, TAIL) \
attr void \
name(const TW *w, int64_t k, int64_t r0, int64_t r1, const TX *x, int m, float *y, int64_t ldy) \
{ \
	for (int64_t k0 = 0; k0 < k; k0 += KB) { \
		int64_t kn = k - k0 < KB ? k - k0 : KB; \
		for (int t0 = 0; t0 < m; t0 += MB) { \
			int tn = m - t0 < MB ? m - t0 : MB; \
			for (int64_t r = r0; r < r1; r += RN) { \
				int rn = r1 - r < RN ? (int)(r1 - r) : RN; \
				const TW *wr = w + r * k + k0; \
				int t = t0; \
				for (; t + MT <= t0 + tn; t += MT) \
					KERN_TILE(TILE, MT, LAST); \
				TAIL(TILE, LAST); \
			} \
		} \
	} \
}

#endif
