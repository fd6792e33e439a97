#!/bin/sh
# Message text: structure-spoof detection against obfuscated scaffolding (t_spoof), and
# conversations from JSON with field paths, duplicate keys and limits (t_conv).
B=${BUILD:-build}
sh tests/tapcat.sh <<LIST
$B/tests/t_spoof
$B/tests/t_conv
LIST
