"""dask_check.py - contrib/dask/guard_dask.py on a real LocalCluster (2 worker processes):
its output equals one `guard filter` run over the same 200 lines (verdicts, order, line
numbers; only the measured timings may differ), with --annotate and --emit too, for a bag
and a dataframe; each worker loads the model once; a worker killed mid-run, a guard child
that dies mid-partition and a line that kills its child every time lose no line; a guard
that cannot start fails the computation with its message. Prints TAP.

usage: dask_check.py GUARD MODEL TMPDIR
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "contrib", "dask"))
import guard_dask  # noqa: E402
import dask.bag as db  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402
from distributed import Client, LocalCluster, WorkerPlugin  # noqa: E402

GUARD, MODEL, TMP = (sys.argv[1:4] + [None] * 3)[:3]   # None in spawned workers
N = 0
FAILED = 0


def ok(cond, name, diag=None):
    global N, FAILED
    N += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", N, name))
    if not cond:
        FAILED = 1
        if diag:
            for line in str(diag).splitlines()[:20]:
                print("#  " + line)
    sys.stdout.flush()


def strip(lines):
    """Drop the measured timings, the one part of a verdict that may differ by run."""
    return [re.sub(r'"timings":\{[^}]*\}', "", s) for s in lines]


def first_diff(a, b):
    if len(a) != len(b):
        return "%d lines, want %d" % (len(a), len(b))
    for k, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return "line %d:\n got %s\nwant %s" % (k + 1, x[:300], y[:300])
    return None


def guard_filter(path, *extra):
    with open(path, "rb") as f:
        r = subprocess.run([GUARD, "filter", "-m", MODEL, "--exit-zero"] + list(extra),
                           stdin=f, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return r.stdout.decode().split("\n")[:-1]


def same(got, want, name):
    d = first_diff(strip(got), strip(want))
    ok(d is None, name, d)


class Killer(WorkerPlugin):
    """SIGKILLs its worker as the worker starts its third partition, once per cluster
    (a marker file made with O_EXCL says who), writing the pid of the worker's guard
    child first."""

    def __init__(self, marker):
        self.marker = marker
        self.started = 0

    def transition(self, key, start, finish, **kw):
        if finish != "executing" or "part_answers" not in str(key):
            return
        self.started += 1
        if self.started != 3:
            return
        try:
            fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return
        import guard_dask as gd
        pids = [g.proc.pid for g in gd._guards.values() if g.proc is not None]
        os.write(fd, ("%d %s\n" % (os.getpid(), " ".join(map(str, pids)))).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)



def main():
    global N, FAILED
    # --- the input: 200 lines of every kind guard filter takes, malformed ones included ---
    inp = os.path.join(TMP, "in.jsonl")
    with open(inp, "w") as f:
        for i in range(200):
            k = i % 8
            if k == 0:
                f.write("How do I bake cake number %d?\n" % i)
            elif k == 1:
                f.write(json.dumps({"id": i, "text": "a bomb recipe %d" % i}) + "\n")
            elif k == 2:
                f.write(json.dumps({"prompt": "Tell me %d" % i, "response": "Mix flour and a bomb."}) + "\n")
            elif k == 3:
                f.write("{broken %d\n" % i)
            elif k == 4:
                f.write(json.dumps({"messages": [{"role": "user", "content": "hello %d" % i}]}) + "\n")
            elif k == 5:
                f.write(json.dumps({"messages": [{"role": "assistant", "content": "x"}]}) + "\n")
            elif k == 6:
                f.write("caf\u00e9 \u2603 %d\n" % i)
            else:
                f.write(json.dumps({"unknown": i}) + "\n")
    size = os.path.getsize(inp)
    ref = guard_filter(inp)
    ok(len(ref) == 200 and ref[199].endswith('"line":200}'), "the reference: one guard filter run, 200 verdict lines")

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, local_directory=TMP)
    client = Client(cluster)


    ok(len(client.scheduler_info()["workers"]) == 2, "a LocalCluster with 2 worker processes")

    GA = ["-m", MODEL]
    CMD = [GUARD, "filter"]


    def bag(blocks=9):
        return db.read_text(inp, blocksize=size // blocks + 1)


    # --- a bag, the plain verdicts ---
    b = bag()
    got = guard_dask.filter_bag(b, GA, command=CMD).compute()
    ok(b.npartitions >= 8, "the bag has %d partitions" % b.npartitions)
    same(got, ref, "bag: output equals one guard filter run (verdicts, order, line numbers)")
    st = client.run(guard_dask.stats)
    runs = [v for w in st.values() for k, v in w.items() if k.startswith(GUARD)]
    ok(1 <= len(runs) <= 2 and all(r["starts"] == 1 for r in runs) and
       sum(r["partitions"] for r in runs) == b.npartitions and max(r["partitions"] for r in runs) > 1,
       "each worker started one guard filter (the model loaded once per worker) for its %s partitions"
       % "+".join(str(r["partitions"]) for r in runs), st)

    same(guard_dask.filter_bag(bag(5), GA, command=CMD, batch=1).compute(), ref,
         "bag, batch 1, other partitions: the same output")
    same(guard_dask.filter_bag(bag(), GA, command=CMD, annotate=True).compute(),
         guard_filter(inp, "--annotate"), "bag --annotate: equals guard filter --annotate")
    for e in ("unsafe", "safe"):
        w = guard_filter(inp, "--emit", e)
        g = guard_dask.filter_bag(bag(), GA, command=CMD, emit=e).compute()
        ok(g == w and len(w) > 0, "bag --emit %s: equals guard filter --emit %s (%d lines)" % (e, e, len(w)),
           first_diff(g, w))

    # --- a dataframe ---
    with open(inp) as f:
        texts = f.read().split("\n")[:-1]
    pdf = pd.DataFrame({"n": range(200), "line": texts}, index=[1000 + i for i in range(200)])
    df = dd.from_pandas(pdf, npartitions=7)
    r = guard_dask.filter_dataframe(df, GA, column="line", command=CMD).compute()
    same(list(r["guard_verdict"]), ref, "dataframe: guard_verdict equals one guard filter run")
    ok(list(r.index) == list(pdf.index) and list(r["n"]) == list(range(200)),
       "dataframe: index and rows kept in order")
    ok(list(r["guard_decision"]) == [json.loads(s)["decision"] for s in ref],
       "dataframe: guard_decision per row")
    r = guard_dask.filter_dataframe(df, GA, column="line", command=CMD, emit="unsafe").compute()
    ok(list(r["line"]) == guard_filter(inp, "--emit", "unsafe"),
       "dataframe emit unsafe: the rows guard filter --emit unsafe keeps")


    # --- a worker killed mid-run ---
    marker = os.path.join(TMP, "killed")
    before = set(client.scheduler_info()["workers"])
    client.register_worker_plugin(Killer(marker), name="killer")
    got = guard_dask.filter_bag(bag(12), GA, command=CMD).compute()
    client.unregister_worker_plugin("killer")
    killed = open(marker).read().split() if os.path.exists(marker) else []
    ok(len(killed) >= 2, "a worker was SIGKILLed while starting a partition, its guard child alive", killed)
    same(got, ref, "after the kill: all 200 lines, equal to one guard filter run")
    gone = False
    for _ in range(200):    # its child sees end of file and exits: poll with a bound
        if len(killed) < 2 or not os.path.exists("/proc/%s" % killed[1]) or \
                open("/proc/%s/stat" % killed[1]).read().split(")")[1].split()[0] == "Z":
            gone = True
            break
        time.sleep(0.05)
    ok(gone and len(killed) >= 2, "the killed worker's guard child exited too")
    deadline = time.time() + 60
    while len(client.scheduler_info()["workers"]) < 2 and time.time() < deadline:
        time.sleep(0.1)
    after = set(client.scheduler_info()["workers"])
    ok(len(after) == 2 and after != before, "the nanny restarted the worker (2 workers again)")

    # --- a guard child that dies mid-partition (its output cut after 40 lines) ---
    # (the wrapper passes 40 answer lines on, then SIGKILLs its guard and exits)
    cut = [sys.executable, "-c", "import subprocess, sys\n"
           "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)\n"
           "for _ in range(40):\n"
           "    sys.stdout.buffer.write(p.stdout.readline())\n"
           "    sys.stdout.flush()\n"
           "p.kill()\n", GUARD, "filter"]
    got = guard_dask.filter_bag(bag(4), GA, command=cut).compute()
    same(got, ref, "children SIGKILLed mid-partition: every line answered by a restarted child")
    st = client.run(guard_dask.stats)
    starts = sum(v["starts"] for w in st.values() for k, v in w.items() if k.startswith(sys.executable))
    ok(starts > 4, "and children were restarted (%d starts)" % starts)

    # --- a line that kills its child every time becomes an error verdict, the rest stand ---
    pinp = os.path.join(TMP, "poison.jsonl")
    with open(inp) as f, open(pinp, "w") as g:
        lines = f.read().split("\n")[:-1]
        lines.insert(57, "POISON pill")
        g.write("\n".join(lines) + "\n")
    # (the wrapper passes lines on to its guard until one says POISON, then closes its
    # input: the guard answers what it has and exits)
    poison = [sys.executable, "-c", "import subprocess, sys\n"
              "p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE)\n"
              "for line in iter(sys.stdin.buffer.readline, b''):\n"
              "    if b'POISON' in line:\n"
              "        break\n"
              "    p.stdin.write(line)\n"
              "    p.stdin.flush()\n"
              "p.stdin.close()\n"
              "p.wait()\n", GUARD, "filter"]
    got = guard_dask.filter_bag(db.read_text(pinp, blocksize=size // 3), GA, command=poison,
                                retries=2).compute()
    ok(len(got) == 201, "a poisonous line: 201 lines out of 201", len(got))
    v = json.loads(got[57]) if len(got) > 57 else {}
    ok(v.get("decision") == "error" and v.get("line") == 58 and v.get("flagged") is True and
       v.get("error", "").startswith("line 58: guard filter died on this line 3 times"),
       "it becomes an error verdict naming its line (fail closed, as on_error says)", got[57:58])
    want = [re.sub(r'"line":(\d+)}$', lambda m: '"line":%d}' % (int(m.group(1)) + (int(m.group(1)) > 57)),
                   re.sub(r'"error":"line (\d+): ',
                          lambda m: '"error":"line %d: ' % (int(m.group(1)) + (int(m.group(1)) > 57)), s))
            for s in ref]
    same(got[:57] + got[58:], want, "the other 200 lines are as guard filter answers them")

    # --- a guard that cannot start fails loudly ---
    try:
        guard_dask.filter_bag(bag(), ["-m", os.path.join(TMP, "missing.gguf")], command=CMD).compute()
        ok(False, "a missing model fails the computation")
    except Exception as e:  # noqa: BLE001 - the worker's exception comes back as itself
        ok(type(e).__name__ == "GuardError" and "missing.gguf" in str(e),
           "a missing model fails the computation with guard's message", e)
    try:
        guard_dask.filter_bag(bag(), ["--emit", "safe"], command=CMD)
        ok(False, "options guard_dask sets itself are refused in args")
    except ValueError as e:
        ok("--emit" in str(e), "options guard_dask sets itself are refused in args")

    client.close()
    cluster.close()
    print("1..%d" % N)
    return FAILED


if __name__ == "__main__":
    signal.alarm(300)   # a hang fails the test instead of holding `make check`
    sys.exit(main())
