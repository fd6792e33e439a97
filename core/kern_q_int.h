/* kern_q_int.h - what the quantized SIMD kernel families share (private to core/kern_q_*.c):
 * the repacked form of a tile of weight rows and the canonical per-output float sum.
 *
 * Canonical sum (every family, every tile, every batch): an output y[t][r] is ONE float
 * accumulator, starting at 0, updated once per scale group g of its row in k order:
 *     acc = fma((float)D_g, ds_g * da_b, acc)          D_g = exact int32 dot of group g
 *     acc = fma(dm_b, da_b * (float)sa_b, acc)          (types with a float minimum, once
 *                                                        per 32-block b, after its groups)
 * where ds/dm are the weight block's scale and minimum (exact in float), da_b/sa_b the
 * activation block's scale and sum. A scale group is the 32-block, or a 16-half for Q6_K.
 * D_g folds the type's integer offset (Q4_0 nibble - 8 etc.), so it is exact. Any way of
 * computing D_g gives the same integer, hence the same bits, so a row's result depends on k
 * alone, never on the batch, the tile or the lane it is computed in. */
#ifndef GUARDD_KERN_Q_INT_H
#define GUARDD_KERN_Q_INT_H

#include <stddef.h>
#include <stdint.h>

/* Repacked rows: QP_ROWS rows (two groups of 16) x QP_KC elements at most. Values are
 * unsigned bytes (the type's offset added, see qp_type), laid out for broadcast dot
 * products: for block b, step v (elements 4v..4v+3 of the block), group g, row i:
 *     q[((b * 8 + v) * ng + g) * 64 + 4 * i + e] = value of element 4v + e.
 * ds[(b * 2 + h) * QP_ROWS + row] (scale of group h of block b), dm[b * QP_ROWS + row]. */
enum { QP_ROWS = 32, QP_KC = 1024, QP_NB = QP_KC / 32 };

struct qpack {
	_Alignas(64) uint8_t q[QP_NB * 8 * QP_ROWS * 4];
	_Alignas(64) float ds[QP_NB * 2 * QP_ROWS];
	_Alignas(64) float dm[QP_NB * QP_ROWS];
};

/* How a type's values are stored in a qpack and what its integer dot needs:
 *   off: subtracted from every stored value (D = dot(value, q) - off * sum(q));
 *   sub: scale groups per 32-block (1, or 2 for Q6_K's 16-halves);
 *   hasmin: has the dm term;  bits: 4, 5, 6 or 8 (8: signed bytes unless flip). */
struct qp_type {
	int off, sub, hasmin, bits;
};

/* Describes a supported type (returns 0 for others). flip: store 8-bit values as unsigned
 * (value + 128, off = 128) for unsigned x signed products; otherwise 8-bit values stay
 * signed (off = 0). */
int qp_type_get(int type, int flip, struct qp_type *t);
/* Bytes of one weight row of k elements. */
size_t qp_row_bytes(int type, int64_t k);

/* Repack rows [0, nrows) (nrows <= QP_ROWS; missing rows of a group repeat row 0) of blocks
 * [b0, b0 + nb) (nb <= QP_NB), rows starting at w, rb bytes apart. ng = groups of 16. */
void qp_pack(int type, int flip, const uint8_t *w, size_t rb, int nrows, int64_t b0, int nb,
    struct qpack *p);

/* The same rows in natural order for AMX tiles (types with one scale group per block):
 * a[(b * QP_ROWS + row) * 32 + e] = value of element e of block b; ds[b * QP_ROWS + row],
 * dm[b * QP_ROWS + row]. */
void qp_pack_rows(int type, int flip, const uint8_t *w, size_t rb, int nrows, int64_t b0, int nb,
    uint8_t *a, float *ds, float *dm);

/* Per token of a tile, per chunk block: the integer offset term of each scale group
 * (-off * sum of its activation values) and da * (float)sa for the minimum term. */
enum { QP_MT = 8 };
struct qprep {
	int32_t corr[QP_MT][QP_NB * 2];
	float das[QP_MT][QP_NB];
};

/* Fills tp for mt <= QP_MT activation rows (xq, ldx bytes apart, k elements each), blocks
 * [b0, b0 + nb). */
void qp_prep(const struct qp_type *qt, const uint8_t *xq, size_t ldx, int64_t k, int mt,
    int64_t b0, int nb, struct qprep *tp);

#endif
