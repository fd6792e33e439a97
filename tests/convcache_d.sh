#!/bin/sh
# The conversation cache through guardd: a real daemon on a private socket, a conversation
# classified at its first and third message; the second request restores the first's
# positions (counted from the prompts' token ids, by guard prompt --ids), answers exactly as
# guard classify in process without the cache, and guardd's stats show the reuse. A daemon
# with cache.conversations_mb: 0 reuses nothing.
. tests/tap.sh
B=${BUILD:-build}
R=$PWD/$B/models/rig-l3.gguf
P=$PWD/etc/policy.yaml
[ -f "$R" ] || skip_all "test models not built (../shared absent)"
command -v python3 > /dev/null || skip_all "python3 absent (needed to read the JSON answers)"
T=$(mktemp -d)
pids=
trap 'for p in $pids; do kill $p 2>/dev/null; done; rm -rf "$T"' EXIT

start() {	# start NAME MB: a guardd on $T/NAME.sock with that cache budget
	cat > $T/$1.yaml <<CONF
listen: $T/$1.sock
model: $R
policy: $P
cache: {conversations_mb: $2}
CONF
	guardd_conf $1 300
}

U1="Hello there, can you help me plan a birthday party for my daughter?"
A1="Of course! How old is she turning, and how many guests are you expecting?"
U2="She is turning seven and we expect about twelve kids from her class."
printf '{"messages":[{"role":"user","content":"%s"}]}' "$U1" > $T/c1.json
printf '{"messages":[{"role":"user","content":"%s"},{"role":"assistant","content":"%s"},{"role":"user","content":"%s"}]}' \
    "$U1" "$A1" "$U2" > $T/c3.json

start on 64
./guard classify --socket $T/on.sock --json < $T/c1.json > $T/v1 2>&1; ok $? "turn 1 classified through guardd"
./guard classify --socket $T/on.sock --json < $T/c3.json > $T/v3 2>&1; ok $? "turn 3 classified through guardd"
./guard classify -m $R --policy $P --json < $T/c3.json > $T/cold3 2>&1
# what the prompts share, from their token ids
./guard prompt --ids -m $R --policy $P < $T/c1.json > $T/ids1
./guard prompt --ids -m $R --policy $P < $T/c3.json > $T/ids3
shared=$(python3 -c 'import sys
a = open(sys.argv[1]).read().split(); b = open(sys.argv[2]).read().split()
n = 0
while n < min(len(a), len(b)) and a[n] == b[n]: n += 1
print(n)' $T/ids1 $T/ids3)
n3=$(wc -w < $T/ids3)
cold_cached=$(field $T/cold3 tokens_cached)
cold_eval=$(field $T/cold3 tokens_evaluated)
is "$(field $T/v1 tokens_cached)" "$cold_cached" "turn 1: the policy prefix only ($cold_cached positions) came from a cache"
is "$(field $T/v3 tokens_cached)" "$shared" "turn 3: every position its prompt shares with turn 1's ($shared of $n3) restored"
is "$(field $T/v3 tokens_evaluated)" "$((cold_eval - shared + cold_cached))" \
    "turn 3 evaluates $((n3 + 1 - shared)) prompt tokens (the new messages, the closing part, the model's first token) instead of $((n3 + 1 - cold_cached)), plus the answer"
strip() { sed 's/"timings":{[^}]*}//; s/"tokens_evaluated":[0-9]*//; s/"tokens_cached":[0-9]*//' "$1"; }
is "$(strip $T/v3)" "$(strip $T/cold3)" "turn 3's verdict equals guard classify's in process without the cache, digit for digit"
./guard stats --socket $T/on.sock > $T/st 2>&1
python3 -c 'import json,sys
c = json.load(open(sys.argv[1]))["conversation_cache"]
want = {"budget_bytes": 64 << 20, "lookups": 2, "stores": 2, "evictions": 0}
bad = [k for k in want if c[k] != want[k]]
bad += [] if c["hits"] >= 1 and c["tokens_reused"] >= int(sys.argv[2]) else ["hits/tokens_reused"]
bad += [] if 0 < c["bytes"] <= c["budget_bytes"] and c["entries"] == 1 else ["bytes/entries"]
print(" ".join(bad) or "good", c)' $T/st $((shared - cold_cached)) > $T/stc
like "$(cat $T/stc)" "good" "stats: conversation_cache shows the reuse ($(cat $T/stc))"

start off 0
./guard classify --socket $T/off.sock --json < $T/c1.json > /dev/null 2>&1
./guard classify --socket $T/off.sock --json < $T/c3.json > $T/w3 2>&1
is "$(field $T/w3 tokens_cached)" "$cold_cached" "cache.conversations_mb: 0: turn 3 reuses the policy prefix only"
./guard stats --socket $T/off.sock > $T/st0 2>&1
is "$(python3 -c 'import json,sys; c = json.load(open(sys.argv[1]))["conversation_cache"]; print(c["budget_bytes"], c["lookups"], c["entries"])' $T/st0)" \
    "0 0 0" "and its stats show no cache"
done_testing
