#!/bin/sh
# guard chat in-process: streaming behind the guard, refusals, exit statuses, --json, the
# interactive session (tests/t_chatcli.sh; the socket client: 87-chatsock.t).
exec sh tests/t_chatcli.sh
