#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""docs/asyncio.md must not drift from the examples: every C block marked
<!-- example: NAME.c --> is a run of top-level definitions cut from
docs/examples/NAME.c, each of which must appear there verbatim; and every
example program must be shown on the page.  Usage: check_doc.py asyncio.md
examples-dir"""
import os
import re
import sys

doc_path, ex_dir = sys.argv[1], sys.argv[2]
doc = open(doc_path, encoding='utf-8').read()
bad = 0
shown = set()
for m in re.finditer(r'<!-- example: ([\w.]+) -->\n```c\n(.*?)\n```', doc, re.S):
    name, code = m.group(1), m.group(2)
    shown.add(name)
    path = os.path.join(ex_dir, name)
    if not os.path.exists(path):
        print(f'{doc_path}: example {name} does not exist')
        bad += 1
    else:
        src = open(path, encoding='utf-8').read()
        # A blank line followed by a line at column 0 starts a definition.
        for part in re.split(r'\n\n(?=\S)', code):
            if part not in src:
                print(f'{doc_path}: this excerpt of {name} is no longer in the file:')
                print(part)
                bad += 1
for name in sorted(os.listdir(ex_dir)):
    if name.endswith('.c') and name not in shown:
        print(f'{doc_path}: example {name} is not shown on the page')
        bad += 1
sys.exit(1 if bad else 0)
