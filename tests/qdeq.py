#!/usr/bin/env python3
"""qdeq.py - an independent dequantizer for t_quant: reads a GGUF file with nothing but the
standard library and prints some rows of every quantized matrix as the float32 values ggml's
dequantize_row_* gives (loop for loop as ggml-quants.c writes them: per block, then per
64- or 128-element group).

    qdeq.py FILE    ->  one line per row: NAME ROW TYPE HEX HEX ...  (float32 bit patterns)

Values are computed in Python floats (binary64), where every product and sum these formulas
make is exact, then rounded once to float32: the same as ggml's float32 arithmetic, whose
one rounding is the last operation (products of a half scale and a small integer are exact
in float32 too)."""
import struct
import sys

VSIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
# ggml type: (name, block elements, block bytes)
TYPES = {2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24),
         8: ("Q8_0", 32, 34), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
         14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292)}


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def half(b, o):
    return struct.unpack_from("<e", b, o)[0]


def read_gguf(data):
    o = 0

    def u(fmt):
        nonlocal o
        v = struct.unpack_from("<" + fmt, data, o)[0]
        o += struct.calcsize(fmt)
        return v

    def s():
        nonlocal o
        n = u("Q")
        v = data[o:o + n].decode("utf-8", "replace")
        o += n
        return v

    def skip_value(t):
        nonlocal o
        if t == 8:
            s()
        elif t == 9:
            at, n = u("I"), u("Q")
            for _ in range(n):
                skip_value(at)
        else:
            o += VSIZE[t]

    assert data[:4] == b"GGUF"
    o = 8
    n_t, n_kv = u("Q"), u("Q")
    align = 32
    for _ in range(n_kv):
        k = s()
        t = u("I")
        if k == "general.alignment":
            align = u("I")
        else:
            skip_value(t)
    tensors = []
    for _ in range(n_t):
        name = s()
        nd = u("I")
        ne = [u("Q") for _ in range(nd)]
        t, off = u("I"), u("Q")
        tensors.append((name, ne, t, off))
    base = (o + align - 1) // align * align
    return base, tensors


def scale_min_k4(j, sc):
    if j < 4:
        return sc[j] & 63, sc[j + 4] & 63
    return (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4), (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4)


def deq_block(t, b):
    y = [0.0] * (256 if t in (12, 13, 14, 15) else 32)
    if t == 8:
        d = half(b, 0)
        for j in range(32):
            y[j] = struct.unpack_from("<b", b, 2 + j)[0] * d
    elif t in (2, 3, 6, 7):
        d = half(b, 0)
        m = half(b, 2) if t in (3, 7) else 0.0
        p = 4 if t in (3, 7) else 2
        qh = 0
        if t in (6, 7):
            qh = struct.unpack_from("<I", b, p)[0]
            p += 4
        for j in range(16):
            x0, x1 = b[p + j] & 0xF, b[p + j] >> 4
            if t in (6, 7):
                x0 |= ((qh >> j) << 4) & 0x10
                x1 |= (qh >> (j + 12)) & 0x10
            if t == 2:
                x0, x1 = x0 - 8, x1 - 8
            if t == 6:
                x0, x1 = x0 - 16, x1 - 16
            if t in (3, 7):
                y[j], y[j + 16] = x0 * d + m, x1 * d + m
            else:  # no "+ 0.0": -0.0 stays -0.0, as in ggml
                y[j], y[j + 16] = x0 * d, x1 * d
    elif t in (12, 13):
        d, dmin = half(b, 0), half(b, 2)
        sc = b[4:16]
        qh = b[16:48] if t == 13 else None
        ql = b[48:176] if t == 13 else b[16:144]
        i, q, u1, u2 = 0, 0, 1, 2
        for j in range(0, 256, 64):
            s1, m1 = scale_min_k4(2 * (j // 64), sc)
            s2, m2 = scale_min_k4(2 * (j // 64) + 1, sc)
            d1, mm1, d2, mm2 = d * s1, dmin * m1, d * s2, dmin * m2
            for l in range(32):
                h = (16 if qh[l] & u1 else 0) if qh else 0
                y[i] = d1 * ((ql[q + l] & 0xF) + h) - mm1
                i += 1
            for l in range(32):
                h = (16 if qh[l] & u2 else 0) if qh else 0
                y[i] = d2 * ((ql[q + l] >> 4) + h) - mm2
                i += 1
            q += 32
            u1 <<= 2
            u2 <<= 2
    elif t == 14:
        d = half(b, 208)
        for n in range(2):
            ql, qh = b[64 * n:64 * n + 64], b[128 + 32 * n:128 + 32 * n + 32]
            sc = struct.unpack_from("<8b", b, 192 + 8 * n)
            for l in range(32):
                s = l // 16
                q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32
                q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32
                q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                y[128 * n + l] = d * sc[s] * q1
                y[128 * n + l + 32] = d * sc[s + 2] * q2
                y[128 * n + l + 64] = d * sc[s + 4] * q3
                y[128 * n + l + 96] = d * sc[s + 6] * q4
    elif t == 15:
        d = struct.unpack_from("<f", b, 0)[0]
        for j in range(256):
            y[j] = d * struct.unpack_from("<b", b, 4 + j)[0]
    return [f32(v) for v in y]


def main():
    data = open(sys.argv[1], "rb").read()
    base, tensors = read_gguf(data)
    for name, ne, t, off in tensors:
        if t not in TYPES or len(ne) != 2:
            continue
        tname, blk, nbytes = TYPES[t]
        row_bytes = ne[0] // blk * nbytes
        for r in sorted({0, 1, ne[1] // 2, ne[1] - 1}):
            p = base + off + r * row_bytes
            vals = []
            for i in range(ne[0] // blk):
                vals += deq_block(t, data[p + i * nbytes:p + (i + 1) * nbytes])
            print(name, r, tname, " ".join("%08x" % struct.unpack("<I", struct.pack("<f", v))[0]
                                         for v in vals))


main()
