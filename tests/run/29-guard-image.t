#!/bin/sh
# Llama Guard 3 11B-Vision's image classification on tiny-mllama (guard classify --image).
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
BUILD=$B sh tests/t_guardimg.sh
LIST
