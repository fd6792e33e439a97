# tap.sh - TAP helpers for the shell tests (sourced).
TAP_N=0
TAP_FAIL=0
ok() {	# ok CONDITION-STATUS DESCRIPTION
	TAP_N=$((TAP_N + 1))
	if [ "$1" -eq 0 ]; then echo "ok $TAP_N - $2"; else echo "not ok $TAP_N - $2"; TAP_FAIL=1; fi
}
is() {	# is GOT WANT DESCRIPTION
	if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got: '$1'"; echo "#  want: '$2'"; fi
}
isnt() {	# isnt GOT UNWANTED DESCRIPTION
	if [ "$1" != "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got: '$1' (unwanted)"; fi
}
like() {	# like GOT SUBSTRING DESCRIPTION
	case "$1" in *"$2"*) ok 0 "$3" ;; *) ok 1 "$3"; echo "#   got: '$1'"; echo "#  want substring: '$2'" ;; esac
}
skip_all() { echo "1..0 # SKIP $1"; exit 0; }
done_testing() { echo "1..$TAP_N"; exit $TAP_FAIL; }
# guardd_ready PID ERRFILE TRIES COMMAND...: polls COMMAND (output discarded) every 0.1 s until
# it succeeds; bails out, showing ERRFILE, when guardd PID exits or after TRIES polls
guardd_ready() {
	_pid=$1 _err=$2 _tries=$3 _i=0
	shift 3
	until "$@" > /dev/null 2>&1; do
		_i=$((_i + 1))
		[ $_i -gt $_tries ] && { echo "Bail out! guardd did not start: $(cat $_err)"; exit 1; }
		kill -0 $_pid 2>/dev/null || { echo "Bail out! guardd exited: $(cat $_err)"; exit 1; }
		sleep 0.1
	done
}
# guardd_conf NAME TRIES: ./guardd -f -c $T/NAME.yaml in the background, its pid added to
# $pids (for the caller's trap) and its stderr in $T/NAME.err; ready when $T/NAME.sock pings
guardd_conf() {
	./guardd -f -c $T/$1.yaml 2> $T/$1.err &
	pid=$!
	pids="$pids $pid"
	guardd_ready $pid $T/$1.err $2 ./guard ping --socket $T/$1.sock
}
# field FILE KEY.PATH: a value of a JSON document (floats as repr: every digit)
field() {
	python3 -c 'import json,sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v = v[k]
print(repr(v) if isinstance(v, float) else v)' "$1" "$2"
}
