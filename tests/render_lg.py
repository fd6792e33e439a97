#!/usr/bin/python3
"""Renders Meta's official Llama Guard 3 1B chat template (../shared/spec/templates/
lg1b_template.txt, verbatim) the way transformers' apply_chat_template does, for tests that
compare guard's prompts with it byte for byte.

usage: render_lg.py TEMPLATE CASE.json > prompt
CASE: {"messages": [...], "categories": {...} (optional), "excluded": [...] (optional)}
String contents are given to the template as [{"type": "text", "text": ...}], the form the
1B template reads."""
import json
import sys

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(msg):
    raise Exception(msg)


def main():
    template = open(sys.argv[1], encoding="utf-8").read()
    case = json.load(open(sys.argv[2], encoding="utf-8"))
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.globals["raise_exception"] = raise_exception
    msgs = []
    for m in case["messages"]:
        c = m["content"]
        if isinstance(c, str):
            c = [{"type": "text", "text": c}]
        msgs.append({"role": m["role"], "content": c})
    kw = {}
    if "categories" in case:
        kw["categories"] = case["categories"]
    if "excluded" in case:
        kw["excluded_category_keys"] = case["excluded"]
    out = env.from_string(template).render(messages=msgs, **kw)
    sys.stdout.buffer.write(out.encode("utf-8"))


main()
