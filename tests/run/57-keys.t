#!/bin/sh
# The key tables of guardd.yaml and of policies: the loaders' tests, and the manuals
# checked against the tables both ways.
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_config
$B/tests/t_keys
LIST
