#!/bin/sh
# Broken GGUF and safetensors files: each refused with a message naming the problem.
B=${BUILD:-build}
exec $B/tests/t_reject $B/models
