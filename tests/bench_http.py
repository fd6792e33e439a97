#!/usr/bin/python3
"""bench_http.py - the HTTP front's cost per request against the msgpack socket's, one
client each, the same Python loop for both (so the client's own cost cancels out), rounds
interleaved. Figures only: nothing here asserts a time.

usage: bench_http.py MSGPACK_SOCKET HTTP_SOCKET [REQUESTS [ROUNDS [PATH]]]
PATH: /guardd/request (default) or /v1/moderations (then the body is OpenAI's)."""
import json
import socket
import struct
import sys
import time

TEXT = "How do I bake bread at home?"


def mp_str(s):
    b = s.encode()
    if len(b) < 32:
        return bytes([0xa0 | len(b)]) + b
    return b"\xd9" + bytes([len(b)]) + b


def mp_request(i):
    # {"id": i, "op": "classify", "messages": [{"role": "user", "content": TEXT}]}
    return (b"\x83" + mp_str("id") + b"\xce" + struct.pack(">I", i) + mp_str("op") +
            mp_str("classify") + mp_str("messages") + b"\x91\x82" + mp_str("role") +
            mp_str("user") + mp_str("content") + mp_str(TEXT))


def mp_skip(b, i):
    """the offset just past the msgpack object at i, or None when b ends first"""
    if i >= len(b):
        return None
    t = b[i]
    fixed = {0xc0: 1, 0xc2: 1, 0xc3: 1, 0xcc: 2, 0xcd: 3, 0xce: 5, 0xcf: 9, 0xd0: 2,
             0xd1: 3, 0xd2: 5, 0xd3: 9, 0xca: 5, 0xcb: 9}
    if t <= 0x7f or t >= 0xe0:
        return i + 1
    if t in fixed:
        return i + fixed[t] if i + fixed[t] <= len(b) else None
    if 0xa0 <= t <= 0xbf:
        return i + 1 + (t & 31) if i + 1 + (t & 31) <= len(b) else None
    if t in (0xd9, 0xda, 0xdb):
        w = {0xd9: 1, 0xda: 2, 0xdb: 4}[t]
        if i + 1 + w > len(b):
            return None
        n = int.from_bytes(b[i + 1:i + 1 + w], "big")
        return i + 1 + w + n if i + 1 + w + n <= len(b) else None
    if 0x90 <= t <= 0x9f or 0x80 <= t <= 0x8f or t in (0xdc, 0xdd, 0xde, 0xdf):
        if 0x90 <= t <= 0x9f:
            n, j = t & 15, i + 1
        elif 0x80 <= t <= 0x8f:
            n, j = 2 * (t & 15), i + 1
        else:
            w = 2 if t in (0xdc, 0xde) else 4
            if i + 1 + w > len(b):
                return None
            n = int.from_bytes(b[i + 1:i + 1 + w], "big") * (2 if t >= 0xde else 1)
            j = i + 1 + w
        for _ in range(n):
            j = mp_skip(b, j)
            if j is None:
                return None
        return j
    raise ValueError("msgpack type %#x" % t)


def run_msgpack(path, n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    buf = b""
    t0 = time.perf_counter()
    for i in range(n):
        s.sendall(mp_request(i))
        while True:
            end = mp_skip(buf, 0)
            if end is not None:
                if b"verdict" not in buf[:end]:
                    raise RuntimeError("msgpack: not a verdict")
                buf = buf[end:]
                break
            buf += s.recv(65536)
    dt = time.perf_counter() - t0
    s.close()
    return dt


def run_http(path, n, route):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    if route == "/v1/moderations":
        body = json.dumps({"input": TEXT}).encode()
    else:
        body = json.dumps({"op": "classify", "messages": [{"role": "user", "content": TEXT}]}).encode()
    req = ("POST %s HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\n\r\n" % (route, len(body))).encode() + body
    buf = b""
    t0 = time.perf_counter()
    for _ in range(n):
        s.sendall(req)
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, buf = buf.split(b"\r\n\r\n", 1)
        if b" 200 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("HTTP: " + head.split(b"\r\n")[0].decode())
        clen = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        while len(buf) < clen:
            buf += s.recv(65536)
        buf = buf[clen:]
    dt = time.perf_counter() - t0
    s.close()
    return dt


def main():
    mp, http = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    route = sys.argv[5] if len(sys.argv) > 5 else "/guardd/request"
    run_msgpack(mp, 5)
    run_http(http, 5, route)
    tm, th = [], []
    for _ in range(rounds):
        tm.append(run_msgpack(mp, n))
        th.append(run_http(http, n, route))
    bm, bh = min(tm), min(th)
    print("msgpack: %.1f requests/s (%.3f ms each, best of %d rounds of %d)" % (n / bm, 1e3 * bm / n, rounds, n))
    print("HTTP %s: %.1f requests/s (%.3f ms each)" % (route, n / bh, 1e3 * bh / n))
    print("HTTP overhead: %+.3f ms per request" % (1e3 * (bh - bm) / n))


if __name__ == "__main__":
    main()
