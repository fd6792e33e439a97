#!/usr/bin/python3
"""Renders Meta's official chat templates of Llama 3.2 Instruct (../shared/spec/templates/
l32_template.txt) and Llama 2 chat (l2_template.txt), verbatim, the way transformers'
apply_chat_template does (its Jinja2 environment, bos/eos tokens as text), for tests that
compare guard's chat prompts with them byte for byte.

usage: render_chat.py llama3|llama2 TEMPLATE CASES.jsonl OUTDIR
Each line of CASES.jsonl is {"messages": [...], "add_generation_prompt": BOOL (default true),
"date": "25 Sep 2024" (Llama 3)}; the render of line N (from 1) goes to OUTDIR/N, or
OUTDIR/N.err with the template's exception. Content given as text parts is joined into one
string first: guard's chat contract concatenates parts (the templates read strings)."""
import json
import os
import sys

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(msg):
    raise Exception(msg)


def main():
    fmt, tpath, cases, outdir = sys.argv[1:5]
    template = open(tpath, encoding="utf-8").read()
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.globals["raise_exception"] = raise_exception
    tpl = env.from_string(template)
    bos, eos = ("<|begin_of_text|>", "<|eot_id|>") if fmt == "llama3" else ("<s>", "</s>")
    for n, line in enumerate(open(cases, encoding="utf-8"), 1):
        case = json.loads(line)
        msgs = []
        for m in case["messages"]:
            c = m["content"]
            if isinstance(c, list):
                c = "".join(p["text"] for p in c)
            msgs.append({"role": m["role"], "content": c})
        kw = {"bos_token": bos, "eos_token": eos,
              "add_generation_prompt": case.get("add_generation_prompt", True)}
        if fmt == "llama3":
            kw["date_string"] = case["date"]
        try:
            out = tpl.render(messages=msgs, **kw)
        except Exception as ex:  # the template's raise_exception
            open(os.path.join(outdir, "%d.err" % n), "w").write(str(ex))
            continue
        open(os.path.join(outdir, str(n)), "wb").write(out.encode("utf-8"))


main()
