#!/bin/sh
# Runs several TAP-printing commands (one per line on stdin) as one TAP stream: tests are
# renumbered, a skipped program becomes one skipped test, a crash or non-zero exit without
# failures becomes a failure. Usage: tapcat.sh < list-of-commands
# A command written "full: CMD" repeats code paths another command of the list already runs
# (another kernel family, another file format of the same weights): make check runs it, and
# under the sanitizers (BUILD=build-asan), where it costs 3-5x, it becomes one skipped test
# that names it.
n=0
fail=0
while IFS= read -r cmd; do
	[ -z "$cmd" ] && continue
	case "$cmd" in
	"full: "*)
		cmd=${cmd#full: }
		if [ "${BUILD:-build}" = build-asan ]; then
			n=$((n + 1))
			echo "ok $n # skip under ASan, run by make check (same paths as the others): $cmd"
			continue
		fi
		;;
	esac
	t0=$(date +%s.%N)
	out=$(sh -c "$cmd" 2>&1)
	rc=$?
	t1=$(date +%s.%N)
	plan_seen=0
	sub_fail=0
	while IFS= read -r line; do
		case "$line" in
		"ok "*|"not ok "*)
			n=$((n + 1))
			case "$line" in "not ok"*) sub_fail=1; fail=1; st="not ok" ;; *) st="ok" ;; esac
			rest=$(printf '%s\n' "$line" | sed -E 's/^(not )?ok [0-9]+ ?//')
			printf '%s %s %s\n' "$st" "$n" "$rest"
			;;
		"1..0 # SKIP"*|"1..0 # skip"*)
			plan_seen=1
			n=$((n + 1))
			echo "ok $n # skip ${line#1..0 # [Ss][Kk][Ii][Pp] } ($cmd)"
			;;
		1..*) plan_seen=1 ;;
		*) printf '# %s\n' "$line" ;;
		esac
	done <<EOT
$out
EOT
	if [ $rc -ne 0 ] && [ $sub_fail -eq 0 ] || [ $plan_seen -eq 0 ]; then
		n=$((n + 1))
		fail=1
		echo "not ok $n - '$cmd' exited with status $rc (plan seen: $plan_seen)"
	fi
	# wall time per command, so the slow ones in CI's log are plain to see
	awk -v a="$t0" -v b="$t1" -v c="$cmd" 'BEGIN { printf "# %.1f s: %s\n", b - a, c }'
done
echo "1..$n"
exit $fail
