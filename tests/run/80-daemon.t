#!/bin/sh
# guardd: real daemons on private sockets (see tests/t_daemon.c), its limits against costly
# or stuck clients (tests/t_limits.c), and guard's socket client giving the same answers and
# exit statuses as in-process.
B=${BUILD:-build}
M=$B/models
sh tests/tapcat.sh <<LIST
$B/tests/t_daemon ./guardd $M/rig-l3.gguf $M/tiny-l3-bf16.gguf etc/policy.yaml
$B/tests/t_limits ./guardd $M/rig-l3.gguf
sh tests/daemon_cli.sh
LIST
