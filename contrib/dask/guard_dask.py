"""guard_dask - filter a Dask bag or dataframe of JSONL lines through `guard filter`.

Each worker process keeps one long-lived `guard filter` child (so the model is mapped once
per worker, not once per partition) and feeds it every partition it is given. What comes
back is exactly what one `guard filter` run over the whole input would print: one verdict
line per input line, in input order, with the input's global line numbers. An item that
fails (the child dies on it, or does not answer within `timeout`) becomes an error verdict
under the policy's on_error; no line is ever dropped. A worker that dies is Dask's business:
the scheduler re-runs its partitions on the others, and its child exits with it (end of
file on its standard input).

    import dask.bag as db
    import guard_dask
    lines = db.read_text("logs/*.jsonl", blocksize="16MiB")
    out = guard_dask.filter_bag(lines, ["-m", "llama-guard-3-1b.gguf", "--policy", "p.yaml"])
    out.to_textfiles("verdicts/*.jsonl")

See README.md beside this file.
"""

import collections
import fcntl
import json
import operator
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["GuardError", "Options", "filter_lines", "filter_bag", "filter_dataframe", "stats"]

# A line guard filter answers with an error verdict without running the model: sent to
# make it run a partial batch (it waits for a full one otherwise) and to learn the policy's
# error verdict.
PAD = b"{}"

# guard filter options this module sets itself
_OWN = ("--batch", "--annotate", "--emit", "--exit-zero", "--socket")


class GuardError(RuntimeError):
    """guard filter could not be started: no verdict can be had from this worker."""


_Opts = collections.namedtuple(
    "_Opts", "args command batch annotate emit retries timeout")


def Options(args, command=None, batch=4, annotate=False, emit=None, retries=2, timeout=600):
    """What to run and how (checked): hashable, so it also names the child a worker keeps."""
    args = tuple(str(a) for a in args)
    for a in args:
        if a.split("=", 1)[0] in _OWN:
            raise ValueError("guard_dask: %s is set by guard_dask, not in args" % a)
    if not 1 <= int(batch) <= 64:
        raise ValueError("guard_dask: batch %r is outside [1, 64]" % (batch,))
    if emit not in (None, "safe", "unsafe"):
        raise ValueError("guard_dask: emit %r is not None, 'safe' or 'unsafe'" % (emit,))
    if annotate and emit:
        raise ValueError("guard_dask: annotate and emit exclude each other")
    if int(retries) < 0 or (timeout is not None and not float(timeout) > 0):
        raise ValueError("guard_dask: retries must be >= 0 and timeout > 0")
    return _Opts(args, tuple(command) if command else ("guard", "filter"), int(batch),
                 bool(annotate), emit, int(retries), timeout)


def _argv(opts):
    a = list(opts.command) + list(opts.args) + ["--batch", str(opts.batch), "--exit-zero"]
    return a + ["--annotate"] if opts.annotate else a


class _Died(Exception):
    """The child stopped answering: how, for the error verdict."""


class _Guard:
    """One guard filter child and the lines written to it that it has not answered yet."""

    def __init__(self, opts):
        self.opts = opts
        self.proc = None
        self.template = None    # the policy's error verdict, from the child's own answer
        self.lock = threading.Lock()
        self.starts = 0
        self.partitions = 0
        self.lines = 0
        fd, path = tempfile.mkstemp(prefix="guard-dask-", suffix=".err")
        os.unlink(path)
        # O_APPEND: the child writes at the end even after we truncate the file
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        self.errfd = fd

    # --- the child ---------------------------------------------------------------------

    def _start(self):
        os.ftruncate(self.errfd, 0)
        try:
            self.proc = subprocess.Popen(_argv(self.opts), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self.errfd)
        except OSError as e:
            raise GuardError("guard_dask: cannot run %s: %s" % (self.opts.command[0], e))
        self.starts += 1
        self.sent = 0           # lines written to this child: its own line numbers
        self.queue = collections.deque()    # (its line number, item index or None for a pad)
        self.rbuf = b""
        self.ready = collections.deque()    # whole answer lines read
        self.rfd = self.proc.stdout.fileno()
        # the first answers come once the model is loaded: a batch of pads proves it
        # works and gives the error verdict this policy makes
        for _ in range(self.opts.batch):
            self._send(None, PAD)
        try:
            self.proc.stdin.flush()
            first = None
            deadline = None
            if self.opts.timeout is not None:
                deadline = time.monotonic() + self.opts.timeout
            for _ in range(self.opts.batch):
                line = self._read(deadline)
                self.queue.popleft()
                first = first or line
        except (_Died, OSError) as e:
            self._kill()
            raise GuardError("guard_dask: %s failed to start (%s): %s" % (
                " ".join(_argv(self.opts)), e, self._err_tail() or "no message"))
        v = json.loads(first)
        v = v["guard"] if self.opts.annotate else v
        v.pop("line", None)
        self.template = v

    def _kill(self):
        if self.proc is None:
            return
        try:
            self.proc.kill()
        except OSError:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.proc.wait()
        self.proc = None

    def _how(self):
        """How the child ended, once its output reached end of file."""
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if rc < 0:
            return "killed by signal %d" % -rc
        return "exit status %d" % rc

    def _err_tail(self, n=400):
        size = os.fstat(self.errfd).st_size
        return os.pread(self.errfd, n, max(0, size - n)).decode("utf-8", "replace").strip()

    def _send(self, idx, line):
        self.sent += 1
        self.queue.append((self.sent, idx))     # before the line: its answer may come at once
        self.proc.stdin.write(line + b"\n")

    def _read(self, deadline):
        """One answer line; _Died at end of file or past the deadline."""
        while not self.ready:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            r, _, _ = select.select([self.rfd], [], [], wait)
            if not r:
                self.proc.kill()
                raise _Died("no answer within %g s" % self.opts.timeout)
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                raise _Died(self._how())
            lines = (self.rbuf + chunk).split(b"\n")
            self.rbuf = lines.pop()     # the start of a line still to come
            self.ready.extend(lines)
        return self.ready.popleft()

    # --- one partition -----------------------------------------------------------------

    def _exchange(self, lines, idxs, out):
        """Send items idxs (then pads, to run a partial batch) from a thread and collect
        their answers into out. _Died if the child stops: out holds what came, and
        self.written says how many items it may have seen."""
        self.written = 0

        def writer():
            try:
                for i in idxs:
                    self._send(i, lines[i])
                    self.written += 1
                for _ in range(self.opts.batch - 1):
                    self._send(None, PAD)
                self.proc.stdin.flush()
            except OSError:
                pass    # the child is gone: the reader says how

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        want = len(idxs)
        try:
            while want:
                deadline = None
                if self.opts.timeout is not None:
                    deadline = time.monotonic() + self.opts.timeout
                line = self._read(deadline)
                no, idx = self.queue.popleft()
                if idx is not None:
                    out[idx] = ("g", line, no)
                    want -= 1
        finally:
            if want:
                self.proc.kill()
            t.join()

    def run(self, lines):
        """Answers for lines (bytes without newline), in order: ("g", answer, the child's
        line number) or ("x", reason) for an item no child could answer."""
        n = len(lines)
        out = [None] * n
        tries = collections.Counter()
        careful = 0     # items below this were in flight when a child died: one at a time
        for k, line in enumerate(lines):
            if b"\n" in line:
                out[k] = ("x", "the item has a newline inside")
        if n and self.proc is None:
            self._start()   # also for the error verdict's template
        i = 0
        while i < n:
            if out[i] is not None:
                i += 1
                continue
            if self.proc is None:
                self._start()
            if i < careful:
                idxs = [i]
            else:
                idxs = [k for k in range(i, n) if out[k] is None]
            try:
                self._exchange(lines, idxs, out)
                i = idxs[-1] + 1
                continue
            except _Died as e:
                why = str(e)
            self._kill()
            first = next(k for k in idxs if out[k] is None)
            if len(idxs) > 1:
                # which item killed it is unknown: those it may have seen go one by one
                seen = idxs[self.written - 1] if self.written else first
                careful = max(careful, seen + 1, first + 1)
                i = first
                continue
            tries[first] += 1
            if tries[first] > self.opts.retries:
                out[first] = ("x", "guard filter died on this line %d times (last: %s)"
                              % (tries[first], why))
            i = first
        self.partitions += 1
        self.lines += n
        if os.fstat(self.errfd).st_size > (1 << 20):
            os.ftruncate(self.errfd, 0)
        return out


_guards = {}
_guards_lock = threading.Lock()


def _guard(opts):
    with _guards_lock:
        g = _guards.get(opts)
        if g is None:
            g = _guards[opts] = _Guard(opts)
        return g


def stats():
    """This process's children: {command line: {pid, starts, partitions, lines}}.
    On a cluster: client.run(guard_dask.stats)."""
    with _guards_lock:
        return {" ".join(_argv(o)): {"pid": g.proc.pid if g.proc else None,
                                     "starts": g.starts, "partitions": g.partitions,
                                     "lines": g.lines} for o, g in _guards.items()}


def _close_all():
    for g in list(_guards.values()):
        if g.proc is not None:
            try:
                g.proc.stdin.close()
                g.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                g._kill()


import atexit  # noqa: E402
atexit.register(_close_all)


# --- turning answers into output lines ------------------------------------------------

def _as_bytes(item):
    if isinstance(item, bytes):
        b = item
    else:
        b = str(item).encode("utf-8", "surrogateescape")
    return b[:-1] if b.endswith(b"\n") else b


def _answers(items, opts):
    lines = [_as_bytes(x) for x in items]
    g = _guard(opts)
    with g.lock:
        ans = g.run(lines)
        template = g.template
    return lines, ans, template


def _verdicts(d, annotate):
    v = d.get("guard") if annotate else d
    if not isinstance(v, dict):
        return []
    return [v] + [v[k] for k in ("request", "response") if isinstance(v.get(k), dict)]


def _renumber(text, old, new, annotate):
    """The child's answer with its line number old made the global number new: the
    child's own bytes with the numbers replaced, or the same value re-encoded when a
    textual replacement cannot be proved right."""
    s = text.decode("utf-8", "surrogateescape")
    if old == new:
        return s    # (str like every other output line, whichever worker ran it)
    want = json.loads(s)
    if not annotate and want.get("line") == old:
        want["line"] = new
    pre, npre = "line %d: " % old, "line %d: " % new
    for v in _verdicts(want, annotate):
        if isinstance(v.get("error"), str) and v["error"].startswith(pre):
            v["error"] = npre + v["error"][len(pre):]
    t = s
    if not annotate and t.endswith(',"line":%d}' % old):
        t = t[:-len(',"line":%d}' % old)] + ',"line":%d}' % new
    t = t.replace('"error":"%s' % pre, '"error":"%s' % npre)
    if json.loads(t) == want:
        return t
    return json.dumps(want, ensure_ascii=False, separators=(",", ":"))


def _synthesize(line, reason, no, template, annotate):
    v = dict(template)
    v["error"] = "line %d: %s" % (no, reason)
    if not annotate:
        v["line"] = no
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    try:
        d = json.loads(line)
    except ValueError:
        d = None
    if not isinstance(d, dict):
        d = {"text": line.decode("utf-8", "surrogateescape")}
    d["guard"] = v
    return json.dumps(d, ensure_ascii=False, separators=(",", ":"))


def _output(lines, ans, template, first, opts):
    """Output lines for answers ans of lines numbered from first + 1."""
    out = []
    for k, a in enumerate(ans):
        no = first + k + 1
        if a[0] == "g":
            out.append(_renumber(a[1], a[2], no, opts.annotate))
        else:
            out.append(_synthesize(lines[k], a[1], no, template, opts.annotate))
    return out


def _flagged(ans, template):
    """Each answer's flagged: an item no child answered is flagged as the policy's
    on_error says (the template's)."""
    return [template.get("flagged") is True if a[0] == "x" else
            json.loads(a[1]).get("flagged") is True for a in ans]


def _kept(lines, ans, template, opts):
    """emit: the input lines whose verdict is (unsafe) or is not (safe) flagged."""
    want = opts.emit == "unsafe"
    return [line.decode("utf-8", "surrogateescape")
            for line, f in zip(lines, _flagged(ans, template)) if f == want]


def filter_lines(items, args, **kw):
    """guard filter over an iterable of lines in this process (what each partition does):
    a list of output lines (str, no newline). kw: see Options."""
    opts = Options(args, **kw)
    lines, ans, template = _answers(list(items), opts)
    if opts.emit:
        return _kept(lines, ans, template, opts)
    return _output(lines, ans, template, 0, opts)


# --- Dask ---------------------------------------------------------------------------

def _part_answers(items, opts):
    lines, ans, template = _answers(list(items), opts)
    if opts.emit:
        return _kept(lines, ans, template, opts)
    return (lines, ans, template)


def _part_output(part, first, opts):
    return _output(part[0], part[1], part[2], first, opts)


def _count(part):
    return len(part[0])


def _numbered(parts, opts, finish):
    """Delayed outputs of parts, each numbered after the lines of those before it: a
    chain of small additions, so partitions still run in parallel."""
    from dask import delayed
    out, first = [], 0
    for p in parts:
        out.append(delayed(finish, pure=True)(p, first, opts))
        first = delayed(operator.add, pure=True)(first, delayed(_count, pure=True)(p))
    return out


def filter_bag(bag, args, **kw):
    """A bag of output lines (str): guard filter's verdict lines (or, with annotate, the
    input objects with a "guard" field; with emit, the kept input lines), in input order,
    numbered as one run over the whole bag would number them. args: guard filter's
    arguments (e.g. ["-m", MODEL, "--policy", P]); kw: command (default ["guard",
    "filter"]), batch, annotate, emit, retries (deaths on one line before it becomes an
    error verdict), timeout (seconds to wait for an answer before the child counts as dead,
    default 600; None: no limit)."""
    import dask.bag as db
    opts = Options(args, **kw)
    parts = bag.map_partitions(_part_answers, opts)
    if opts.emit:
        return parts
    return db.from_delayed(_numbered(parts.to_delayed(optimize_graph=False), opts,
                                     _part_output))


def _frame_lines(pdf, column):
    if column is not None:
        return [str(x) for x in pdf[column]]
    if len(pdf) == 0:
        return []
    return pdf.to_json(orient="records", lines=True).rstrip("\n").split("\n")


def _frame_answers(pdf, column, opts):
    lines, ans, template = _answers(_frame_lines(pdf, column), opts)
    return (lines, ans, template, pdf)


def _frame_output(part, first, opts):
    lines, ans, template, pdf = part
    if opts.emit:
        want = opts.emit == "unsafe"
        return pdf[[f == want for f in _flagged(ans, template)]]
    out = _output(lines, ans, template, first, opts)
    dec, flag = [], []
    for s in out:
        d = json.loads(s)
        dec.append(d.get("decision"))
        flag.append(d.get("flagged") is True)
    return pdf.assign(guard_decision=dec, guard_flagged=flag, guard_verdict=out)


def filter_dataframe(df, args, column=None, **kw):
    """A dataframe like df, same index and partitions, with the columns guard_decision,
    guard_flagged and guard_verdict (guard filter's verdict line, numbered by row
    position in df); with emit="safe"|"unsafe", df's rows whose verdict is not or is
    flagged. The input of a row is its column `column` (a JSONL line or plain text), or
    without one, the row as a JSON object ({"text": ...} or {"messages": ...})."""
    import dask.dataframe as dd
    import pandas as pd
    from dask import delayed
    opts = Options(args, **kw)
    if opts.annotate:
        raise ValueError("guard_dask: annotate is for bags; a dataframe gets guard_ columns")
    parts = [delayed(_frame_answers, pure=True)(p, column, opts) for p in df.to_delayed()]
    if opts.emit:
        meta = df._meta
    else:
        meta = df._meta.assign(guard_decision=pd.Series(dtype=object),
                               guard_flagged=pd.Series(dtype=bool),
                               guard_verdict=pd.Series(dtype=object))
    return dd.from_delayed(_numbered(parts, opts, _frame_output), meta=meta,
                           divisions=df.divisions)


def main(argv=None):
    """python3 guard_dask.py [--scheduler ADDR | --workers N] [--blocksize B] [--batch N]
    [--annotate | --emit safe|unsafe] INPUT... -- GUARD-FILTER-ARGS...: the output lines
    of all INPUT files (JSONL, .gz too) on stdout, in order."""
    import argparse
    import dask.bag as db
    from distributed import Client, LocalCluster
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print("usage: guard_dask.py [options] INPUT... -- -m MODEL [--policy P]", file=sys.stderr)
        return 2
    cut = argv.index("--")
    ap = argparse.ArgumentParser(prog="guard_dask.py")
    ap.add_argument("--scheduler")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--blocksize", default="16MiB")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--annotate", action="store_true")
    ap.add_argument("--emit", choices=("safe", "unsafe"))
    ap.add_argument("--guard", default="guard", help="the guard program")
    ap.add_argument("inputs", nargs="+")
    o = ap.parse_args(argv[:cut])
    # the workers must import this file as the module guard_dask (as __main__ its functions
    # would travel by value, each task with its own table of children)
    import guard_dask as gd
    here = os.path.dirname(os.path.abspath(gd.__file__))
    if o.scheduler:
        client = Client(o.scheduler)
        client.upload_file(gd.__file__)
    else:
        os.environ["PYTHONPATH"] = here + os.pathsep + os.environ.get("PYTHONPATH", "")
        client = Client(LocalCluster(n_workers=o.workers, threads_per_worker=1,
                                     dashboard_address=None))
    bag = db.read_text(o.inputs, blocksize=None if any(p.endswith(".gz") for p in o.inputs)
                       else o.blocksize)
    out = gd.filter_bag(bag, argv[cut + 1:], command=[o.guard, "filter"], batch=o.batch,
                     annotate=o.annotate, emit=o.emit)
    futures = client.compute(out.to_delayed())
    for f in futures:   # in order; later partitions keep running meanwhile
        for line in f.result():
            sys.stdout.write(line + "\n")
        f.release()
    sys.stdout.flush()
    client.close()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    raise SystemExit(main())
