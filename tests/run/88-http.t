#!/bin/sh
# The HTTP front: its bearer keys (tests/t_http_keys.c), then the daemon with real clients
# (tests/t_http.sh): curl over --unix-socket and TCP, auth, limits, malformed requests, many
# headers, slow bodies, pipelining, vanishing clients, /health, /metrics, the drain.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_http_keys
BUILD=$B sh tests/t_http.sh
LIST
