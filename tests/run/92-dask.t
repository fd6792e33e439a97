#!/bin/sh
# contrib/dask/guard_dask.py on a real Dask LocalCluster with 2 worker processes: equal to
# one guard filter run, a worker killed mid-run, children that die (tests/dask_check.py).
. tests/tap.sh
B=${BUILD:-build}
R=$B/models/rig-l3.gguf
[ -f "$R" ] || skip_all "test models not built (../shared absent)"
PY=/usr/bin/python3
$PY -c 'import distributed, pandas' 2>/dev/null ||
	{ echo "Bail out! python3-distributed is not installed (see .ci/deps)"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# the workers are spawned processes: they find the module through the environment
PYTHONPATH=$(pwd)/contrib/dask${PYTHONPATH:+:$PYTHONPATH} HOME=$T PYTHONDONTWRITEBYTECODE=1 \
	$PY tests/dask_check.py "$(pwd)/guard" "$(pwd)/$R" "$T" 2> $T/log
rc=$?
[ $rc -eq 0 ] || sed 's/^/# /' $T/log | tail -40
exit $rc
