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
like() {	# like GOT SUBSTRING DESCRIPTION
	case "$1" in *"$2"*) ok 0 "$3" ;; *) ok 1 "$3"; echo "#   got: '$1'"; echo "#  want substring: '$2'" ;; esac
}
skip_all() { echo "1..0 # SKIP $1"; exit 0; }
done_testing() { echo "1..$TAP_N"; exit $TAP_FAIL; }
