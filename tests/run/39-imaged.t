#!/bin/sh
# Image parts through a running guardd: msgpack binary parts, HTTP image_url data URLs; a
# text-only guard refuses to judge them, a vision guard (tiny-mllama) judges them.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
BUILD=$B sh tests/t_imaged.sh
BUILD=$B sh tests/t_imagedv.sh
LIST
