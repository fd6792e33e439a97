#!/usr/bin/env python3
"""oai_client.py - an OpenAI-API client for the tests, from the Python standard library only
(urllib / http.client): a request to guardd's HTTP front over TCP or a Unix socket, and for
streams the server-sent events parsed exactly as the openai SDK parses them (openai-python's
_streaming.py: SSEDecoder._iter_chunks / iter_bytes / decode, and Stream.__stream__: stop at
data "[DONE]", raise on an event whose data holds "error").

Usage: oai_client.py [--unix PATH | --base URL] [--key KEY] [--header 'Name: value']...
                     METHOD PATH [BODY | @FILE]
Prints one JSON object: {"status", "headers", "body"} for a plain answer, or for an event
stream {"status", "events": [data...], "chunks": [...], "done": true|false, "text": the
deltas' content joined, "finish_reason", "usage", "guardd", "error": the APIError the SDK
would raise (or null)}.
"""
import http.client
import json
import socket
import sys
import urllib.parse
import urllib.request


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class SSEDecoder:
    """openai-python's SSEDecoder, line for line in behaviour."""

    def __init__(self):
        self._event = None
        self._data = []
        self._last_event_id = None
        self._retry = None

    def iter_bytes(self, iterator):
        for chunk in self._iter_chunks(iterator):
            # split before decoding so splitlines() only uses \r and \n
            for raw_line in chunk.splitlines():
                line = raw_line.decode("utf-8")
                sse = self.decode(line)
                if sse:
                    yield sse

    def _iter_chunks(self, iterator):
        data = b""
        for chunk in iterator:
            for line in chunk.splitlines(keepends=True):
                data += line
                if data.endswith((b"\r\r", b"\n\n", b"\r\n\r\n")):
                    yield data
                    data = b""
        if data:
            yield data

    def decode(self, line):
        if not line:
            if not self._event and not self._data and not self._last_event_id and \
                    self._retry is None:
                return None
            sse = {"event": self._event, "data": "\n".join(self._data),
                   "id": self._last_event_id, "retry": self._retry}
            self._event = None
            self._data = []
            self._retry = None
            return sse
        if line.startswith(":"):
            return None
        fieldname, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if fieldname == "event":
            self._event = value
        elif fieldname == "data":
            self._data.append(value)
        elif fieldname == "id":
            if "\0" not in value:
                self._last_event_id = value
        elif fieldname == "retry":
            try:
                self._retry = int(value)
            except (TypeError, ValueError):
                pass
        return None


def stream_summary(status, byte_chunks):
    """What a program using the SDK's chat stream sees."""
    out = {"status": status, "events": [], "chunks": [], "done": False, "text": "",
           "finish_reason": None, "usage": None, "guardd": None, "error": None}
    for sse in SSEDecoder().iter_bytes(byte_chunks):
        out["events"].append(sse["data"])
        if sse["data"].startswith("[DONE]"):
            out["done"] = True
            break
        data = json.loads(sse["data"])
        if isinstance(data, dict) and data.get("error"):
            err = data["error"]
            msg = err.get("message") if isinstance(err, dict) else None
            out["error"] = msg if isinstance(msg, str) and msg else \
                "An error occurred during streaming"
            break
        out["chunks"].append(data)
        for ch in data.get("choices") or []:
            delta = ch.get("delta") or {}
            if isinstance(delta.get("content"), str):
                out["text"] += delta["content"]
            if ch.get("finish_reason") is not None:
                out["finish_reason"] = ch["finish_reason"]
        if data.get("usage") is not None:
            out["usage"] = data["usage"]
        if data.get("guardd") is not None:
            out["guardd"] = data["guardd"]
    return out


def main(argv):
    unix = base = key = None
    headers = {}
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--unix":
            unix = argv[i + 1]
            i += 2
        elif a == "--base":
            base = argv[i + 1]
            i += 2
        elif a == "--key":
            key = argv[i + 1]
            i += 2
        elif a == "--header":
            n, _, v = argv[i + 1].partition(":")
            headers[n.strip()] = v.strip()
            i += 2
        else:
            args.append(a)
            i += 1
    if len(args) not in (2, 3) or (unix is None) == (base is None):
        sys.stderr.write(__doc__)
        return 2
    method, path = args[0], args[1]
    body = None
    if len(args) == 3:
        body = args[2]
        if body.startswith("@"):
            with open(body[1:], "rb") as f:
                body = f.read()
        else:
            body = body.encode()
        headers["Content-Type"] = "application/json"
    if key is not None:
        headers["Authorization"] = "Bearer " + key
    if unix is not None:
        conn = UnixConnection(unix)
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        status, hdrs = resp.status, dict(resp.getheaders())
    else:
        req = urllib.request.Request(base.rstrip("/") + path, data=body, headers=headers,
                                     method=method)
        try:
            resp = urllib.request.urlopen(req, timeout=60)
        except urllib.error.HTTPError as e:
            resp = e
        status, hdrs = resp.status, dict(resp.getheaders())
    ctype = {k.lower(): v for k, v in hdrs.items()}.get("content-type", "")
    if ctype.startswith("text/event-stream"):
        def chunks():
            while True:
                b = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                if not b:
                    return
                yield b
        out = stream_summary(status, chunks())
    else:
        raw = resp.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        out = {"status": status, "headers": hdrs, "body": parsed}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
