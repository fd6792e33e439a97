#!/bin/sh
# The HTTP front (guardd-http(7)) with real clients: curl over --unix-socket and TCP, and raw
# sockets (tests/http_raw.py) for pipelining, slow bodies, many headers, clients that
# vanish, connection limits. A guardd with the rigged guard and generator; a second one with
# `http.auth: none` and an allow list that refuses us. Every wait is bounded.
. tests/tap.sh
. tests/dlib.sh
rig_models
need curl
rig_tmp
KEY=k-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
printf '# keys\n\n  %s  \nanother-key-0123456789\n' "$KEY" > $T/keys
P=$(freeport)
P2=$(freeport)
cat > $T/guardd.yaml <<CONF
listen: $S
model: $LG
policy: $PWD/etc/policy.yaml
generator: {model: $GEN, temperature: 0}
stream: {check_every: 4}
limits: {drain_ms: 20000}
http:
  listen: [$H, "127.0.0.1:$P"]
  keys_file: $T/keys
  max_body_bytes: 4096
  max_header_bytes: 2048
  max_headers: 20
  timeout_ms: 1000
  max_connections: 4
CONF
cat > $T/open.yaml <<CONF
listen: $T/o.sock
model: $LG
allow_uids: [$(($(id -u) + 1))]
restart: {min_ms: 1500, max_ms: 1500}
http:
  listen: [$T/oh.sock, ":$P2"]
  auth: none
CONF
./guardd -f -c $T/guardd.yaml 2> $T/err &
pid=$!
./guardd -f -c $T/open.yaml 2> $T/err2 &
pid2=$!
trap 'kill $pid $pid2 2>/dev/null; rm -rf "$T"' EXIT
guardd_ready $pid $T/err 300 curl -sf --unix-socket $H http://g/health
guardd_ready $pid2 $T/err2 300 curl -sf http://127.0.0.1:$P2/health
U="--unix-socket $H"
TCP=http://127.0.0.1:$P
AUTH="Authorization: Bearer $KEY"
# curl ARGS... -> the status; the body in $T/b, the headers in $T/h
c() { curl -s -o $T/b -D $T/h -w '%{http_code}' "$@"; }
hdr() { tr -d '\r' < $T/h | grep -i "^$1:" | head -1 | cut -d' ' -f2-; }

# --- health, auth ---------------------------------------------------------------------
is "$(c $U http://g/health)" 200 "GET /health over the Unix socket: 200"
is "$(jf $T/b 'j["status"], len(j["model"]), len(j["policies"]["default"]), len(j["generator"])')" \
    "('ok', 64, 64, 64)" "it names the model, generator and policy hashes"
is "$(c $TCP/health)" 200 "GET /health over TCP needs no key"
is "$(hdr content-type)" "application/json" "as JSON"
is "$(c $TCP/metrics)" 401 "GET /metrics over TCP without a key: 401"
is "$(jf $T/b 'j["error"]["code"], j["error"]["type"], "param" in j["error"]')" \
    "('missing_api_key', 'authentication_error', True)" "an OpenAI-shaped error: missing_api_key"
like "$(hdr www-authenticate)" "Bearer" "with WWW-Authenticate: Bearer"
is "$(c -H 'Authorization: Bearer wrong-key-0123456789' $TCP/metrics)" 401 "a wrong key: 401"
is "$(jf $T/b 'j["error"]["code"]')" "invalid_api_key" "invalid_api_key"
is "$(c -H "Authorization: Bearer ${KEY}x" $TCP/metrics)" 401 "a key with a byte more: 401"
is "$(c -H "Authorization: Bearer $(echo $KEY | cut -c2-)" $TCP/metrics)" 401 "a key with a byte less: 401"
is "$(c -H "Authorization: Basic $KEY" $TCP/metrics)" 401 "another scheme: 401"
is "$(c -H "$AUTH" $TCP/metrics)" 200 "the key from keys_file (white space around it in the file): 200"
is "$(c -H 'Authorization: Bearer another-key-0123456789' $TCP/metrics)" 200 "the second key: 200"
is "$(hdr content-type)" "text/plain; version=0.0.4; charset=utf-8" "Prometheus text format"
is "$(c $U http://g/metrics)" 200 "the Unix listener needs no key (peer credentials)"
is "$(c $TCP/guardd/request -d '{"op":"ping"}')" 401 "a request route over TCP without a key: 401"

# --- a classify through the front equals the msgpack path -----------------------------
BOMB='How do I build a bomb?'
is "$(c -H "$AUTH" $TCP/guardd/request -d "{\"id\": 12, \"op\": \"classify\", \"messages\": [{\"role\": \"user\", \"content\": \"$BOMB\"}]}")" \
    200 "POST /guardd/request classify over TCP: 200"
cp $T/b $T/http.json
./guard classify --socket $S --json "$BOMB" > $T/mp.json
is "$(jf $T/http.json 'j["id"], j["ok"], j["verdict"]["decision"], j["verdict"]["categories"]')" \
    "(12, True, 'block', ['S1'])" "the verdict, with the request's id"
is "$(jf $T/http.json 'repr(j["verdict"]["unsafe_score"])')" "$(jf $T/mp.json 'repr(j["unsafe_score"])')" \
    "the same unsafe_score as guard classify --socket, bit for bit"
is "$(c $U http://g/guardd/request -d '{"op": "classify", "messages": [{"role": "user", "content": "hi"}], "policy": "nosuch"}')" \
    404 "an unknown policy: 404"
is "$(jf $T/b 'j["error"]["code"]')" "unknown_policy" "code unknown_policy"

# --- malformed requests -----------------------------------------------------------------
is "$(c $U http://g/guardd/request -d '{"op": "classify", ')" 400 "truncated JSON: 400"
like "$(jf $T/b 'j["error"]["message"]')" "line 1, column" "naming line and column"
is "$(c $U http://g/guardd/request -d '{"op": "ping", "op": "ping"}')" 400 "a repeated key: 400"
like "$(jf $T/b 'j["error"]["message"]')" "duplicate" "says duplicate"
is "$(c $U http://g/guardd/request -d '[1, 2]')" 400 "a body that is not an object: 400"
is "$(c $U http://g/guardd/request -d '{"op": 5}')" 400 "a wrong type: 400"
like "$(jf $T/b 'j["error"]["message"]')" "op" "naming the field"
is "$(c $U http://g/guardd/request -d '{"op": "classify", "messages": "hi"}')" 400 "messages not a list: 400"
is "$(c $U -X POST http://g/guardd/request)" 400 "no body: 400"
printf '{"op": "classify", "messages": [{"role": "user", "content": "\377"}]}' > $T/bad
is "$(c $U --data-binary @$T/bad http://g/guardd/request)" 400 "invalid UTF-8: 400"
is "$(c $U http://g/guardd/request -d '{"op": "reload"}')" 400 "reload is not taken over HTTP"
is "$(c $U http://g/v2/nothing)" 404 "an unknown path: 404"
is "$(jf $T/b 'j["error"]["code"]')" "not_found" "code not_found"
is "$(c $U -X DELETE http://g/health)" 405 "a wrong method: 405"
is "$(hdr allow)" "GET" "with Allow: GET"
is "$(c $U http://g/guardd/request)" 405 "GET on a POST route: 405"
for r in v1/moderations v1/chat/completions; do
	st=$(c $U -d '{}' http://g/$r)
	ok $([ "$st" != 404 ] && [ "$st" != 405 ]; echo $?) "POST /$r is routed ($st)"
done

# --- limits -------------------------------------------------------------------------------
head -c 5000 /dev/zero | tr '\0' 'a' > $T/big
is "$(c $U --data-binary @$T/big http://g/guardd/request)" 413 "a body over max_body_bytes: 413"
head -c 4000 /dev/zero | tr '\0' ' ' > $T/fits
printf '{"op":"ping"}' >> $T/fits
is "$(c $U --data-binary @$T/fits http://g/guardd/request)" 200 "a body just under it: 200"
is "$(python3 tests/http_raw.py $H headers '' 19)" "200 ok" "20 headers (Host and 19 more): 200"
is "$(python3 tests/http_raw.py $H headers '' 30)" "431 too_many_headers" "more than max_headers: 431"
is "$(c $U -H "X-Big: $(head -c 3000 /dev/zero | tr '\0' a)" http://g/health)" 400 \
    "headers over max_header_bytes: 400"
is "$(python3 tests/http_raw.py $H slowbody)" "closed 0" "a body that stops: closed after timeout_ms, no answer"
is "$(python3 tests/http_raw.py 127.0.0.1:$P slowheaders)" "closed 0" "headers that stop: closed"
like "$(python3 tests/http_raw.py 127.0.0.1:$P garbage)" "closed HTTP/1.1 400" "bytes that are not HTTP: 400, closed"
is "$(python3 tests/http_raw.py $H pipeline)" "200 200 7 404 closed" \
    "three pipelined requests: three answers in order, closed after Connection: close"
is "$(python3 tests/http_raw.py 127.0.0.1:$P maxconn "$KEY" 4)" "200 200 200 200 503/too_many_connections" \
    "max_connections 4: the fifth connection gets 503"
conns() { c $U http://g/metrics > /dev/null; awk '/^guardd_http_connections / {print $2}' $T/b; }
i=0
until [ "$(conns)" = 1 ]; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done	# the last ones closed
is "$(python3 tests/http_raw.py 127.0.0.1:$P idle "$KEY" 4)" "503/too_many_connections" \
    "connections count from their accept: four silent ones, and the fifth is refused"

# --- streams, and a client that vanishes ---------------------------------------------------
curl -s -N $U http://g/guardd/request -d '{"id": 3, "op": "chat", "stream": true, "messages": [{"role": "user", "content": "Tell me a story."}]}' > $T/sse
is "$(tail -c 14 $T/sse | tr '\n' '|')" "data: [DONE]||" "a streamed chat ends with data: [DONE]"
python3 - $T/sse > $T/sse.out <<'PY'
import json, sys
ev = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
objs = [json.loads(e) for e in ev[:-1]]
text = "".join(o["delta"]["text"] for o in objs if "delta" in o)
last = objs[-1]["chat"]
print(len([o for o in objs if "delta" in o]) > 1, "bomb" in text, text == last["text"],
      last["finish_reason"], last["response_verdict"]["decision"])
PY
is "$(cat $T/sse.out)" "True False True content_filter block" \
    "deltas as events, no byte of ' bomb', the final answer blocks with content_filter"
d0=$(curl -s $U http://g/metrics | awk '/^guardd_errors_total\{kind="dropped"\}/ {print $2}')
is "$(python3 tests/http_raw.py $H vanish)" "left after data" "a client leaves mid-stream"
is "$(python3 tests/http_raw.py $H vanish-early)" "left" "a client leaves right after its request"
i=0
until [ "$(curl -s $U http://g/metrics | awk '/^guardd_errors_total\{kind="dropped"\}/ {print $2}')" -ge $((d0 + 2)) ]; do
	i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1
done
is "$(curl -s $U http://g/metrics | awk '/^guardd_errors_total\{kind="dropped"\}/ {print $2}')" $((d0 + 2)) \
    "both are dropped: no answer written"
is "$(c $U http://g/health)" 200 "and the daemon carries on"

# --- metrics ------------------------------------------------------------------------------
c -H "$AUTH" $TCP/metrics > /dev/null
python3 - $T/b > $T/m.out <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[-1] == ""
typed, vals, bad = {}, {}, []
for l in lines[:-1]:
    m = re.match(r"# TYPE (\w+) (counter|gauge|histogram)$", l)
    if m:
        typed[m.group(1)] = m.group(2); continue
    if l.startswith("# HELP "):
        continue
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_]+="[^"\\]*"(,[a-zA-Z_]+="[^"\\]*")*\})? (\S+)$', l)
    if not m:
        bad.append(l); continue
    name = m.group(1)
    base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
    if base not in typed:
        bad.append("untyped " + l)
    float(m.group(4))
    vals[name + (m.group(2) or "")] = float(m.group(4))
b = [v for k, v in vals.items() if k.startswith("guardd_request_duration_seconds_bucket")]
print(len(bad), b == sorted(b), vals['guardd_request_duration_seconds_bucket{le="+Inf"}'] == vals["guardd_request_duration_seconds_count"],
      vals['guardd_verdicts_total{decision="block",role="user"}'] >= 1,
      vals['guardd_verdict_categories_total{category="S1",role="user"}'] >= 1,
      vals['guardd_verdicts_total{decision="block",role="assistant"}'] >= 1,
      vals["guardd_tokens_generated_total"] > vals["guardd_tokens_released_total"] > 0,
      vals["guardd_http_requests_total"] > 40, vals["guardd_http_errors_total"] > 20,
      "guardd_queue_depth" in vals, "guardd_stream_blocks_total" in vals, "guardd_upstream_errors_total" in vals)
if bad: print(bad[:3])
PY
is "$(cat $T/m.out)" "0 True True True True True True True True True True True" \
    "/metrics: every line well-formed and typed; histogram cumulative; verdicts by decision, role and category; tokens; HTTP counters"

# --- auth none, and a Unix peer the allow list refuses ----------------------------------------
is "$(c http://127.0.0.1:$P2/metrics)" 200 "http.auth: none: no key needed over TCP"
is "$(c --unix-socket $T/oh.sock http://g/health)" 403 "a Unix peer not in allow_uids: 403"
is "$(jf $T/b 'j["error"]["code"]')" "forbidden" "code forbidden"
is "$(hdr connection)" "close" "and the connection is closed"

# --- while the inference process restarts, the privileged one answers 503 itself ---------------
child=$(ps -o pid= --ppid $pid2 | head -1 | tr -d ' ')
kill -KILL $child
is "$(c http://127.0.0.1:$P2/health)" 503 "the inference process died: 503 from the privileged process"
is "$(jf $T/b 'j["error"]["code"]'):$(hdr retry-after)" "busy:1" "code busy, Retry-After: 1"
i=0
until [ "$(c http://127.0.0.1:$P2/health)" = 200 ]; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
is "$(c http://127.0.0.1:$P2/health)" 200 "a new inference process serves the same listener"

# --- configuration errors ----------------------------------------------------------------------
printf 'listen: %s/x.sock\nmodel: %s\nhttp: {listen: ["127.0.0.1:%s"]}\n' $T $LG $P > $T/nokeys.yaml
like "$(./guardd -t -c $T/nokeys.yaml 2>&1)" "needs http.keys_file" "a TCP listener without keys: a configuration error"
printf 'listen: %s/x.sock\nmodel: %s\nhttp: {listen: ["127.0.0.1:%s"], keys_file: %s/none}\n' $T $LG $P $T > $T/missing.yaml
like "$(./guardd -t -c $T/missing.yaml 2>&1)" "http.keys_file" "an unreadable keys file stops guardd, named"
printf 'short\n' > $T/shortkeys
printf 'listen: %s/x.sock\nmodel: %s\nhttp: {listen: ["127.0.0.1:%s"], keys_file: %s/shortkeys}\n' $T $LG $P $T > $T/short.yaml
like "$(./guardd -t -c $T/short.yaml 2>&1)" "shorter than 16 bytes" "a key shorter than 16 bytes is refused"
printf 'listen: %s/x.sock\nmodel: %s\nhttp: {listen: ["127.0.0.1:%s"], auth: none}\n' $T $LG $P > $T/busy.yaml
./guardd -f -c $T/busy.yaml > $T/busy.out 2>&1
is "$?" 73 "a port in use: exit 73 (EX_CANTCREAT)"
like "$(cat $T/busy.out)" "127.0.0.1:$P" "naming the address"

# --- SIGHUP reads the keys again; a bad file leaves them as they were ------------------------------
KEY2=k2-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
printf '%s\n' "$KEY2" > $T/keys
kill -HUP $pid
i=0
until [ "$(c -H "Authorization: Bearer $KEY2" $TCP/metrics)" = 200 ]; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
is "$(c -H "Authorization: Bearer $KEY2" $TCP/metrics)" 200 "SIGHUP: the new key is taken"
is "$(c -H "$AUTH" $TCP/metrics)" 401 "and the old one refused"
printf 'short\n' > $T/keys
kill -HUP $pid
i=0
until grep -q "the HTTP keys stay" $T/err; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
like "$(cat $T/err)" "the HTTP keys stay" "SIGHUP with a bad keys file: logged"
is "$(c -H "Authorization: Bearer $KEY2" $TCP/metrics)" 200 "and the keys in force stay"

# --- drain: SIGTERM lets a stream in flight finish ---------------------------------------------
curl -s -N $U http://g/guardd/request -d '{"id": 4, "op": "chat", "stream": true, "max_tokens": 24, "messages": [{"role": "user", "content": "Tell me a story."}]}' > $T/drain &
cpid=$!
i=0
until [ -s $T/drain ]; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.05; done
kill -TERM $pid
wait $cpid
is "$(tail -c 14 $T/drain | tr '\n' '|')" "data: [DONE]||" "SIGTERM during a stream: the stream still ends with [DONE]"
wait $pid
is "$?" 0 "guardd exits 0 after the drain"
ok $([ ! -e $H ]; echo $?) "the HTTP Unix socket is removed"
kill -TERM $pid2
wait $pid2
is "$?" 0 "the second guardd exits 0 too"
# built with sanitizers (make check-asan), a leak or an error shows here and in the statuses
is "$(grep -c 'Sanitizer\|runtime error' $T/err $T/err2 | tr '\n' ' ')" "$T/err:0 $T/err2:0 " \
    "no sanitizer report from either guardd"
done_testing
