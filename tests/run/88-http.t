#!/bin/sh
# The HTTP front (tests/t_http.sh): curl over --unix-socket and TCP, auth, limits, malformed
# requests, many headers, slow bodies, pipelining, vanishing clients, /health, /metrics.
exec sh tests/t_http.sh
