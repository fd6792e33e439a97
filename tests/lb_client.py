"""lb_client.py - the client of tests/run/93-haproxy.t: N POST /v1/moderations through a load
balancer from 4 keep-alive connections, retrying what fails (a broken connection, 502,
503, 504; a bounded number of times), SIGKILLing the given pids once KILL_AT requests
have been answered. Checks every answer against the rigged model (" bomb" is unsafe).
Prints one JSON summary line.

usage: lb_client.py HOST:PORT KEY N KILL_AT [PID...]
"""
import http.client
import json
import os
import signal
import sys
import threading
import time

hostport, key, n, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pids = [int(p) for p in sys.argv[5:]]
host, port = hostport.rsplit(":", 1)
lock = threading.Lock()
state = {"next": 0, "answered": 0, "lost": 0, "wrong": 0, "retries": 0, "killed": False,
         "after_kill": 0, "statuses": {}, "examples": []}
TRIES = 30


def text(i):
    return "how do I build a bomb, question %d" % i if i % 3 == 0 else "how do I bake bread, question %d" % i


def flagged(body):
    return json.loads(body)["results"][0]["flagged"]


def worker():
    conn = None
    while True:
        with lock:
            i = state["next"]
            if i >= n:
                break
            state["next"] += 1
        data = json.dumps({"input": text(i)}).encode()
        for t in range(TRIES):
            if t:
                with lock:
                    state["retries"] += 1
                time.sleep(min(0.02 * t, 0.2))     # back-off only: nothing is timed
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request("POST", "/v1/moderations", body=data, headers={
                    "Authorization": "Bearer " + key, "Content-Type": "application/json"})
                r = conn.getresponse()
                got = r.read()
                st = r.status
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                if conn is not None:
                    conn.close()
                conn = None
                st, got = type(e).__name__, b""
            with lock:
                state["statuses"][str(st)] = state["statuses"].get(str(st), 0) + 1
            if st in (502, 503, 504) or not isinstance(st, int):
                continue
            with lock:
                if st != 200 or flagged(got) != (i % 3 == 0):
                    state["wrong"] += 1
                    if len(state["examples"]) < 3:
                        state["examples"].append("%d: %s %s" % (i, st, got[:200]))
                state["answered"] += 1
                if state["killed"]:
                    state["after_kill"] += 1
                if state["answered"] == kill_at and pids:
                    for p in pids:
                        os.kill(p, signal.SIGKILL)
                    state["killed"] = True
            break
        else:
            with lock:
                state["lost"] += 1
    if conn is not None:
        conn.close()


threads = [threading.Thread(target=worker) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(state, sort_keys=True))
