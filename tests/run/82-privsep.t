#!/bin/sh
# guardd's start-up order and privilege separation (tests/privsep.sh).
B=${BUILD:-build}
if [ ! -f $B/models/rig-l3.gguf ]; then
	echo "1..0 # skip no test models (../shared is absent)"
	exit 0
fi
exec sh tests/privsep.sh ./guardd ./guard $B/models/rig-l3.gguf etc/policy.yaml
