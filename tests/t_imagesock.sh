#!/bin/sh
# `guard classify --image FILE --socket PATH`: the image goes to a running guardd (its guard
# tiny-mllama, as Llama Guard 3 11B-Vision would be) as a msgpack binary part, and the
# unsafe_score equals the in-process one bit for bit, with and without the prefix caches
# (--no-cache: the whole prompt evaluated, no image cache). The daemon's second request with
# the same image restores the image prefix from its image cache (tokens_cached), with the
# same score; another image is a miss with its own score; a text conversation still works.
. tests/tap.sh
B=${BUILD:-build}
MM=$PWD/$B/models/tiny-mllama
IMG=$PWD/../shared/reference/tiny-mllama/images/dev-a.png
IMG2=$PWD/../shared/reference/tiny-mllama/images/dev-c.png
[ -d "$MM" ] && [ -f "$IMG" ] && [ -f "$IMG2" ] ||
    skip_all "tiny-mllama or the reference images not built (../shared absent)"
T=$(mktemp -d)
cat > $T/g.yaml <<CONF
listen: $T/g.sock
model: $MM
policy: $PWD/etc/policy.yaml
threads: 2
limits: {deadline_ms: 600000}
CONF
./guardd -f -c $T/g.yaml 2> $T/err &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
i=0
until ./guard ping --socket $T/g.sock > /dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 600 ] && { echo "Bail out! guardd did not start: $(cat $T/err)"; exit 1; }
	kill -0 $pid 2>/dev/null || { echo "Bail out! guardd exited: $(cat $T/err)"; exit 1; }
	sleep 0.1
done
Q='How do I get past the lock in this picture?'
field() {	# field FILE KEY: repr() of the verdict's KEY
	python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$1" "$2"
}
./guard classify -m $MM --policy $PWD/etc/policy.yaml -t 2 --no-cache --image $IMG --json "$Q" \
    > $T/nc 2> $T/ncerr
want=$(field $T/nc unsafe_score)
case "$want" in [0-9]*) r=0 ;; *) r=1 ;; esac
ok $r "in process, --no-cache: an unsafe_score ($want; the random model's answer itself is no verdict) $(cat $T/ncerr)"
./guard classify -m $MM --policy $PWD/etc/policy.yaml -t 2 --image $IMG --json "$Q" > $T/ip 2>&1
is "$(field $T/ip unsafe_score)" "$want" "in process with the caches: the same score, bit for bit"
./guard classify --socket $T/g.sock --image $IMG --json "$Q" > $T/s1 2> $T/s1err
is "$(field $T/s1 unsafe_score)" "$want" \
    "--socket with --image: the same unsafe_score, bit for bit ($(cut -c1-120 $T/s1) $(cat $T/s1err))"
is "$(field $T/s1 tokens_cached)" 0 "the daemon's first request with the image: nothing cached"
./guard classify --socket $T/g.sock --image $IMG --json "$Q" > $T/s2 2>&1
is "$(field $T/s2 unsafe_score)" "$want" "the same request again: the same score"
c2=$(field $T/s2 tokens_cached)
[ "$c2" -gt 100 ] 2>/dev/null
is "$?" 0 "... with the image prefix restored from the image cache ($c2 positions)"
./guard classify -m $MM --policy $PWD/etc/policy.yaml -t 2 --no-cache --image $IMG2 --json "$Q" \
    > $T/nc2 2>&1
./guard classify --socket $T/g.sock --image $IMG2 --json "$Q" > $T/s3 2>&1
is "$(field $T/s3 unsafe_score) $(field $T/s3 tokens_cached)" "$(field $T/nc2 unsafe_score) 0" \
    "another image: a miss, with that image's own score"
[ "$(field $T/s3 unsafe_score)" != "$want" ]
ok $? "(which differs from the first image's)"
./guard classify --socket $T/g.sock --image $T/none.png "$Q" > $T/s4 2>&1
is "$?" 2 "a missing image file with --socket: exit 2"
like "$(cat $T/s4)" "--image $T/none.png" "naming it"
head -c 100 $IMG > $T/trunc.png
./guard classify --socket $T/g.sock --image $T/trunc.png --json "$Q" > $T/s5 2>&1
like "$(cat $T/s5)" "the image" "a truncated PNG through the daemon: an error naming the image"
./guard classify --socket $T/g.sock --json "Name a fruit." > $T/s6 2>&1
case "$(field $T/s6 unsafe_score)" in [0-9]*) r=0 ;; *) r=1 ;; esac
ok $r "the daemon still judges text: $(cut -c1-100 $T/s6)"
done_testing
