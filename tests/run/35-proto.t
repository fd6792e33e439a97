#!/bin/sh
# The wire layer: incremental framing, msgpack -> JSON decoding, the request schema.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_proto
LIST
