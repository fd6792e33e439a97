#!/bin/sh
# Policy files, answer parsing and decisions, and the classifier on the rigged and random models.
B=${BUILD:-build}
M=$B/models
sh tests/tapcat.sh <<LIST
$B/tests/t_policy
$B/tests/t_verdict
$B/tests/t_guard $M/rig-l3.gguf $M/tiny-l3-bf16.gguf
LIST
