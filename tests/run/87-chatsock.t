#!/bin/sh
# guard chat --socket against real guardd daemons (tests/t_chatsock.sh): the same output and
# exit statuses as in-process, errors from a daemon without a generator.
exec sh tests/t_chatsock.sh
