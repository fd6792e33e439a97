#!/usr/bin/python3
"""Splits a Hugging Face model directory's model.safetensors into two shards with a
model.safetensors.index.json, the way large checkpoints are shipped, for the loader's tests.
usage: shard.py SRC_DIR DST_DIR"""
import json
import os
import shutil
import struct
import sys

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
for f in os.listdir(src):
    if f != "model.safetensors":
        shutil.copy(os.path.join(src, f), os.path.join(dst, f))
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__", None)
data = raw[8 + n:]
names = list(header)
halves = [names[: len(names) // 2], names[len(names) // 2:]]
weight_map = {}
for k, part in enumerate(halves):
    fname = "model-%05d-of-00002.safetensors" % (k + 1)
    h, blob, off = {}, b"", 0
    for name in reversed(part):          # another order than the source: offsets must be read
        b, e = header[name]["data_offsets"]
        h[name] = dict(header[name], data_offsets=[off, off + (e - b)])
        blob += data[b:e]
        off += e - b
        weight_map[name] = fname
    if meta:
        h["__metadata__"] = meta
    hb = json.dumps(h).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(os.path.join(dst, fname), "wb") as fp:
        fp.write(struct.pack("<Q", len(hb)) + hb + blob)
json.dump({"metadata": {"total_size": len(data)}, "weight_map": weight_map},
          open(os.path.join(dst, "model.safetensors.index.json"), "w"), indent=1)
