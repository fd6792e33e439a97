#!/bin/sh
# bench_chat.sh - make bench, the chat generator (issue 8): Llama 3.2 1B shape (BF16) as the
# generator beside the Llama Guard 3 1B shape (BF16) as the guard, both hash-noise GGUF files
# built once into $BUILD/models. Prints figures; asserts nothing about time. The machine's
# absolute speed drifts, so the figures that matter are ratios measured in this one run:
#   1. decode (and prefill) of the generator file: guard bench vs llama.cpp (prebuilt, from
#      npm node-llama-cpp, installed into $BUILD/bench-npm with downloads and builds off);
#   2. guardd with the generator: aggregate tokens/s of 1 and 4 concurrent chats, time to the
#      first released token, the streaming guard's cost at stream.check_every 16 (from the
#      daemon's stats, and against a run at check_every 4096 where only the final check runs),
#      the inference process's RSS against the files + KV caches bound.
# Sizes can be made smaller on a slow machine: BENCH_P (prefill tokens, 128), BENCH_N (decode
# steps, 32), BENCH_TOKENS (max_tokens per chat, 128); BENCH_PARTS="decode chat" (the default)
# chooses the parts; BENCH_GUARD=FILE runs another guard file (e.g. the Q8_0 one make bench makes).
set -eu
B=${BUILD:-build}
M=$B/models
GEN=$M/l32-1b-bf16.gguf
GRD=${BENCH_GUARD:-$M/lg3-1b-bf16.gguf}
P=${BENCH_P:-128}
N=${BENCH_N:-32}
TOK=${BENCH_TOKENS:-128}
PARTS=${BENCH_PARTS:-decode chat}
PY=/usr/bin/python3
mkdir -p "$M"
for spec in l32-1b lg3-1b; do
	if [ ! -f "$M/$spec-bf16.gguf" ]; then
		echo "bench: building $M/$spec-bf16.gguf (BF16)"
		"$B/tests/mkmodel" $spec gguf "$M/$spec-bf16.gguf" bf16
	fi
done
# chatgen is not in the Makefile's test list: built here by its pattern rule
${MAKE:-make} -s BUILD="$B" "$B/tests/chatgen" > /dev/null
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) (other work shares these CPUs)"

# --- 1. decode on the generator file: guard vs llama.cpp, same file, same run -------------
case " $PARTS " in *" decode "*)
echo "== generator decode: $GEN, $P-token prefill then $N decode steps, 2 threads;" \
    "3 rounds, guard and llama.cpp back to back in each (the machine's speed drifts)"
blocked=""
NPM=$B/bench-npm
if ! command -v node > /dev/null 2>&1; then
	blocked="no node.js"
elif [ ! -d "$NPM/node_modules/@node-llama-cpp/linux-x64" ]; then
	mkdir -p "$NPM"
	cp tests/bench/package.json "$NPM/package.json"
	# the prebuilt linux-x64 binaries only: no postinstall (it would download or build),
	# no optional GPU packages
	if ! (cd "$NPM" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional \
	    --ignore-scripts --no-audit --no-fund --loglevel=error) > $T/npm.log 2>&1; then
		blocked="npm install node-llama-cpp failed: $(tail -1 $T/npm.log)"
	fi
fi
llamacpp() {	# llamacpp ROUND: one llama.cpp run into $T/l.ROUND, or sets blocked
	[ -n "$blocked" ] && return 0
	BENCH_NPM_DIR="$NPM" NODE_LLAMA_CPP_SKIP_DOWNLOAD=true \
	    node tests/bench_llamacpp.mjs "$GEN" "$P" "$N" 1 2 > $T/l.$1 2> $T/l.err || true
	if ! grep -q '"decode_tok_s"' $T/l.$1; then
		blocked=$(cat $T/l.$1 $T/l.err | head -c 300 | tr '\n' ' ')
		blocked=${blocked:-"node-llama-cpp printed nothing"}
	fi
}
for r in 1 2 3; do	# the order alternates: neither always runs on a warmer cache
	if [ $r = 2 ]; then llamacpp $r; fi
	./guard bench -m "$GEN" -p "$P" -n "$N" -r 1 -t 2 --json > $T/g.$r
	if [ $r != 2 ]; then llamacpp $r; fi
done
$PY - "$T" "$blocked" <<'PY'
import json, sys
t, blocked = sys.argv[1], sys.argv[2]
med = lambda v: sorted(v)[len(v) // 2]
g = [json.load(open("%s/g.%d" % (t, r))) for r in (1, 2, 3)]
print("   guard:     prefill %8.2f tok/s, decode %6.2f tok/s (medians; %s kernels, %d threads)" %
      (med([x["prefill_tok_s"] for x in g]), med([x["decode_tok_s"] for x in g]), g[0]["kernel"],
       g[0]["threads"]))
if blocked:
    print("   llama.cpp comparison: blocked (%s)" % blocked)
    sys.exit(0)
l = [json.load(open("%s/l.%d" % (t, r))) for r in (1, 2, 3)]
print("   llama.cpp: prefill %8.2f tok/s, decode %6.2f tok/s (medians; %s, %d threads)" %
      (med([x["prefill_tok_s"] for x in l]), med([x["decode_tok_s"] for x in l]), l[0]["engine"],
       l[0]["threads"]))
dr = [a["decode_tok_s"] / b["decode_tok_s"] for a, b in zip(g, l)]
pr = [a["prefill_tok_s"] / b["prefill_tok_s"] for a, b in zip(g, l)]
print("   guard / llama.cpp, per round: decode %s, prefill %s" %
      (" ".join("%.2fx" % x for x in dr), " ".join("%.2fx" % x for x in pr)))
print("   guard / llama.cpp, median of the rounds: decode %.2fx (goal >= 1.00x), prefill %.2fx" %
      (med(dr), med(pr)))
PY
;; esac
case " $PARTS " in *" chat "*) ;; *) exit 0;; esac

# --- 2. guardd hosting the generator ---------------------------------------------------------
# The guard never blocks here: hash-noise weights answer neither "safe" nor "unsafe" (an error
# verdict) or an arbitrary category, and a blocked chat would end early. Every check still runs
# in full (prefill of the new tokens and the template's closing part, then the answer).
cat > $T/policy.yaml <<CONF
name: bench
on_error: allow
default: {action: flag, threshold: 0.5}
CONF
start_guardd() {	# start_guardd CHECK_EVERY
	cat > $T/guardd.yaml <<CONF
listen: $T/g.sock
model: $(realpath "$GRD")
policy: $T/policy.yaml
batch: 4
generator: {model: $PWD/$GEN, temperature: 0, max_tokens: $TOK, max_chats: 4, deadline_ms: 3600000}
stream: {check_every: $1}
limits: {max_queue: 256, deadline_ms: 3600000, idle_timeout_ms: 3600000}
CONF
	./guardd -f -c $T/guardd.yaml 2> $T/err &
	pid=$!
	i=0
	until ./guard ping --socket $T/g.sock > /dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 1200 ] || ! kill -0 $pid 2> /dev/null; then
			cat $T/err; kill $pid 2> /dev/null; exit 1
		fi
		sleep 0.1
	done
}
stop_guardd() {
	kill -TERM $pid
	wait $pid || true
}
CHAT="Write a short story about a lighthouse keeper who finds a message in a bottle, and what the message says."
echo "== guardd: guard $GRD + generator $GEN, greedy, max_tokens $TOK, chats streamed"
start_guardd 16
"$B/tests/chatgen" $T/g.sock 1 8 "$CHAT" > /dev/null	# warm-up: both files paged in
echo "-- stream.check_every 16"
"$B/tests/chatgen" $T/g.sock 1 "$TOK" "$CHAT" | tee $T/c1.out
"$B/tests/chatgen" $T/g.sock 4 "$TOK" "$CHAT" | tee $T/c4.out
stop_guardd
start_guardd 4096
echo "-- stream.check_every 4096 (only the final check: generation without streaming checks)"
"$B/tests/chatgen" $T/g.sock 1 "$TOK" "$CHAT" | tee $T/b1.out
"$B/tests/chatgen" $T/g.sock 4 "$TOK" "$CHAT" | tee $T/b4.out
stop_guardd

# Both shapes: 16 layers, 8 KV heads of 64; the KV cache is float32, K and V.
KV=$((2 * 16 * 8 * 64 * 4))
$PY - $T $KV $(stat -c %s "$GRD") $(stat -c %s "$GEN") <<'PY'
import json, sys
t, kv, fg, fm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = {k: json.loads(open("%s/%s.out" % (t, k)).read().splitlines()[-1]) for k in ("c1", "c4", "b1", "b4")}
MiB = 1 << 20
print("== chat summary (check_every 16 unless said)")
for k, v in r.items():
    if v["tokens"] == 0 or v["errors"]:
        print("   no figures: a run generated nothing or failed (finish: %s, errors: %d)" %
              (v["finish"], v["errors"]))
        sys.exit(1)
print("   aggregate tokens/s: 1 chat %.2f, 4 chats %.2f: %.2fx (goal >= 2x); without streaming "
      "checks %.2f and %.2f" % (r["c1"]["tok_s"], r["c4"]["tok_s"], r["c4"]["tok_s"] / r["c1"]["tok_s"],
                                 r["b1"]["tok_s"], r["b4"]["tok_s"]))
print("   time to first released token (median): 1 chat %.0f ms, 4 chats %.0f ms" %
      (r["c1"]["ttft_ms_p50"], r["c4"]["ttft_ms_p50"]))
for k, n in (("c1", 1), ("c4", 4)):
    c, b = r[k], r["b" + k[1]]
    per = c["check_ms"] / c["checks"] if c["checks"] else 0
    slow = 1 - c["tok_s"] / b["tok_s"]
    print("   guard cost, %d chat%s: checks %.1f%% of the generation's wall time (stats check_ms "
          "%.0f / %.0f ms; goal <= 35%%); tokens/s %.1f%% below the check_every 4096 run" %
          (n, "s" if n > 1 else "", 100 * c["check_ms"] / 1e3 / c["wall_s"], c["check_ms"],
           c["wall_s"] * 1e3, 100 * slow))
    print("     per check: %.1f ms (check_ms / checks), %.1f tokens evaluated (the answers' last "
          "checks) = the time of %.1f decode steps of one unchecked chat; %d checks for %d tokens" %
          (per, c["eval_per_check_final"], per / 1e3 * r["b1"]["tok_s"], c["checks"], c["tokens"]))
c = r["c4"]
pos = c["gen_positions"] + c["guard_positions"]
bound = (fg + fm + pos * kv) * 1.10
print("   memory (inference process, pid %d, after 4 chats): VmRSS %.0f MiB, VmHWM %.0f MiB" %
      (c["pid"], c["rss_kb"] / 1024, c["hwm_kb"] / 1024))
print("     bound: (guard file %.0f + generator file %.0f + KV %.1f MiB for %d positions "
      "[generator %d, guard %d] x %d KiB) + 10%% = %.0f MiB: VmHWM is %.1f%% of it" %
      (fg / MiB, fm / MiB, pos * kv / MiB, pos, c["gen_positions"], c["guard_positions"],
       kv // 1024, bound / MiB, 100 * c["hwm_kb"] * 1024 / bound))
print("     mappings: guard file %d, generator file %d (lines in /proc/%d/maps)" %
      (c["model_maps"], c["generator_maps"], c["pid"]))
PY
