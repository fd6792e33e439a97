#!/usr/bin/env python3
"""mkpng.py DIR - two small RGB PNGs (one 560-pixel tile each for Llama 3.2-Vision, so the
tests' vision towers run once per image, cheaply): DIR/red.png 48x40 and DIR/blue.png 40x48,
written with the standard library only (zlib)."""
import struct
import sys
import zlib


def png(path, w, h, f):
    raw = b''.join(b'\x00' + bytes(v for x in range(w) for v in f(x, y)) for y in range(h))

    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    with open(path, 'wb') as out:
        ihdr = struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)
        out.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(raw)) +
                  chunk(b'IEND', b''))


png(sys.argv[1] + '/red.png', 48, 40, lambda x, y: (200 + x % 50, 30 + y, 40))
png(sys.argv[1] + '/blue.png', 40, 48, lambda x, y: (20, 60 + (x * y) % 100, 220 - y))
