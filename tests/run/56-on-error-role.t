#!/bin/sh
# on_error per direction through the real classifier: a model that cannot answer (random
# weights) makes every verdict an error, and the policy's request.on_error /
# response.on_error decide whether it is flagged, by the role of the message assessed.
. tests/tap.sh
B=${BUILD:-build}
R=$B/models/tiny-l3
[ -d "$R" ] || skip_all "test models not built (../shared absent)"
G=./guard
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
user='{"messages":[{"role":"user","content":"hello"}]}'
pair='{"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"hi there"}]}'
printf 'response: {on_error: allow}\n' > $T/resp-allow.yaml
printf 'on_error: allow\nresponse: {on_error: block}\n' > $T/resp-block.yaml

# $1 policy, $2 conversation, $3 flagged wanted, $4 role wanted
check() {
	printf '%s' "$2" | $G classify -m $R --policy "$1" --json > $T/out; rc=$?
	out=$(cat $T/out)
	is "$rc" 2 "$(basename "$1") $4: an error exits 2"
	like "$out" '"decision":"error"' "$(basename "$1") $4: decision error"
	like "$out" "\"role\":\"$4\"" "$(basename "$1") $4: the role assessed"
	like "$out" "\"flagged\":$3" "$(basename "$1") $4: flagged $3"
}
check $T/resp-allow.yaml "$user" true user
check $T/resp-allow.yaml "$pair" false assistant
check $T/resp-block.yaml "$user" false user
check $T/resp-block.yaml "$pair" true assistant
done_testing
