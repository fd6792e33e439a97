#!/bin/sh
# layers.sh - every #include "dir/file.h" points down or within its own folder:
# util <- core, policy <- classifier, generator <- proto <- daemon, cli
# (classifier and generator meet only in the daemon; daemon and cli are siblings).
# Prints TAP: one test per folder, and names each offending line.
allowed() {
	case $1 in
	util) echo "util" ;;
	core) echo "util core" ;;
	policy) echo "util policy" ;;
	classifier) echo "util core policy classifier" ;;
	generator) echo "util core policy generator" ;;
	proto) echo "util core policy classifier generator proto" ;;
	daemon) echo "util core policy classifier generator proto daemon" ;;
	cli) echo "util core policy classifier generator proto cli" ;;
	esac
}
cd "${1:-.}" || exit 1
n=0
bad_total=0
echo "1..8"
for d in util core policy classifier generator proto daemon cli; do
	n=$((n + 1))
	ok=$(allowed $d)
	bad=0
	files=$(ls $d/*.c $d/*.h 2>/dev/null)
	count=0
	for f in $files; do
		count=$((count + 1))
		# a quoted include must name its folder; a bare "x.h" is refused too (it hides the layer)
		grep -n '^#[ 	]*include[ 	]*"' "$f" | while IFS= read -r line; do
			inc=$(echo "$line" | sed 's/.*include[ 	]*"\([^"]*\)".*/\1/')
			top=${inc%%/*}
			if [ "$top" = "$inc" ]; then
				echo "# $f: $line: include without its folder"
				echo BAD
				continue
			fi
			case " $ok " in
			*" $top "*) ;;
			*) echo "# $f: $line: $d may not include from $top/"; echo BAD ;;
			esac
		done
	done > /tmp/layers.$$ 2>&1
	grep -v '^BAD$' /tmp/layers.$$
	bad=$(grep -c '^BAD$' /tmp/layers.$$)
	rm -f /tmp/layers.$$
	if [ "$bad" -eq 0 ]; then
		echo "ok $n - $d/: $count files include only from: $ok"
	else
		echo "not ok $n - $d/: $bad includes from above or beside its layer"
		bad_total=$((bad_total + 1))
	fi
done
[ $bad_total -eq 0 ]
