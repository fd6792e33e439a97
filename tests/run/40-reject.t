#!/bin/sh
# Broken GGUF and safetensors files: each refused with a message naming the problem. The
# model hash (SHA-256, sidecar cache) and the SHA-256 code paths.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_reject $B/models
$B/tests/t_sha
LIST
