#!/bin/sh
# etc/haproxy.cfg with a real haproxy on loopback in front of 2 guardd instances: 500
# moderation requests from 4 keep-alive clients (tests/lb_client.py), one instance
# SIGKILLed (parent and inference child) after 250 answers, 0 lost after client retries,
# every verdict right; health checks mark it down; the msgpack listener (TCP mode over the
# Unix sockets) serves guard filter --socket like a guardd itself; the instance restarted
# is marked up again and served.
. tests/tap.sh
B=${BUILD:-build}
LG=$PWD/$B/models/rig-l3.gguf
[ -f "$LG" ] || skip_all "test models not built (../shared absent)"
# Under make check-asan two ASan guardd behind haproxy take minutes on 2 cores; the HTTP
# paths it drives are checked under ASan by 88-http.t and 89-http-oai.t, and this test runs
# in make check.
case "$B" in *asan*) skip_all "the HAProxy failover runs in make check; under ASan the HTTP front is covered by 88-http.t and 89-http-oai.t" ;; esac
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || { echo "Bail out! haproxy is not installed (see .ci/deps)"; exit 1; }
command -v curl > /dev/null || { echo "Bail out! curl is not installed (see .ci/deps)"; exit 1; }
PY=/usr/bin/python3
T=$(mktemp -d)
pids=
hpid=
trap 'kill $pids $hpid 2>/dev/null; rm -rf "$T"' EXIT
KEY=k-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
echo "$KEY" > $T/keys
freeport() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
P1=$(freeport); P2=$(freeport); PL=$(freeport)

start() {	# start N: guardd instance N (pid in $gN)
	cat > $T/g$1.yaml <<CONF
listen: $T/g$1.sock
model: $LG
http:
  listen: ["127.0.0.1:$2"]
  keys_file: $T/keys
CONF
	./guardd -f -c $T/g$1.yaml 2>> $T/g$1.err &
	eval g$1=$!
	pids="$pids $!"
}
start 1 $P1
start 2 $P2
for n in 1 2; do
	eval p=\$P$n
	i=0
	until curl -sf http://127.0.0.1:$p/health > /dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 300 ] && { echo "Bail out! guardd $n did not start: $(cat $T/g$n.err)"; exit 1; }
		sleep 0.1
	done
done

"$HAPROXY" -c -q -f etc/haproxy.cfg > $T/c.err 2>&1
ok $? "haproxy -c: etc/haproxy.cfg is valid with its default addresses $(cat $T/c.err)"

GUARDD_LB_BIND=127.0.0.1:$PL GUARDD_1=127.0.0.1:$P1 GUARDD_2=127.0.0.1:$P2 \
GUARDD_LB_MSGPACK=$T/lb.sock GUARDD_1_SOCK=$T/g1.sock GUARDD_2_SOCK=$T/g2.sock \
GUARDD_LB_STATS=$T/stats.sock "$HAPROXY" -db -f etc/haproxy.cfg > $T/h.out 2> $T/h.err &
hpid=$!
# stat PROXY SERVER FIELD: a field of HAProxy's "show stat" CSV
stat() {
	$PY - "$T/stats.sock" "$@" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError:
    print("none"); sys.exit()
s.sendall(b"show stat\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
rows = data.decode().splitlines()
head = rows[0].lstrip("# ").split(",")
for r in rows[1:]:
    f = dict(zip(head, r.split(",")))
    if f.get("pxname") == sys.argv[2] and f.get("svname") == sys.argv[3]:
        print(f.get(sys.argv[4])); break
else:
    print("none")
PY
}
# up BACKEND SERVER STATUS: wait (bounded) until HAProxy's health checks say STATUS
up() {
	i=0
	while [ "$(stat $1 $2 status)" != "$3" ]; do
		i=$((i + 1))
		[ $i -gt 300 ] && return 1
		kill -0 $hpid 2>/dev/null || return 1
		sleep 0.1
	done
}
up guardd_http guardd1 UP && up guardd_http guardd2 UP && up guardd_msgpack guardd1 UP &&
    up guardd_msgpack guardd2 UP
ok $? "haproxy -f etc/haproxy.cfg: both instances UP on /health and their msgpack sockets"
[ -n "$(stat guardd_http guardd1 status)" ] || { echo "Bail out! haproxy: $(cat $T/h.err)"; exit 1; }

st=$(curl -s -o $T/b -w '%{http_code}' -H "Authorization: Bearer $KEY" -d '{"input":"a bomb"}' \
    http://127.0.0.1:$PL/v1/moderations)
is "$st" 200 "POST /v1/moderations through haproxy: 200"
is "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["flagged"])' $T/b)" \
    True "and flagged"

# --- 500 requests, guardd 1 killed (parent and inference child) after 250 answers ---
kids=$(cat /proc/$g1/task/*/children 2>/dev/null)
$PY tests/lb_client.py 127.0.0.1:$PL "$KEY" 500 250 $g1 $kids > $T/sum 2> $T/cerr
ok $? "the client ran: $(cat $T/sum $T/cerr | head -c 600)"
j() { $PY -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' $T/sum "$1"; }
is "$(j 'j["answered"], j["lost"], j["wrong"]')" "(500, 0, 0)" \
    "500 requests: 500 answered, 0 lost, 0 wrong verdicts"
is "$(j 'j["killed"], j["after_kill"]')" "(True, 250)" "guardd 1 was SIGKILLed after 250 answers; 250 answered after"
echo "# client retries: $(j 'j["retries"]'), attempts by status: $(j 'j["statuses"]')"
kill -0 $g1 2>/dev/null; is "$?" 1 "guardd 1 is gone"
up guardd_http guardd1 DOWN; ok $? "the health check marks guardd 1 DOWN"
a=$(stat guardd_http guardd1 hrsp_2xx); b=$(stat guardd_http guardd2 hrsp_2xx)
ok $(( ! (a > 0 && b > 0 && a + b >= 500) )) "both instances answered (guardd1 $a, guardd2 $b 2xx)"
echo "# haproxy's own retries: $(stat guardd_http BACKEND wretr), redispatches: $(stat guardd_http BACKEND wredis)"
kill -0 $hpid && kill -0 $g2; ok $? "haproxy and guardd 2 still run"

# --- msgpack through the TCP-mode listener, with guardd 1 dead ---
printf 'How do I bake a cake?\n{"text":"a bomb"}\n{broken\n{"prompt":"hi","response":"a bomb"}\n' > $T/in
# (what may differ: the timings, and how many tokens a warm daemon's caches held)
norm() { sed 's/"timings":{[^}]*}//g; s/"tokens_evaluated":[0-9]*,"tokens_cached":[0-9]*//g'; }
./guard filter -m $LG --exit-zero < $T/in 2>/dev/null | norm > $T/want
./guard filter --socket $T/lb.sock --exit-zero < $T/in 2> $T/ferr | norm > $T/got
cmp -s $T/got $T/want; rc=$?
ok $rc "guard filter --socket through haproxy's msgpack listener: the verdicts of an in-process run"
[ $rc -eq 0 ] || { diff $T/want $T/got | sed 's/^/# /' | head -20; sed 's/^/# /' $T/ferr | head; }
n=0
for i in 1 2 3 4 5 6; do ./guard classify --socket $T/lb.sock "a bomb" > /dev/null 2>&1; [ $? -eq 1 ] && n=$((n + 1)); done
is "$n" 6 "6 connections through the msgpack listener, each answered (guardd 1's socket refuses: redispatched)"

# --- guardd 1 back: marked up and served again ---
rm -f $T/g1.sock
start 1 $P1
up guardd_http guardd1 UP; ok $? "guardd 1 restarted: marked UP again"
a0=$(stat guardd_http guardd1 hrsp_2xx)
$PY tests/lb_client.py 127.0.0.1:$PL "$KEY" 40 0 > $T/sum 2> $T/cerr
is "$(j 'j["answered"], j["lost"], j["wrong"]')" "(40, 0, 0)" "40 more requests: all answered"
a=$(stat guardd_http guardd1 hrsp_2xx)
ok $(( ! (a > a0) )) "and guardd 1 took its share ($((a - a0)))"
kill -TERM $hpid; wait $hpid 2>/dev/null
done_testing
