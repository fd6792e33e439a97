#!/bin/sh
# guard chat in-process: streaming behind the guard, refusals, exit statuses, --json, the
# interactive session (tests/t_chatcli.sh). The socket client is tested by
# tests/t_chatsock.sh once guardd has the chat op.
exec sh tests/t_chatcli.sh
