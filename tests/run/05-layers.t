#!/bin/sh
# The include graph follows the layers (tests/layers.sh); and the checker itself catches a
# file that includes from above its layer (a copy of the tree with one bad include).
sh tests/layers.sh . | sed 's/^1\.\.8$//' | grep -v '^$' > /tmp/layers-out.$$
echo "1..10"
cat /tmp/layers-out.$$
rm -f /tmp/layers-out.$$
t=$(mktemp -d)
mkdir -p $t/util $t/core
printf '#include "core/model.h"\n' > $t/util/x.c
printf '#include "util/buf.h"\n' > $t/core/y.c
if sh tests/layers.sh $t > $t/out; then
	echo "not ok 9 - the checker refuses util/ including core/"
else
	echo "ok 9 - the checker refuses util/ including core/"
fi
if grep -q 'util/x.c.*util may not include from core/' $t/out && grep -q '^ok 2 - core/' $t/out; then
	echo "ok 10 - it names the offending file and passes the clean folder"
else
	echo "not ok 10 - it names the offending file and passes the clean folder"; sed 's/^/# /' $t/out
fi
rm -rf $t
