#!/bin/sh
# campaign.sh - the libFuzzer campaign recorded in tests/fuzz/CAMPAIGN.md: each target named
# (default: all) built with make fuzz-build, run for RUNS executions (one at a time, niced:
# the machine is shared), its new inputs kept in build-fuzz/corpus/T, then minimised into the
# committed corpus with make fuzz-merge. Each run's log is build-fuzz/campaign/T.log; the
# summary line (execs, cov, ft, seconds) goes to build-fuzz/campaign/summary.
# Usage: sh tests/fuzz/campaign.sh [target...]   (RUNS=1000000 by default)
RUNS=${RUNS:-1000000}
mkdir -p build-fuzz/campaign
maxlen() {
	case $1 in
	gguf) echo 16384 ;;
	tok) echo 1024 ;;
	*) echo 4096 ;;
	esac
}
targets=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's#.*/fuzz_##; s#\.c$##')}
for t in $targets; do
	make -s fuzz-build T=$t > build-fuzz/campaign/$t.build 2>&1 || {
		echo "$t: build failed (build-fuzz/campaign/$t.build)"; exit 1; }
	mkdir -p build-fuzz/corpus/$t
	start=$(date +%s)
	nice -n 10 ./build-fuzz/fuzz-$t -runs=$RUNS -max_len=$(maxlen $t) -print_final_stats=1 \
		build-fuzz/corpus/$t tests/fuzz/corpus/$t > build-fuzz/campaign/$t.log 2>&1
	rc=$?
	end=$(date +%s)
	last=$(grep -E '^#[0-9]+' build-fuzz/campaign/$t.log | tail -1)
	execs=$(grep '^stat::number_of_executed_units' build-fuzz/campaign/$t.log | awk '{print $2}')
	echo "$t rc=$rc execs=$execs secs=$((end - start)) max_len=$(maxlen $t) last: $last" |
		tee -a build-fuzz/campaign/summary
	[ $rc -eq 0 ] || { echo "$t: FINDING, see build-fuzz/campaign/$t.log"; exit 1; }
	nice -n 10 make -s fuzz-merge T=$t FUZZ_ARGS="-max_len=$(maxlen $t)" \
		> build-fuzz/campaign/$t.merge 2>&1 || { echo "$t: merge failed"; exit 1; }
	echo "$t: corpus $(ls tests/fuzz/corpus/$t | wc -l) files" | tee -a build-fuzz/campaign/summary
done
