#!/bin/sh
# Image parts through a running guardd: msgpack binary parts, HTTP image_url data URLs.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
BUILD=$B sh tests/t_imaged.sh
LIST
