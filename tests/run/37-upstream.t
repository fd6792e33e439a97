#!/bin/sh
# The proxy's upstream client (daemon/upstream.c) against tests/upstream.py, plain and TLS.
exec sh tests/upstream_t.sh
