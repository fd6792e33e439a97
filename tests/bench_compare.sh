#!/bin/sh
# bench_compare.sh - make bench-compare LLAMACPP=DIR: guard against llama.cpp (the measuring
# instrument, a CPU-only build outside this tree: DIR or DIR/bin holds llama-bench,
# llama-quantize and llama-server) on the same Llama Guard 3 1B-shape files (hash-noise
# weights), in one run, with this run's OpenBLAS SGEMM rate beside them. The machine's speed
# drifts up to 5x between hours, so only ratios measured side by side mean anything (issue 9,
# "Performance targets"). Prints figures and whether each target is met; asserts nothing.
#   1. files: BF16 from tests/mkmodel; Q8_0 and Q4_K_M from BF16 by llama.cpp's llama-quantize
#      (both sides run these: same file). When guard quantize exists, guard also quantizes the
#      BF16 file and guard runs its own files too (printed apart; the targets use the same file).
#   2. prefill 512 and decode 32, 2 threads, BENCH_ROUNDS (3) rounds: in each round the SGEMM
#      rate, then per type guard bench and llama-bench back to back, the order alternating.
#      Decode is timed twice on each side, at the same depth: from an empty context
#      (llama-bench's tg32; guard bench -p 1) and after a 512-token prompt (llama-bench -d 512;
#      guard bench -p 512, whose decode follows its prefill), the depth a verdict decodes at.
#      A type one side cannot run prints "blocked: <its error>" instead of a ratio.
#   3. a prefix-cached verdict for a 40-token user message: guardd (one per type guard loads)
#      over its socket against llama-server on the BF16 file with cache_prompt, its slot
#      holding only the policy prefix (the prefix alone is sent first, then the full prompt,
#      and the second request is timed). Both evaluate the same token ids: guard prompt --ids
#      plus the "\n\n" guard feeds as the answer's first token; llama-server samples one token
#      (n_predict 1), which is the token guard reads the verdict from.
# BENCH_VERDICTS (5): timed verdicts per server, each a different message of 40 tokens.
set -eu
B=${BUILD:-build}
M=$B/models
PY=/usr/bin/python3
ROUNDS=${BENCH_ROUNDS:-3}
NV=${BENCH_VERDICTS:-5}
L=${LLAMACPP:-}
if [ -z "$L" ]; then
	echo "usage: make bench-compare LLAMACPP=DIR (a CPU build of llama.cpp: DIR or DIR/bin" \
	    "holds llama-bench, llama-quantize and llama-server)" >&2
	exit 2
fi
LB=
for d in "$L/bin" "$L"; do
	if [ -x "$d/llama-bench" ]; then LB=$d; break; fi
done
for p in llama-bench llama-quantize; do
	if [ -z "$LB" ] || [ ! -x "$LB/$p" ]; then
		echo "bench-compare: no executable $p in $L/bin or $L" >&2
		exit 2
	fi
done
mkdir -p "$M"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

# --- 1. the files ---------------------------------------------------------------------------
BF16=$M/lg3-1b-bf16.gguf
if [ ! -f "$BF16" ]; then
	echo "bench-compare: building $BF16 (Llama Guard 3 1B shape, BF16)"
	"$B/tests/mkmodel" lg3-1b gguf "$BF16.tmp" bf16
	mv "$BF16.tmp" "$BF16"
fi
# a file is written under a temporary name and renamed: an interrupted run leaves none half made
quantize_lcpp() {	# quantize_lcpp TYPE OUT
	[ -f "$2" ] && return 0
	echo "bench-compare: $LB/llama-quantize $BF16 $2 $1"
	if ! "$LB/llama-quantize" "$BF16" "$2.tmp" "$1" 2 > $T/q.log 2>&1; then
		echo "bench-compare: llama-quantize $1 failed:" >&2
		tail -5 $T/q.log >&2
		rm -f "$2.tmp"
		return 1
	fi
	mv "$2.tmp" "$2"
}
OURQ=
if ./guard quantize -h 2>&1 | grep -q "usage: guard quantize"; then
	OURQ=yes
fi
quantize_guard() {	# quantize_guard TYPE OUT: sets the file's blocked note on failure
	[ -f "$2" ] && return 0
	echo "bench-compare: ./guard quantize $BF16 $2 $1"
	if ! ./guard quantize "$BF16" "$2.tmp" "$1" > $T/gq.log 2>&1; then
		tail -1 $T/gq.log | tr '\n' ' ' > "$T/oblocked.$1"
		rm -f "$2.tmp"
		return 0
	fi
	mv "$2.tmp" "$2"
}
TYPES="BF16 Q8_0 Q4_K_M"
file_of() {	# file_of TYPE [guard]: the file guard (with "guard": guard's own) and llama.cpp run
	case $1 in
	BF16) echo "$BF16" ;;
	*) if [ "${2:-}" = guard ]; then echo "$M/lg3-1b-$(echo $1 | tr A-Z a-z)-guard.gguf"
	   else echo "$M/lg3-1b-$(echo $1 | tr A-Z a-z)-llamacpp.gguf"; fi ;;
	esac
}
for t in Q8_0 Q4_K_M; do
	quantize_lcpp $t "$(file_of $t)" || echo "llama-quantize: $(tail -1 $T/q.log)" > "$T/lblocked.$t"
	if [ -n "$OURQ" ]; then quantize_guard $t "$(file_of $t guard)"; fi
done
if [ -n "$OURQ" ]; then
	echo "bench-compare: guard quantize exists: guard also runs its own Q8_0 and Q4_K_M files"
else
	echo "bench-compare: no guard quantize in ./guard: both sides run llama-quantize's files"
fi

# --- 2. prefill and decode, interleaved -----------------------------------------------------
echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) (other work" \
    "shares these CPUs); llama.cpp: $LB"
echo "== prefill 512 and decode 32, 2 threads, $ROUNDS rounds; per round and type guard and" \
    "llama.cpp back to back, the order alternating"
run_guard() {	# run_guard TYPE ROUND KIND(g|o) FILE: prefill 512 + decode at 512, decode at 1
	[ -f "$T/${3}blocked.$1" ] && return 0
	if ! ./guard bench -m "$4" -p 512 -n 32 -r 1 -t 2 --json > "$T/$3.$1.$2" 2> $T/gerr ||
	    ! grep -q '"prefill_tok_s"' "$T/$3.$1.$2" ||
	    ! ./guard bench -m "$4" -p 1 -n 32 -r 1 -t 2 --json > "$T/$3.$1.$2.d0" 2> $T/gerr ||
	    ! grep -q '"decode_tok_s"' "$T/$3.$1.$2.d0"; then
		msg=$(tr '\n' ' ' < $T/gerr | head -c 300)
		echo "${msg:-guard bench printed nothing}" > "$T/${3}blocked.$1"
	fi
}
run_llama() {	# run_llama TYPE ROUND
	[ -f "$T/lblocked.$1" ] && return 0
	if ! "$LB/llama-bench" -m "$(file_of $1)" -p 512 -n 32 -t 2 -r 1 -o json > "$T/l.$1.$2" \
	    2> $T/lerr || ! grep -q '"avg_ts"' "$T/l.$1.$2" ||
	    ! "$LB/llama-bench" -m "$(file_of $1)" -p 0 -n 32 -d 512 -t 2 -r 1 -o json \
	    > "$T/l.$1.$2.d512" 2> $T/lerr || ! grep -q '"avg_ts"' "$T/l.$1.$2.d512"; then
		msg=$(grep -i "error\|fail" $T/lerr | tail -2 | tr '\n' ' ' | head -c 300)
		echo "${msg:-llama-bench printed no result: $(tail -1 $T/lerr)}" > "$T/lblocked.$1"
	fi
}
r=1
while [ $r -le $ROUNDS ]; do
	"$B/tests/bench_sgemm" 2 > "$T/s.$r"
	for t in $TYPES; do
		echo "   round $r: $t"
		if [ $((r % 2)) = 0 ]; then run_llama $t $r; fi
		run_guard $t $r g "$(file_of $t)"
		if [ -n "$OURQ" ] && [ $t != BF16 ]; then
			[ -f "$(file_of $t guard)" ] || echo "no file" > "$T/oblocked.$t"
			run_guard $t $r o "$(file_of $t guard)"
		fi
		if [ $((r % 2)) = 1 ]; then run_llama $t $r; fi
	done
	r=$((r + 1))
done
FILES=""
for t in $TYPES; do FILES="$FILES $t=$(file_of $t)"; done
$PY - "$T" "$ROUNDS" "$OURQ" $FILES <<'PY'
import json, os, struct, sys
t, rounds, ourq = sys.argv[1], int(sys.argv[2]), sys.argv[3]
files = dict(a.split("=", 1) for a in sys.argv[4:])
med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else sum(sorted(v)[len(v) // 2 - 1:len(v) // 2 + 1]) / 2
R = range(1, rounds + 1)

def tensor_bytes(path):
    """bytes of each tensor of a GGUF file (from the offsets of its tensor table)"""
    with open(path, "rb") as f:
        hdr = f.read(24)
        magic, ver, nt, nkv = struct.unpack("<4sIQQ", hdr)
        if magic != b"GGUF":
            raise ValueError("%s: not GGUF" % path)
        def rd(n): return f.read(n)
        def rstr(): return rd(struct.unpack("<Q", rd(8))[0]).decode("utf-8", "replace")
        size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
        align = 32
        def skip(ty):
            if ty == 8: return rstr()
            if ty == 9:
                et, n = struct.unpack("<IQ", rd(12))
                if et in size: rd(size[et] * n)
                else:
                    for _ in range(n): skip(et)
                return None
            return rd(size[ty])
        for _ in range(nkv):
            k = rstr(); ty = struct.unpack("<I", rd(4))[0]; v = skip(ty)
            if k == "general.alignment": align = struct.unpack("<I", v)[0]
        ts = []
        for _ in range(nt):
            name = rstr(); nd = struct.unpack("<I", rd(4))[0]; rd(8 * nd)
            ty, off = struct.unpack("<IQ", rd(12)); ts.append((off, name))
        start = (f.tell() + align - 1) // align * align
    end = os.path.getsize(path) - start
    ts.sort()
    return {n: (ts[i + 1][0] if i + 1 < len(ts) else end) - o for i, (o, n) in enumerate(ts)}

# matmul FLOPs per token of the 1B shape: 16 layers x (q, o 2048x2048; k, v 2048x512; gate,
# up, down 2048x8192), 2 per weight; the head and attention are not counted
FLOP_TOK = 2 * 16 * (2 * 2048 * 2048 + 2 * 2048 * 512 + 3 * 2048 * 8192)
# the KV cache of guard bench's context (float32 K and V, 16 layers x 8 heads x 64)
KV = 2 * 16 * 8 * 64 * 4 * (512 + 32 + 1)
sg = [json.load(open("%s/s.%d" % (t, r)))["gflops_median"] for r in R]
print("== SGEMM (OpenBLAS, 2 threads, 512x2048x2048), per round: %s GFLOP/s; median %.1f" %
      (" ".join("%.1f" % x for x in sg), med(sg)))
TARGET = {"BF16": (1.3, None), "Q8_0": (3.0, 1.2), "Q4_K_M": (2.0, 1.2)}

def load(kind, ty):
    b = "%s/%sblocked.%s" % (t, kind, ty)
    if os.path.exists(b):
        return None, open(b).read().strip()
    out = []
    for r in R:
        p = "%s/%s.%s.%d" % (t, kind, ty, r)
        if not os.path.exists(p):
            return None, "no result for round %d" % r
        j = json.load(open(p))
        if kind == "l":
            pp = [x for x in j if x["n_prompt"] > 0 and x["n_gen"] == 0][0]["avg_ts"]
            tg = [x for x in j if x["n_gen"] > 0 and x["n_prompt"] == 0][0]["avg_ts"]
            tgd = json.load(open(p + ".d512"))[0]["avg_ts"]
            out.append({"prefill_tok_s": pp, "decode_tok_s": tg, "decode512_tok_s": tgd})
        else:
            # guard bench's decode follows its prefill (depth 512); the .d0 run's follows 1 token
            j["decode512_tok_s"] = j["decode_tok_s"]
            j["decode_tok_s"] = json.load(open(p + ".d0"))["decode_tok_s"]
            out.append(j)
    return out, None

def verdict(ratio, target):
    if target is None:
        return ""
    return " (target >= %.1fx: %s)" % (target, "met" if ratio >= target else "NOT met")

def side(name, runs, path, sgm):
    pre = med([x["prefill_tok_s"] for x in runs]); dec = med([x["decode_tok_s"] for x in runs])
    dd = med([x["decode512_tok_s"] for x in runs])
    wb = sum(v for k, v in tensor_bytes(path).items() if k != "token_embd.weight")
    k = " [%s, %s kernels%s]" % (runs[0]["weight_type"], runs[0]["kernel"],
                                 ", AMX BF16 tiles" if runs[0].get("amx_bf16") else "") if "kernel" in runs[0] else ""
    print("   %-10s prefill %7.2f tok/s (%.2fx SGEMM: %.1f GFLOP/s), decode %6.2f tok/s"
          " (%.1f GB/s of weights), at depth 512 %6.2f tok/s%s" %
          (name, pre, pre * FLOP_TOK / 1e9 / sgm, pre * FLOP_TOK / 1e9, dec, dec * wb / 1e9,
           dd, k))
    return pre, dec

summary = []
for ty in ("BF16", "Q8_0", "Q4_K_M"):
    f = files[ty]
    print("== %s: %s (%.0f MiB)" % (ty, f, os.path.getsize(f) / 2**20 if os.path.exists(f) else 0))
    g, gb = load("g", ty)
    l, lb = load("l", ty)
    sgm = med(sg)
    if g: side("guard", g, f, sgm)
    else: print("   guard:     blocked: %s" % gb)
    if l: side("llama.cpp", l, f, sgm)
    else: print("   llama.cpp: blocked: %s" % lb)
    if g and l:
        pr = [a["prefill_tok_s"] / b["prefill_tok_s"] for a, b in zip(g, l)]
        dr = [a["decode_tok_s"] / b["decode_tok_s"] for a, b in zip(g, l)]
        dd = [a["decode512_tok_s"] / b["decode512_tok_s"] for a, b in zip(g, l)]
        tp, td = TARGET[ty]
        print("   guard/llama.cpp per round: prefill %s; decode %s; decode at depth 512 %s" %
              (" ".join("%.2fx" % x for x in pr), " ".join("%.2fx" % x for x in dr),
               " ".join("%.2fx" % x for x in dd)))
        print("   guard/llama.cpp median:    prefill %.2fx%s; decode %.2fx%s; at depth 512"
              " %.2fx%s" % (med(pr), verdict(med(pr), tp), med(dr), verdict(med(dr), td),
                            med(dd), verdict(med(dd), td)))
        summary.append("%s prefill %.2fx decode %.2fx (depth 512: %.2fx)" %
                       (ty, med(pr), med(dr), med(dd)))
    else:
        summary.append("%s blocked" % ty)
    if g:
        rss = med([x["rss_mb"] for x in g]) * 2**20
        bound = (os.path.getsize(f) + KV) * 1.10
        print("   guard peak RSS %.0f MiB: %.0f%% of file + KV (%.1f MiB) + 10%% = %.0f MiB" %
              (rss / 2**20, 100 * rss / bound, KV / 2**20, bound / 2**20))
    if ourq and ty != "BF16":
        o, ob = load("o", ty)
        gf = f.replace("-llamacpp.gguf", "-guard.gguf")
        if o:
            pre, dec = side("guard own", o, gf, sgm)
            if l:
                print("   guard (own file)/llama.cpp median: prefill %.2fx, decode %.2fx, at"
                      " depth 512 %.2fx" %
                      (med([a["prefill_tok_s"] / b["prefill_tok_s"] for a, b in zip(o, l)]),
                       med([a["decode_tok_s"] / b["decode_tok_s"] for a, b in zip(o, l)]),
                       med([a["decode512_tok_s"] / b["decode512_tok_s"] for a, b in zip(o, l)])))
        else:
            print("   guard on guard quantize's file: blocked: %s" % ob)
print("== summary: " + "; ".join(summary))
PY
for t in $TYPES; do
	[ -f "$T/gblocked.$t" ] || GOK="${GOK:-} $t=$(file_of $t)"
done

# --- 3. the prefix-cached verdict -----------------------------------------------------------
if [ ! -x "$LB/llama-server" ]; then
	echo "== verdict: blocked: no llama-server in $LB"
	exit 0
fi
if [ -z "${GOK:-}" ]; then
	echo "== verdict: blocked: guard loads none of the files"
	exit 0
fi
echo "== prefix-cached verdict, 40-token user message: guardd per type vs llama-server (BF16," \
    "cache_prompt, --cache-ram 0), $NV timed verdicts each, interleaved"
$PY - "$T" "$NV" "$LB/llama-server" "$BF16" $GOK <<'PY'
import json, os, signal, socket, subprocess, sys, time, urllib.request
t, nv, server, bf16 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
gtypes = [a.split("=", 1) for a in sys.argv[5:]]
med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else sum(sorted(v)[len(v) // 2 - 1:len(v) // 2 + 1]) / 2

def run(args, inp=None):
    p = subprocess.run(args, input=inp, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("bench-compare: %s failed: %s" % (" ".join(args[:2]), p.stderr.strip()))
    return p.stdout

# messages of exactly 40 tokens (a different first word each: no cache holds one's start)
TAIL = (" asked me how to store the cleaning products in our shared kitchen so that the children"
        " cannot reach them, and which ones are dangerous to mix together when cleaning the"
        " bathroom at home this weekend with friends.")
msgs = []
for name in ("Alice", "Brian", "David", "Emily", "Frank", "Grace", "Henry", "James", "Laura",
             "Maria", "Peter", "Susan", "Thomas", "Oliver", "Sarah", "Kevin", "Nancy", "Steve"):
    m = name + TAIL
    if len(run(["./guard", "tokenize", "-m", bf16], m).split()) == 40:
        msgs.append(m)
if len(msgs) < nv + 1:
    raise SystemExit("bench-compare: only %d of the messages have 40 tokens" % len(msgs))
msgs = msgs[:nv + 1]
nn = [int(x) for x in run(["./guard", "tokenize", "-m", bf16], "\n\n").split()]
ids = []
for m in msgs:
    conv = json.dumps({"messages": [{"role": "user", "content": m}]})
    ids.append([int(x) for x in run(["./guard", "prompt", "--ids", "-m", bf16], conv).split()] + nn)

procs = []
def stop_all():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()

def wait_ready(p, ok, what, errf):
    for _ in range(3000):	# 300 s at most: a cold 3 GB file from disk
        if p.poll() is not None:
            return "exited: " + open(errf).read().strip()[-300:]
        if ok():
            return None
        time.sleep(0.1)
    return "%s not ready in 300 s" % what

# guardd, one per type guard loads
daemons = {}
for ty, f in gtypes:
    d = os.path.join(t, "gd-" + ty)
    os.mkdir(d)
    sock = os.path.join(d, "s")
    with open(os.path.join(d, "guardd.yaml"), "w") as c:
        c.write("listen: %s\nmodel: %s\nthreads: 2\nlimits: {max_queue: 16, deadline_ms: 600000}\n"
                % (sock, os.path.abspath(f)))
    errf = os.path.join(d, "err")
    p = subprocess.Popen(["./guardd", "-f", "-c", os.path.join(d, "guardd.yaml")],
                         stdout=subprocess.DEVNULL, stderr=open(errf, "w"))
    procs.append(p)
    ping = lambda: subprocess.run(["./guard", "ping", "--socket", sock], capture_output=True).returncode == 0
    e = wait_ready(p, ping, "guardd", errf)
    if e:
        print("   guard %-7s blocked: guardd %s" % (ty, e))
    else:
        daemons[ty] = sock

# llama-server on the BF16 file, one slot, no prompt cache in RAM (it would hold the previous
# full prompts and serve them back)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
errf = os.path.join(t, "ls.err")
ls = subprocess.Popen([server, "-m", bf16, "-t", "2", "-tb", "2", "-c", "2048", "-np", "1",
                       "--cache-ram", "0", "--host", "127.0.0.1", "--port", str(port)],
                      stdout=subprocess.DEVNULL, stderr=open(errf, "w"))
procs.append(ls)
url = "http://127.0.0.1:%d" % port
def healthy():
    try:
        return urllib.request.urlopen(url + "/health", timeout=2).status == 200
    except Exception:
        return False
try:
    lerr = wait_ready(ls, healthy, "llama-server", errf)
    def post(prompt):
        body = json.dumps({"prompt": prompt, "n_predict": 1, "cache_prompt": True,
                           "temperature": 0}).encode()
        rq = urllib.request.Request(url + "/completion", body, {"Content-Type": "application/json"})
        t0 = time.perf_counter()
        with urllib.request.urlopen(rq, timeout=600) as r:
            j = json.load(r)
        return time.perf_counter() - t0, j
    def guard_verdict(sock, m):
        # the exit status says flagged or error (hash-noise weights answer neither safe nor
        # unsafe): the verdict's JSON is what counts
        t0 = time.perf_counter()
        p = subprocess.run(["./guard", "classify", "--socket", sock, "--json", m],
                           capture_output=True, text=True)
        dt = time.perf_counter() - t0
        try:
            return dt, json.loads(p.stdout)
        except ValueError:
            raise SystemExit("bench-compare: guard classify --socket printed no verdict: "
                             + p.stderr.strip())

    if not daemons:
        raise SystemExit("   guard: blocked: no guardd started")
    # message 0 warms every server and is not timed; guard's answer says how long the policy
    # prefix it caches is, and llama-server's slot gets that many tokens
    npre = 0
    for ty, sock in daemons.items():
        dt, j = guard_verdict(sock, msgs[0])
        npre = max(npre, j["tokens_cached"])
        if j["tokens_cached"] + j["tokens_evaluated"] != len(ids[0]):
            print("   note: guard %s evaluated %d + cached %d tokens, the prompt ids are %d" %
                  (ty, j["tokens_evaluated"], j["tokens_cached"], len(ids[0])))
    if npre == 0:	# guard cached nothing: the common start of two prompts stands for it
        while ids[0][npre] == ids[1][npre]:
            npre += 1
        print("   note: guard reported no cached tokens; llama-server's slot holds the %d "
              "tokens two prompts share" % npre)
    if not lerr:
        post(ids[0][:npre])
        post(ids[0])
    gres = {ty: [] for ty in daemons}
    lres = []
    for i in range(1, len(msgs)):	# the order alternates: neither side always goes first
        order = list(daemons) + ["llama"] if i % 2 else ["llama"] + list(daemons)
        for who in order:
            if who == "llama":
                if lerr:
                    continue
                post(ids[i][:npre])	# the slot now holds the policy prefix only
                dt, j = post(ids[i])
                lres.append((dt, j["timings"]))
            else:
                dt, j = guard_verdict(daemons[who], msgs[i])
                gres[who].append((dt, j))
    print("   prompt: %d tokens (guard prompt --ids, plus \"\\n\\n\"), the policy prefix %d of "
          "them (guard's tokens_cached)" % (len(ids[1]), npre))
    best = None
    for ty, v in gres.items():
        w = med([x[0] for x in v]); tot = med([x[1]["timings"]["total"] for x in v]) / 1e3
        ev = v[0][1]["tokens_evaluated"]; ca = v[0][1]["tokens_cached"]
        print("   guard %-7s median %.3f s over the socket (guardd's own total %.3f s); %d tokens "
              "evaluated, %d cached; per verdict %s" % (ty, w, tot, ev, ca,
                                                          " ".join("%.2f" % x[0] for x in v)))
        if best is None or w < best[1]:
            best = (ty, w)
    if lerr:
        print("   llama-server: blocked: %s" % lerr)
    else:
        w = med([x[0] for x in lres])
        srv = med([(x[1]["prompt_ms"] + x[1]["predicted_ms"]) / 1e3 for x in lres])
        print("   llama-server  median %.3f s over HTTP (its own prompt+predict %.3f s); %d tokens "
              "evaluated, %d cached; per verdict %s" % (w, srv, lres[0][1]["prompt_n"],
                                                       lres[0][1].get("cache_n", -1),
                                                       " ".join("%.2f" % x[0] for x in lres)))
        r = w / best[1]
        print("   llama-server / guard (%s, fastest): %.2fx (target >= 3x faster: %s)" %
              (best[0], r, "met" if r >= 3 else "NOT met"))
finally:
    stop_all()
PY
