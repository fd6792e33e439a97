#!/bin/sh
# Proxy mode end to end (tests/proxy_t.sh): the unsafe phrase never reaches the client and
# the upstream is closed; a blocked request never reaches it; TLS; upstream failures; a
# guardd as the upstream of a guardd.
exec sh tests/proxy_t.sh
