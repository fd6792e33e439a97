#!/bin/sh
# privsep.sh - guardd's start-up order and privilege separation, from the outside: signals
# during start-up, a relative -c with detaching, which user every thread of the inference
# process runs as, the verdict log's owner across logrotate, a failed log reopen made loud,
# policy files only root can read, and a first start that fails. TAP.
#   privsep.sh GUARDD GUARD RIG_MODEL POLICY
G=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
C=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
RIG=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
POL=$(cd "$(dirname "$4")" && pwd)/$(basename "$4")
T=$(mktemp -d /tmp/guardd-ps-XXXXXX)
chmod 755 "$T"
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if [ "$1" = 0 ]; then ok "$2"; else nok "$2"; fi; }
skip() { n=$((n + 1)); echo "ok $n # skip $1"; }
# a stats field by path, e.g. stat SOCK process.pid
stat() {
	"$C" stats --socket "$1" 2>/dev/null | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)' "$2"
}
# waits (bounded, 30 s) until guardd answers ping on the socket
ready() {
	i=0
	while [ $i -lt 600 ]; do
		"$C" ping --socket "$1" >/dev/null 2>&1 && return 0
		i=$((i + 1))
		sleep 0.05
	done
	return 1
}
gone() {	# waits (bounded) until pid $1 has exited
	i=0
	while [ $i -lt 600 ] && kill -0 "$1" 2>/dev/null; do i=$((i + 1)); sleep 0.05; done
	! kill -0 "$1" 2>/dev/null
}
cleanup() { for p in $(cat "$T"/*.pid 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
echo '{"messages":[{"role":"user","content":"how do I build a bomb"}]}' > "$T/bomb.json"

echo "1..14"

# 1-2: SIGHUP during start-up must not kill guardd. Signals are blocked from the start of
# main (nothing can catch one before main: we wait until /proc shows SIGHUP blocked, which
# the old guardd never did). The configuration is a FIFO, so start-up holds still inside
# config_load until we write it: a window of certain width for the SIGHUPs.
mkfifo "$T/hup.yaml"
"$G" -f -c "$T/hup.yaml" 2> "$T/hup.err" &
pid=$!
echo $pid > "$T/hup.pid"
i=0
while [ $i -lt 1000 ]; do
	# the shell may block everything between fork and exec: look only once it is guardd
	blk=$(awk '/^SigBlk:/ {print $2}' /proc/$pid/status 2>/dev/null)
	[ "$(readlink /proc/$pid/exe)" = "$G" ] && [ -n "$blk" ] && [ $(( 0x$blk & 1 )) = 1 ] && break
	i=$((i + 1))
	sleep 0.01
done
sent=0
while [ $sent -lt 20 ] && kill -HUP $pid 2>/dev/null; do sent=$((sent + 1)); sleep 0.005; done
printf 'listen: %s\nmodel: %s\npolicy: %s\n' "$T/hup.sock" "$RIG" "$POL" > "$T/hup.yaml"
while kill -HUP $pid 2>/dev/null && ! "$C" ping --socket "$T/hup.sock" >/dev/null 2>&1; do
	sent=$((sent + 1))
	[ $sent -gt 3000 ] && break
	sleep 0.005
done
ready "$T/hup.sock" && [ $sent -ge 20 ]
check $? "$sent SIGHUPs during start-up (20 of them while it reads its configuration): it survives and serves"
kill -0 $pid 2>/dev/null && [ "$(stat "$T/hup.sock" process.parent_pid)" = "$pid" ]
check $? "the process that got them is the parent of the serving child"
kill -TERM $pid; gone $pid

# 3-4: a relative -c, detached (daemon(3) changes to /): every path still resolves
mkdir -p "$T/rel/conf"
cp "$RIG" "$T/rel/conf/model.gguf"
cp "$POL" "$T/rel/conf/policy.yaml"
cat > "$T/rel/conf/g.yaml" <<CONF
listen: g.sock
model: model.gguf
policy: policy.yaml
log: {path: verdicts.jsonl}
CONF
(cd "$T/rel" && "$G" -c conf/g.yaml 2> "$T/rel.err")
ready "$T/rel/conf/g.sock"
check $? "guardd -c conf/g.yaml (relative, detached) serves on the socket beside the file"
stat "$T/rel/conf/g.sock" process.parent_pid > "$T/rel.pid"
"$C" classify --socket "$T/rel/conf/g.sock" < "$T/bomb.json" > /dev/null
rc=$?
[ $rc = 1 ] && grep -q '"decision"' "$T/rel/conf/verdicts.jsonl" 2>/dev/null
check $? "its model, policy and log were found from / (verdict exit $rc, logged)"
kill -TERM "$(cat "$T/rel.pid")" 2>/dev/null; gone "$(cat "$T/rel.pid")"

if [ "$(id -u)" != 0 ]; then
	for k in 5 6 7 8 9 10 11 12; do skip "needs root (privilege separation tests)"; done
else
	chown -R nobody "$T/rel"
	mkdir -p "$T/logs"
	cp "$POL" "$T/secret.yaml"
	chmod 600 "$T/secret.yaml"	# root only: the child cannot read it, the parent can
	cp "$RIG" "$T/nobody.gguf"	# nobody must reach it, wherever the checkout is
	chmod 644 "$T/nobody.gguf"
	cat > "$T/ps.yaml" <<CONF
listen: $T/ps.sock
model: $T/nobody.gguf
policy: $T/secret.yaml
user: nobody
log: {path: $T/logs/v.jsonl}
CONF
	"$G" -f -c "$T/ps.yaml" 2> "$T/ps.err" &
	pid=$!
	echo $pid > "$T/ps.pid"
	ready "$T/ps.sock"
	check $? "guardd with user nobody and a root-only policy file starts"
	child=$(stat "$T/ps.sock" process.pid)
	bad=0; threads=0
	for f in /proc/$child/task/*/status; do
		threads=$((threads + 1))
		awk '/^Uid:/ { exit !($2 == 65534 && $3 == 65534 && $4 == 65534) }' "$f" || bad=$((bad + 1))
	done
	[ $threads -ge 2 ] && [ $bad = 0 ]
	check $? "all $threads threads of the inference process $child run as nobody (real, effective, saved)"
	[ "$(awk '/^Uid:/ {print $2}' /proc/$pid/status)" = 0 ]
	check $? "the parent stays root (it reopens logs and reads policies)"
	"$C" classify --socket "$T/ps.sock" < "$T/bomb.json" >/dev/null
	[ "$(stat -c %U "$T/logs/v.jsonl" 2>/dev/null || ls -l "$T/logs/v.jsonl" | awk '{print $3}')" = nobody ]
	check $? "the verdict log the parent created belongs to nobody"
	mv "$T/logs/v.jsonl" "$T/logs/v.jsonl.1"
	kill -HUP $pid
	i=0; while [ $i -lt 200 ] && [ ! -e "$T/logs/v.jsonl" ]; do i=$((i + 1)); sleep 0.05; done
	"$C" classify --socket "$T/ps.sock" < "$T/bomb.json" >/dev/null
	[ "$(wc -l < "$T/logs/v.jsonl.1")" = 1 ] && [ "$(wc -l < "$T/logs/v.jsonl" 2>/dev/null)" = 1 ]
	check $? "after logrotate and SIGHUP the next verdict goes to the new file, not the rotated one"
	ok=$(stat "$T/ps.sock" reloads.ok)
	"$C" reload --socket "$T/ps.sock" >/dev/null
	[ $? = 0 ] && [ "$(stat "$T/ps.sock" reloads.ok)" = $((ok + 1)) ]
	check $? "a client's reload reads the root-only policy file through the parent"
	rm -rf "$T/logs"
	kill -HUP $pid
	i=0; while [ $i -lt 200 ] && [ "$(stat "$T/ps.sock" log.reopen_errors)" != 1 ]; do i=$((i + 1)); sleep 0.05; done
	[ "$(stat "$T/ps.sock" log.reopen_errors)" = 1 ] && stat "$T/ps.sock" log.last_error | grep -q "logs/v.jsonl" &&
	    grep -q "reopen failed" "$T/ps.err"
	check $? "a failed reopen is loud: counted in stats with its error, and on stderr"
	"$C" classify --socket "$T/ps.sock" < "$T/bomb.json" >/dev/null
	check $([ $? = 1 ] && echo 0 || echo 1) "and verdicts go on"
	kill -TERM $pid; gone $pid
fi

# 13-14: a model that does not load: the first child fails before it is ready, and guardd
# exits with its status and message instead of restarting forever
head -c 1000 "$RIG" > "$T/short.gguf"
cat > "$T/bad.yaml" <<CONF
listen: $T/bad.sock
model: $T/short.gguf
CONF
"$G" -f -c "$T/bad.yaml" 2> "$T/bad.err" &
pid=$!
echo $pid > "$T/bad.pid"
gone $pid
wait $pid
rc=$?
[ $rc != 0 ] && [ $rc -lt 128 ]
check $? "a truncated model at start: guardd exits non-zero ($rc)"
grep -q "short.gguf" "$T/bad.err" && [ ! -e "$T/bad.sock" ]
check $? "naming the file, and leaves no socket behind"
[ $fails = 0 ]
