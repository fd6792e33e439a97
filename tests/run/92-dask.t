#!/bin/sh
# contrib/dask/guard_dask.py on a real Dask LocalCluster with 2 worker processes: equal to
# one guard filter run, a worker killed mid-run, children that die (tests/dask_check.py).
. tests/tap.sh
B=${BUILD:-build}
R=$B/models/rig-l3.gguf
[ -f "$R" ] || skip_all "test models not built (../shared absent)"
# Under make check-asan each worker's guard filter is an ASan build and a LocalCluster of
# them takes many minutes on 2 cores; the guard filter code it drives is checked under ASan
# by 70-classify-filter.t, and this test runs in make check.
case "$B" in *asan*) skip_all "the Dask cluster runs in make check; under ASan guard filter is covered by 70-classify-filter.t" ;; esac
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
