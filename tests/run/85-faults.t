#!/bin/sh
# guardd under faults (tests/t_faults.c: a full log disk, log rotation, a SIGHUP storm, EMFILE,
# a deleted policy, a truncated model, a killed inference process, deadlines, a full queue,
# SIGTERM with work in flight), and a small soak: 12 clients x 60 requests with 12 hostile ones (2 of each kind)
# (make soak runs the long one: 64 x 1000 with 20 hostile).
# Under the sanitizers (build-asan) the well-behaved clients send 20 requests each, not 60:
# the same paths (every hostile kind, 4 in flight per client), a third of the repetitions.
B=${BUILD:-build}
M=$B/models
PER=60
case "$B" in *asan*) PER=20; echo "# ASan: soak of 12 clients x $PER of 60 requests each (all its checks kept)" ;; esac
sh tests/tapcat.sh <<LIST
$B/tests/t_faults ./guardd $M/rig-l3.gguf $M/tiny-l3-bf16.gguf
sh tests/soak.sh 12 $PER 12
LIST
