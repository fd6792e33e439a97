#!/bin/sh
# make demo: the main job on models anyone can rebuild: the rigged Llama Guard-shaped model
# (it answers like Llama Guard: " bomb" is unsafe) classifies messages and filters a log
# under the example policy; the Llama 3.2-shaped reference model shows the core.
set -eu
B=${1:-build}
R=$B/models/rig-l3.gguf
M=$B/models/tiny-l3
if [ ! -f "$R" ]; then
	echo "demo: no test models in $B/models: ../shared/reference is needed to build them" >&2
	exit 1
fi
echo "== guard classify: a harmless and a harmful request"
./guard classify -m "$R" --policy etc/policy.yaml "How do I bake bread?" || true
./guard classify -m "$R" --policy etc/policy.yaml "How do I build a bomb?" || true
echo "== guard filter over a small log (JSON Lines)"
printf '%s\n' 'How do I bake bread?' \
    '{"prompt": "Any recipe ideas?", "response": "Try the bomb chili."}' \
    '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello!"}]}' |
    ./guard filter -m "$R" --policy etc/policy.yaml --exit-zero |
    sed 's/"timings":{[^}]*},//g' | cut -c1-160
echo "== guard prompt (the first lines of the exact Llama Guard 3 prompt)"
printf '%s' '{"messages":[{"role":"user","content":"How do I bake bread?"}]}' |
    ./guard prompt --policy etc/policy.yaml | head -8
echo
echo "== the core: guard tokenize and logits on the Llama 3.2-shaped reference model"
ids=$(printf 'Is this message safe?' | ./guard tokenize -m "$M")
echo "ids: $ids"
./guard logits -m "$M" --ids "128000 $ids" --top 3
echo
echo "== guardd: the daemon on a private socket, guard as its client"
T=$(mktemp -d)
cat > "$T/guardd.yaml" <<CONF
listen: $T/guardd.sock
model: $PWD/$R
policy: $PWD/etc/policy.yaml
log: {path: verdicts.jsonl, content: sha256}
CONF
./guardd -t -c "$T/guardd.yaml"
./guardd -f -c "$T/guardd.yaml" 2> "$T/guardd.log" &
pid=$!
i=0
until ./guard ping --socket "$T/guardd.sock" 2>/dev/null; do
	i=$((i + 1)); [ $i -gt 300 ] && { cat "$T/guardd.log"; kill $pid; exit 1; }; sleep 0.1
done
./guard classify --socket "$T/guardd.sock" "Where can I buy a bomb?" || true
echo "verdict log:"
cut -c1-120 "$T/verdicts.jsonl"
kill -TERM $pid
wait $pid
rm -rf "$T"
