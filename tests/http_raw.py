#!/usr/bin/python3
"""http_raw.py - raw-socket HTTP clients for tests/t_http.sh, for what curl cannot do:
pipelining, slow bodies, clients that vanish, many connections at once. Every wait is
bounded. Prints one result line per mode; the shell test asserts on it.

usage: http_raw.py ADDR MODE [args]   (ADDR: a Unix socket path or host:port)"""
import json
import socket
import sys
import time

LIMIT = 10.0


def connect(addr):
    if addr.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(LIMIT)
        s.connect(addr)
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=LIMIT)
    return s


def request(method, path, body=b"", headers=()):
    h = "%s %s HTTP/1.1\r\nHost: guardd\r\n" % (method, path)
    for k, v in headers:
        h += "%s: %s\r\n" % (k, v)
    if body or method == "POST":
        h += "Content-Length: %d\r\n" % len(body)
    return h.encode() + b"\r\n" + body


def read_response(s, buf=b""):
    """one response (Content-Length or chunked) -> (status, headers, body, rest)"""
    t0 = time.time()
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError("closed before the headers")
        buf += d
        if time.time() - t0 > LIMIT:
            raise TimeoutError
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    if "content-length" in hdrs:
        n = int(hdrs["content-length"])
        while len(buf) < n:
            d = s.recv(65536)
            if not d:
                raise EOFError("closed inside the body")
            buf += d
        return status, hdrs, buf[:n], buf[n:]
    body = b""
    while True:  # chunked
        while b"\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                return status, hdrs, body, b""
            buf += d
        size, buf = buf.split(b"\r\n", 1)
        n = int(size, 16)
        while len(buf) < n + 2:
            d = s.recv(65536)
            if not d:
                return status, hdrs, body + buf, b""
            buf += d
        body += buf[:n]
        buf = buf[n + 2:]
        if n == 0:
            return status, hdrs, body, buf


def wait_closed(s):
    """seconds until the server closes, and the bytes it sent meanwhile"""
    t0 = time.time()
    got = b""
    while time.time() - t0 < LIMIT:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            return time.time() - t0, got
        if not d:
            return time.time() - t0, got
        got += d
    return None, got


def main():
    addr, mode = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    auth = [("Authorization", "Bearer " + args[0])] if args and args[0] else []
    if mode == "pipeline":
        # three requests in one write: three answers, in order
        s = connect(addr)
        ping = json.dumps({"id": 7, "op": "ping"}).encode()
        s.sendall(request("GET", "/health", headers=auth) +
                  request("POST", "/guardd/request", ping, auth) +
                  request("GET", "/nowhere", headers=auth + [("Connection", "close")]))
        out, rest = [], b""
        for _ in range(3):
            st, h, b, rest = read_response(s, rest)
            out.append(str(st))
            if st == 200 and b.startswith(b'{"id"'):
                out.append(str(json.loads(b)["id"]))
        t, _ = wait_closed(s)
        print(" ".join(out), "closed" if t is not None else "open")
    elif mode == "slowbody":
        # a body that stops coming: closed after http.timeout_ms, with no answer
        s = connect(addr)
        s.sendall(request("POST", "/guardd/request", b"", auth)
                  .replace(b"Content-Length: 0", b"Content-Length: 100") + b'{"op":')
        t, got = wait_closed(s)
        print("closed" if t is not None else "open", len(got))
    elif mode == "slowheaders":
        s = connect(addr)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        t, got = wait_closed(s)
        print("closed" if t is not None else "open", len(got))
    elif mode == "vanish":
        # a streamed chat left after its first event; the daemon must carry on
        s = connect(addr)
        body = json.dumps({"id": 9, "op": "chat", "stream": True,
                           "messages": [{"role": "user", "content": "Tell me a story."}]}).encode()
        s.sendall(request("POST", "/guardd/request", body, auth))
        buf = b""
        while b"data:" not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
        s.close()
        print("left after", "data" if b"data:" in buf else "nothing")
    elif mode == "vanish-early":
        # a request sent, then the client leaves at once
        s = connect(addr)
        body = json.dumps({"id": 10, "op": "chat", "stream": False,
                           "messages": [{"role": "user", "content": "Tell me a story."}]}).encode()
        s.sendall(request("POST", "/guardd/request", body, auth))
        s.close()
        print("left")
    elif mode == "maxconn":
        # n connections, each with one request answered and kept open; then one more
        n = int(args[1])
        socks, codes = [], []
        for _ in range(n + 1):
            s = connect(addr)
            s.sendall(request("GET", "/health", headers=auth))
            st, h, b, _ = read_response(s)
            codes.append(str(st) + ("/" + json.loads(b)["error"]["code"] if st != 200 else ""))
            socks.append(s)
        print(" ".join(codes))
        for s in socks:
            s.close()
    elif mode == "idle":
        # n connections that send nothing, then one request on one more
        n = int(args[1])
        socks = [connect(addr) for _ in range(n)]
        time.sleep(0)
        s = connect(addr)
        s.sendall(request("GET", "/health", headers=auth))
        st, h, b, _ = read_response(s)
        print(str(st) + ("/" + json.loads(b)["error"]["code"] if st != 200 else ""))
        for x in socks + [s]:
            x.close()
    elif mode == "headers":
        # n extra headers
        n = int(args[1])
        s = connect(addr)
        s.sendall(request("GET", "/health", headers=auth + [("X-H%d" % i, "v") for i in range(n)]))
        st, h, b, _ = read_response(s)
        print(st, json.loads(b)["error"]["code"] if st != 200 else "ok")
    elif mode == "garbage":
        s = connect(addr)
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
        t, got = wait_closed(s)
        print("closed" if t is not None else "open", got.split(b"\r\n")[0].decode("latin-1"))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
