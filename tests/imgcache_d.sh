#!/bin/sh
# The image cache through guardd (cache.images, cache.images_mb): a vision guard
# (tiny-mllama) with room for one image, asked about image A, A, B, A: the stats answer and
# /metrics count exactly 1 hit, 3 misses, 2 evictions and 1 entry; a guard with the cache off
# (cache.images: 0) gives the same verdicts, bit for bit, and counts nothing; bad values of
# the keys are refused naming the key.
. tests/tap.sh
B=${BUILD:-build}
MM=$PWD/$B/models/tiny-mllama
P=$PWD/etc/policy.yaml
IA=$PWD/../shared/reference/tiny-mllama/images/dev-a.png
IB=$PWD/../shared/reference/tiny-mllama/images/dev-b.png
[ -d "$MM" ] && [ -f "$IA" ] && [ -f "$IB" ] || skip_all "tiny-mllama or the reference images not built (../shared absent)"
command -v python3 > /dev/null || skip_all "python3 absent (needed to read the JSON answers)"
command -v curl > /dev/null || skip_all "curl is not installed"
T=$(mktemp -d)
pids=
trap 'for p in $pids; do kill $p 2>/dev/null; done; rm -rf "$T"' EXIT

conf() {	# conf NAME CACHE-LINE: a config for a guardd on $T/NAME.sock
	cat > $T/$1.yaml <<CONF
listen: $T/$1.sock
model: $MM
policy: $P
limits: {deadline_ms: 600000}
$2
http:
  listen: [$T/$1.http]
CONF
}
start() {	# start NAME CACHE-LINE
	conf "$1" "$2"
	guardd_conf $1 600
}
metric() {	# metric FILE NAME: a sample's value in Prometheus text
	awk -v n="$2" '$1 == n { print $2 }' "$1"
}
Q='What is shown in this picture?'

# --- bad values are refused naming the key ----------------------------------------------
for bad in "images: -1|cache.images: -1" "images: 1025|cache.images" \
    "images_mb: 1048577|cache.images_mb" "images_mb: lots|cache.images_mb"; do
	v=${bad%%|*} want=${bad#*|}
	conf bad "cache: {$v}"
	out=$(./guardd -t -c $T/bad.yaml 2>&1); rc=$?
	isnt "$rc" 0 "cache: {$v} is refused (exit $rc)"
	like "$out" "$want" "... naming the key: $out"
done
conf good "cache: {images: 0, images_mb: 0}"
out=$(./guardd -t -c $T/good.yaml 2>&1); ok $? "cache: {images: 0, images_mb: 0} (the cache off) is accepted: $out"

# --- one entry, images A A B A ----------------------------------------------------------
start on "cache: {images: 1}"
start off "cache: {images: 0}"
i=0
for img in $IA $IA $IB $IA; do
	i=$((i + 1))
	# (tiny-mllama's weights are random: its answer is seldom 'safe', so the decision is
	# often "error" and guard exits 2; the answer and scores are what is compared)
	for d in on off; do
		./guard classify --socket $T/$d.sock --image $img --json "$Q" > $T/$d.$i 2> $T/$d.$i.err
		eval rc_$d=$?
		like "$(field $T/$d.$i policy)" default "request $i ($(basename $img)) judged by the guard with the cache $d"
	done
	is "$rc_on" "$rc_off" "request $i: the same exit status with the cache on and off ($rc_off)"
	is "$(field $T/on.$i unsafe_score)" "$(field $T/off.$i unsafe_score)" \
	    "request $i: the same unsafe_score ($(field $T/off.$i unsafe_score))"
	is "$(field $T/on.$i decision)|$(field $T/on.$i raw)" "$(field $T/off.$i decision)|$(field $T/off.$i raw)" \
	    "request $i: the same decision and answer text"
	is "$(field $T/off.$i tokens_cached)" 0 "request $i, cache off: no positions restored"
done
# the hit restored the whole image prefix: what the miss evaluated beyond the answer
n1=$(field $T/on.1 tokens_evaluated) n2=$(field $T/on.2 tokens_evaluated) c2=$(field $T/on.2 tokens_cached)
is "$(field $T/on.1 tokens_cached)" 0 "request 1 (a miss): no positions restored"
[ "$c2" -gt 0 ] 2>/dev/null; ok $? "request 2 (a hit): $c2 positions restored"
is "$((n2 + c2))" "$n1" "request 2: restored + evaluated = request 1's evaluated ($n1)"
is "$(field $T/on.3 tokens_cached)|$(field $T/on.4 tokens_cached)" "0|0" \
    "requests 3 and 4 (misses after evictions): no positions restored"
isnt "$(field $T/on.1 unsafe_score)" "$(field $T/on.3 unsafe_score)" \
    "the two images get different scores (a hit on the wrong image would show)"

./guard stats --socket $T/on.sock > $T/st 2>&1; ok $? "guard stats (cache on)"
for kv in lookups=4 hits=1 misses=3 partial_hits=0 stores=3 evictions=2 entries=1 max_entries=1 \
    budget_bytes=1073741824; do
	is "$(field $T/st image_cache.${kv%%=*})" "${kv#*=}" "stats image_cache.${kv%%=*} is ${kv#*=}"
done
bytes=$(field $T/st image_cache.bytes)
[ "$bytes" -gt 0 ] 2>/dev/null; ok $? "stats image_cache.bytes: one entry's, more than 0 ($bytes)"

curl -sf --unix-socket $T/on.http http://g/metrics > $T/m; ok $? "GET /metrics (cache on)"
for kv in lookups_total=4 hits_total=1 misses_total=3 partial_hits_total=0 evictions_total=2 \
    entries=1 bytes=$bytes; do
	is "$(metric $T/m guardd_image_cache_${kv%%=*})" "${kv#*=}" "/metrics guardd_image_cache_${kv%%=*} ${kv#*=}"
done
like "$(cat $T/m)" "# TYPE guardd_image_cache_hits_total counter" "the hits are typed a counter"
like "$(cat $T/m)" "# TYPE guardd_image_cache_bytes gauge" "the bytes a gauge"

./guard stats --socket $T/off.sock > $T/st0 2>&1; ok $? "guard stats (cache off)"
for k in lookups hits misses evictions entries bytes max_entries; do
	is "$(field $T/st0 image_cache.$k)" 0 "cache off: stats image_cache.$k is 0"
done
curl -sf --unix-socket $T/off.http http://g/metrics > $T/m0; ok $? "GET /metrics (cache off)"
is "$(metric $T/m0 guardd_image_cache_misses_total)" 0 "cache off: /metrics misses 0"

# the daemons survived all of it
for d in on off; do
	./guard ping --socket $T/$d.sock > /dev/null 2>&1; ok $? "the guardd with the cache $d still answers"
done
done_testing
