# SPDX-License-Identifier: MIT
"""The public headers as a user's compiler sees them (issue 18.3).

usage: api_check.py INCLUDE_DIR CC [CC ARGS...]

  - each of ursa.h and ursa/*.h compiles alone, included first, as C11
    (-Wall -Wextra -Werror) and, where a C++ compiler is found (clang++, else
    c++), as C++17; without one the C++ half is skipped with a message;
  - no ursa/*.h includes ursa.h: the sub-headers include one way;
  - every flag parameter or field that ursa defines is uint32_t (the POSIX
    calls keep their int flags, passed to the kernel as they are);
  - every uint64_t parameter is a time whose name says its kind: deadline_ns
    (a point in time) or another *_ns (a duration); a call named *_until
    takes a deadline_ns, one named *_after a timeout_ns.

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


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # preprocessor lines, continuations included
    return re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)


def split_params(params):
    """Top-level comma split of a parameter list."""
    out, depth, cur = [], 0, ""
    for ch in params:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return [] if out == ["void"] else out


def param_name_type(param):
    """(name, type) of one parameter; function pointers give their name."""
    m = re.match(r"^(.*?)\(\s*\*\s*(\w+)\s*\)\s*\(.*\)$", param, re.S)
    if m:
        return m.group(2), m.group(1).strip() + " (*)()"
    if param == "...":
        return "...", "..."
    m = re.match(r"^(.*?)(\w+)\s*(\[\s*\w*\s*\])?$", param, re.S)
    return m.group(2), " ".join(m.group(1).split())


class Decl:
    def __init__(self, header, ret, name, params, nodiscard):
        self.header, self.ret, self.name, self.nodiscard = header, ret, name, nodiscard
        self.params = [param_name_type(p) for p in split_params(params)]


def declarations():
    """Every exported function: URSA_API [URSA_NODISCARD] ret name(params)."""
    decls = []
    for h in headers():
        text = strip_comments(open(os.path.join(inc, h)).read())
        for m in re.finditer(r"URSA_API\s+(URSA_NODISCARD\s+)?([^;(]*?)\b(ursa_\w+)\s*"
                             r"\((.*?)\)\s*(?:URSA_PRINTF_\(\s*\d+\s*,\s*\d+\s*\)\s*)?;",
                             text, re.S):
            decls.append(Decl(h, " ".join(m.group(2).split()), m.group(3), m.group(4),
                              bool(m.group(1))))
    return decls


def struct_fields():
    """(struct, field, type) for every public struct's fields."""
    out = []
    for h in headers():
        text = strip_comments(open(os.path.join(inc, h)).read())
        for m in re.finditer(r"struct\s+(ursa_\w+)\s*\{(.*?)\}\s*;", text, re.S):
            for field in m.group(2).split(";"):
                field = " ".join(field.split())
                if not field:
                    continue
                name, typ = param_name_type(field)
                out.append((m.group(1), name, typ))
    return out


# POSIX-shaped calls: their int flags go to the kernel unchanged.
POSIX_FLAGS = {"ursa_open", "ursa_openat", "ursa_statx", "ursa_accept4", "ursa_recv",
               "ursa_send", "ursa_send_zc", "ursa_recvmsg", "ursa_sendmsg", "ursa_sendto",
               "ursa_recvfrom"}


def check_flags(decls):
    n = 0
    for d in decls:
        for name, typ in d.params:
            if name != "flags":
                continue
            n += 1
            if d.name in POSIX_FLAGS:
                check(typ == "int", "%s: POSIX flags should stay int, not %s" % (d.name, typ))
            else:
                check(typ == "uint32_t", "%s: flags is %s, not uint32_t" % (d.name, typ))
    for struct, name, typ in struct_fields():
        if name == "flags":  # private fields end in '_' and are not checked
            n += 1
            check(typ == "uint32_t", "struct %s.flags is %s, not uint32_t" % (struct, typ))
    check(n >= 15, "only %d flag parameters and fields found: is the parser broken?" % n)


def check_times(decls):
    n = 0
    for d in decls:
        for name, typ in d.params:
            if typ == "uint64_t":
                n += 1
                check(name.endswith("_ns"), "%s: uint64_t %s does not end in _ns" % (d.name, name))
        names = [name for name, _ in d.params]
        if d.name.endswith("_until"):
            check("deadline_ns" in names, "%s takes no deadline_ns" % d.name)
        if d.name.endswith("_after"):
            check("timeout_ns" in names and "deadline_ns" not in names,
                  "%s must take a timeout_ns, not a deadline" % d.name)
    check(n >= 8, "only %d time parameters found: is the parser broken?" % n)


def main():
    with tempfile.TemporaryDirectory() as scratch:
        check_headers(scratch)
    decls = declarations()
    check(len(decls) > 140, "only %d declarations parsed: is the parser broken?" % len(decls))
    check_flags(decls)
    check_times(decls)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("api: every check passed (%d headers)" % len(headers()))
    return 0


sys.exit(main())
