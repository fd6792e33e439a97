#!/bin/sh
# guard classify --image --socket: the image sent to guardd as a msgpack binary part, the
# same score as in process; the daemon's image cache (t_imagesock.sh).
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
BUILD=$B sh tests/t_imagesock.sh
LIST
