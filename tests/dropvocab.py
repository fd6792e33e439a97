#!/usr/bin/env python3
"""dropvocab.py - a copy of a Hugging Face model directory whose tokenizer.json lacks some
tokens: each named text is removed from model.vocab (its id becomes an unused pad) with every
merge that reads or makes it, so the text no longer encodes to one token. The weights are
linked, not copied. Used to test that the classifier refuses a vocabulary without the
Llama Guard answer tokens.
  dropvocab.py SRC_DIR DST_DIR TEXT...   (TEXT with backslash escapes, e.g. unsafe or '\\n\\n')"""
import json
import os
import shutil
import sys


def byte_level(text):
    """GPT-2 byte-level form of text: printable bytes as themselves, the others shifted to
    U+0100 and up (the Llama 3 vocabulary's spelling, e.g. "\\n" -> U+010A)."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return "".join(table[b] for b in text.encode("utf-8"))


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    drop = {byte_level(t.encode("ascii").decode("unicode_escape")) for t in sys.argv[3:]}
    with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    vocab = tok["model"]["vocab"]
    for t in drop:
        if t not in vocab:
            sys.exit("dropvocab: '%s' is not in %s's vocabulary" % (t, src))
        del vocab[t]

    def keep(m):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        return a not in drop and b not in drop and a + b not in drop

    tok["model"]["merges"] = [m for m in tok["model"]["merges"] if keep(m)]
    tmp = dst + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name in os.listdir(src):
        if name == "tokenizer.json":
            continue
        os.symlink(os.path.abspath(os.path.join(src, name)), os.path.join(tmp, name))
    with open(os.path.join(tmp, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    shutil.rmtree(dst, ignore_errors=True)
    os.rename(tmp, dst)


main()
