#!/bin/sh
# The image cache of a vision guard through guardd: its keys (cache.images, cache.images_mb),
# its counters in the stats answer and /metrics, verdicts equal with it off.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
BUILD=$B sh tests/imgcache_d.sh
LIST
