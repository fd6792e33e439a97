#!/usr/bin/env python3
"""upstream.py - a scripted OpenAI-compatible upstream for the proxy tests (stdlib only).

Usage: upstream.py PORTFILE LOGFILE [CERT KEY]
Listens on 127.0.0.1 (a free port, written to PORTFILE once listening), over TLS when CERT
and KEY are given. Every POST .../chat/completions is answered as its last user message's
"[script WORDS]" says (default: "safe"):
  safe [N]        N (4) safe chunks, then finish_reason stop and [DONE]
  unsafe N        N safe chunks, then " bomb" and then more safe chunks, slowly, until the
                  client goes away (at most 300)
  status CODE     an OpenAI-shaped error with that HTTP status
  hang            the headers, then silence (until the client goes away)
  hanghead        no answer at all (until the client goes away)
  slow N          N safe chunks 0.1 s apart, then the end as for safe
  cut N           N chunks, then the connection is closed mid-stream
  big N           one chunk of N bytes
  json            a non-streamed chat.completion, whatever the request said
A stream ends with a usage chunk when the request has stream_options.include_usage.
  garbage         a line that is not HTTP
Each request appends one JSON line to LOGFILE when it ends: path, headers it needs, the body,
chunks sent, whether the unsafe phrase was sent, and whether the client closed the
connection while it was still being answered (client_closed).
"""
import json
import re
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SAFE = ["Once", " upon", " a", " time", " there", " was", " a", " kind", " dragon", "."]
PHRASE = " bomb"
log_lock = threading.Lock()


def chunk(content=None, finish=None, model="scripted"):
    delta = {} if content is None else {"content": content}
    return {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def record(self, **kw):
        entry = {"path": self.path, "authorization": self.headers.get("Authorization"),
                 "host": self.headers.get("Host")}
        entry.update(kw)
        with log_lock, open(self.server.logfile, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def send_chunked(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, obj):
        payload = obj if isinstance(obj, str) else json.dumps(obj)
        self.send_chunked(("data: " + payload + "\n\n").encode())

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        script = ["safe"]
        try:
            last = [m for m in body["messages"] if m.get("role") == "user"][-1]["content"]
            m = re.search(r"\[script ([^\]]*)\]", last if isinstance(last, str) else json.dumps(last))
            if m:
                script = m.group(1).split()
        except (TypeError, KeyError, IndexError):
            pass
        state = {"chunks": 0, "phrase_sent": False, "client_closed": False}
        try:
            self.answer(script, body, state)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            state["client_closed"] = True
        self.record(body=body, script=script, **state)
        self.close_connection = True

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def wait_gone(self, limit=30.0):
        """Blocks until the client closes (EOF or reset) or limit seconds pass."""
        self.connection.settimeout(limit)
        try:
            while self.connection.recv(4096):
                pass
            return True
        except socket.timeout:
            return False

    def answer(self, script, body, state):
        kind = script[0]
        arg = int(script[1]) if len(script) > 1 and script[1].isdigit() else None
        if kind == "status":
            err = json.dumps({"error": {"message": "scripted failure", "type": "server_error",
                                        "code": "scripted"}}).encode()
            self.send_response(arg or 500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(err)))
            self.end_headers()
            self.wfile.write(err)
            return
        if kind == "garbage":
            self.wfile.write(b"this is not HTTP\r\n\r\n")
            return
        if kind == "hanghead":
            state["client_closed"] = self.wait_gone()
            return
        if kind == "json":
            text = "".join(SAFE)
            out = json.dumps({"id": "chatcmpl-up", "object": "chat.completion", "created": 1,
                              "model": "scripted", "choices": [{"index": 0, "message": {
                                  "role": "assistant", "content": text}, "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": 5, "completion_tokens": 10,
                                        "total_tokens": 15}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        self.start_stream()
        if kind == "hang":
            state["client_closed"] = self.wait_gone()
            return
        if kind == "big":
            self.event(chunk("x" * (arg or 100000)))
            state["chunks"] += 1
        elif kind == "cut":
            for i in range(arg or 2):
                self.event(chunk(SAFE[i % len(SAFE)]))
                state["chunks"] += 1
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        elif kind == "unsafe":
            for i in range(arg if arg is not None else 3):
                self.event(chunk(SAFE[i % len(SAFE)]))
                state["chunks"] += 1
            self.event(chunk(PHRASE))
            state["chunks"] += 1
            state["phrase_sent"] = True
            for i in range(300):	# keep talking until the client hangs up
                time.sleep(0.02)
                self.event(chunk(SAFE[i % len(SAFE)]))
                state["chunks"] += 1
        elif kind == "slow":
            for i in range(arg or 4):
                time.sleep(0.1)
                self.event(chunk(SAFE[i % len(SAFE)]))
                state["chunks"] += 1
        else:
            for i in range(arg or 4):
                self.event(chunk(SAFE[i % len(SAFE)]))
                state["chunks"] += 1
        self.event(chunk(None, "stop"))
        if ((body or {}).get("stream_options") or {}).get("include_usage"):
            self.event({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1,
                        "model": "scripted", "choices": [],
                        "usage": {"prompt_tokens": 7, "completion_tokens": state["chunks"],
                                  "total_tokens": 7 + state["chunks"]}})
        self.event("[DONE]")
        self.send_chunked(b"")


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass	# a refused TLS handshake is what some tests want


def main():
    portfile, logfile = sys.argv[1], sys.argv[2]
    srv = Server(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.logfile = logfile
    if len(sys.argv) > 4:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    open(logfile, "a").close()
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
