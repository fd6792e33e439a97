#!/bin/sh
# guardd under faults (tests/t_faults.c: a full log disk, log rotation, a SIGHUP storm, EMFILE,
# a deleted policy, a truncated model, a killed inference process, deadlines, a full queue,
# SIGTERM with work in flight), and a small soak: 12 clients x 60 requests with 12 hostile ones (2 of each kind)
# (make soak runs the long one: 64 x 1000 with 20 hostile).
B=${BUILD:-build}
M=$B/models
sh tests/tapcat.sh <<LIST
$B/tests/t_faults ./guardd $M/rig-l3.gguf $M/tiny-l3-bf16.gguf
sh tests/soak.sh 12 60 12
LIST
