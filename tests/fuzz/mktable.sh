#!/bin/sh
# mktable.sh - the campaign table of tests/fuzz/CAMPAIGN.md from the logs campaign.sh leaves
# in build-fuzz/campaign/ (run from the tree's top). One row per target: executions,
# seconds, the coverage of libFuzzer's last status line (cov: edges, ft: features), the
# minimised corpus committed.
echo "| target | executions | seconds | max_len | cov | ft | corpus files (bytes) | result |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for log in build-fuzz/campaign/*.log; do
	t=$(basename "$log" .log)
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	execs=$(grep '^stat::number_of_executed_units' "$log" | awk '{print $2}')
	cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	line=$(grep "^$t rc=" build-fuzz/campaign/summary | tail -1)
	secs=$(echo "$line" | sed -n 's/.*secs=\([0-9]*\).*/\1/p')
	ml=$(echo "$line" | sed -n 's/.*max_len=\([0-9]*\).*/\1/p')
	rc=$(echo "$line" | sed -n 's/.*rc=\([0-9]*\).*/\1/p')
	files=$(ls "tests/fuzz/corpus/$t" | wc -l)
	bytes=$(cat tests/fuzz/corpus/"$t"/* | wc -c)
	res=$([ "$rc" = 0 ] && echo "no finding" || echo "FINDING (rc $rc)")
	echo "| $t | $execs | $secs | $ml | $cov | $ft | $files ($bytes) | $res |"
done
