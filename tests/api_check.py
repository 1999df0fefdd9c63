# SPDX-License-Identifier: MIT
"""The public headers as a user's compiler sees them (issue 18.3).

usage: api_check.py INCLUDE_DIR CC [CC ARGS...]

  - each of ursa.h and ursa/*.h compiles alone, included first, as C11
    (-Wall -Wextra -Werror) and, where a C++ compiler is found (clang++, else
    c++), as C++17; without one the C++ half is skipped with a message;
  - no ursa/*.h includes ursa.h: the sub-headers include one way.

tools/check-install.sh runs the header checks again on the installed tree.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

inc, cc = sys.argv[1], sys.argv[2:]
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg, flush=True)


def headers():
    """ursa.h and ursa/*.h, as include names."""
    subs = sorted(f for f in os.listdir(os.path.join(inc, "ursa")) if f.endswith(".h"))
    return ["ursa.h"] + ["ursa/" + f for f in subs]


def compile_source(cmd, source, lang, flags, scratch):
    path = os.path.join(scratch, "t." + ("cc" if lang == "c++" else "c"))
    with open(path, "w") as f:
        f.write(source)
    r = subprocess.run(cmd + flags + ["-I", inc, "-fsyntax-only", path],
                       capture_output=True, text=True)
    return r.returncode, r.stderr


def cxx_compiler():
    for name in ("clang++", "c++"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def check_headers(scratch):
    cxx = cxx_compiler()
    if not cxx:
        print("SKIP: no C++ compiler (clang++ or c++): the C++17 header check did not run")
    for h in headers():
        src = "#include <%s>\n" % h
        rc, err = compile_source(cc, src, "c", ["-std=c11", "-Wall", "-Wextra", "-Werror"],
                                 scratch)
        check(rc == 0, "%s alone does not compile as C11:\n%s" % (h, err))
        if cxx:
            rc, err = compile_source(cxx, src, "c++",
                                     ["-std=c++17", "-Wall", "-Wextra", "-Werror"], scratch)
            check(rc == 0, "%s alone does not compile as C++17:\n%s" % (h, err))
        if h.startswith("ursa/"):
            text = open(os.path.join(inc, h)).read()
            check(not re.search(r'#\s*include\s*[<"](\.\./)?ursa\.h[>"]', text),
                  "%s includes ursa.h (sub-headers include one way)" % h)


def main():
    with tempfile.TemporaryDirectory() as scratch:
        check_headers(scratch)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("api: every check passed (%d headers)" % len(headers()))
    return 0


sys.exit(main())
