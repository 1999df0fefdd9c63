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
    takes a deadline_ns, one named *_after a timeout_ns;
  - URSA_NODISCARD: every call that returns a status or a count is in one of
    the two lists below, the headers mark exactly the first, and the compiler
    agrees: a statement that drops the result of a listed call fails to
    compile with -Werror=unused-result, and one that drops the result of an
    exempt call compiles.  A new call must be put in one list or the other.

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


def compile_source(cmd, source, lang, flags, scratch, syntax_only=True):
    path = os.path.join(scratch, "t." + ("cc" if lang == "c++" else "c"))
    with open(path, "w") as f:
        f.write(source)
    # GCC checks warn_unused_result only when it compiles: not with
    # -fsyntax-only.
    mode = ["-fsyntax-only"] if syntax_only else ["-c", "-o", os.path.join(scratch, "t.o")]
    r = subprocess.run(cmd + flags + ["-I", inc] + mode + [path],
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
               "ursa_recvfrom", "ursa_preadv2", "ursa_pwritev2"}


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


# Calls whose result must be read (URSA_NODISCARD): waits, whose -ECANCELED or
# -ETIMEDOUT must end the caller's loop; calls that make or take something;
# calls whose out-parameters are only written on success.
NODISCARD = """
ursa_run ursa_spawn ursa_spawn_on ursa_spawn_ex ursa_join ursa_sleep ursa_sleep_until
ursa_blocking
ursa_mutex_lock ursa_mutex_trylock ursa_cond_wait ursa_cond_wait_for ursa_sem_acquire
ursa_sem_tryacquire ursa_event_wait ursa_barrier_wait ursa_waitgroup_wait
ursa_future_wait ursa_future_result ursa_blocking_submit
ursa_queue_create ursa_queue_create_prio ursa_queue_put ursa_queue_get ursa_queue_put_nowait
ursa_queue_get_nowait ursa_queue_join ursa_queue_select ursa_gen_create ursa_gen_yield
ursa_gen_next
ursa_join_outcome ursa_task_outcome ursa_gather ursa_wait ursa_wait_until ursa_wait_for
ursa_as_completed_init ursa_as_completed_next ursa_group_spawn ursa_group_spawn_on
ursa_group_spawn_ex ursa_group_exit ursa_ticker_wait
ursa_open ursa_openat ursa_openat2 ursa_read ursa_pread ursa_write ursa_pwrite ursa_readv ursa_writev
ursa_preadv ursa_pwritev ursa_preadv2 ursa_pwritev2 ursa_fd_inline ursa_iobuf_get
ursa_pread_path ursa_fsync ursa_fdatasync ursa_fallocate ursa_statx ursa_unlink
ursa_rmdir ursa_rename ursa_mkdir ursa_read_file ursa_write_file ursa_read_full
ursa_write_all ursa_socket ursa_accept ursa_accept4 ursa_connect ursa_recv ursa_send
ursa_send_zc ursa_recvmsg ursa_sendmsg ursa_sendto ursa_recvfrom ursa_shutdown
ursa_tcp_listen ursa_tcp_listen_ex ursa_tcp_connect ursa_unix_listen ursa_unix_connect
ursa_getaddrinfo ursa_bufgroup_create ursa_rx_create ursa_rx_recv
ursa_poll ursa_poll_until
ursa_reader_create ursa_reader_readline ursa_reader_readuntil ursa_reader_readexactly
ursa_reader_read ursa_reader_peek ursa_reader_fill ursa_writer_create ursa_writer_write
ursa_writer_writev ursa_writer_flush ursa_writer_close
ursa_process_create ursa_process_fd ursa_process_wait ursa_process_communicate
ursa_signal_create ursa_signal_wait
ursa_stats
""".split()

# Calls that end, release or signal something: called on cleanup paths, where
# a failure reports a programming error the caller cannot act on.
EXEMPT = """
ursa_cancel ursa_cancel_and_join ursa_close ursa_scope_exit ursa_mutex_unlock
ursa_sem_release ursa_waitgroup_add ursa_waitgroup_done ursa_future_set_result
ursa_future_set_error ursa_future_cancel ursa_queue_destroy ursa_queue_task_done
ursa_bufgroup_destroy ursa_rx_destroy ursa_gen_destroy ursa_iobuf_put
ursa_reader_consume ursa_reader_destroy ursa_writer_destroy ursa_process_close_fd
ursa_process_kill ursa_process_destroy ursa_signal_destroy
""".split()


def check_nodiscard(decls, scratch):
    status = {d.name: d for d in decls if d.ret in ("int", "ssize_t")}
    listed = set(NODISCARD) | set(EXEMPT)
    check(len(NODISCARD) == len(set(NODISCARD)) and not set(NODISCARD) & set(EXEMPT),
          "a call is listed twice")
    for name in sorted(set(status) - listed):
        check(False, "%s returns a status but is in neither list: decide whether it is "
              "URSA_NODISCARD (tests/api_check.py)" % name)
    for name in sorted(listed - set(status)):
        check(False, "%s is listed but not declared as a status-returning call" % name)
    for name in NODISCARD:
        if name in status:
            check(status[name].nodiscard, "%s is not URSA_NODISCARD" % name)
    for name in EXEMPT:
        if name in status:
            check(not status[name].nodiscard, "%s is URSA_NODISCARD but exempt" % name)
    # The compiler's view: each call dropped in a statement of its own line.
    lines, where = ["#include <ursa.h>", "void calls(void);", "void calls(void)", "{"], {}
    for name in sorted(status):
        args = ", ".join("0" for n, _ in status[name].params if n != "...")
        where[len(lines) + 1] = name
        lines.append("\t%s(%s);" % (name, args))
    lines.append("}")
    # As warnings, not -Werror: a compiler may stop reporting errors after a
    # limit (clang: 20), never warnings.
    rc, err = compile_source(cc, "\n".join(lines) + "\n", "c",
                             ["-std=gnu11", "-Wunused-result"], scratch, syntax_only=False)
    flagged = set()
    for m in re.finditer(r"t\.c:(\d+):\d+: warning:[^\n]*(?:unused|ignoring return)", err):
        if int(m.group(1)) in where:
            flagged.add(where[int(m.group(1))])
    for name in NODISCARD:
        check(name in flagged, "dropping the result of %s compiles" % name)
    for name in EXEMPT:
        check(name not in flagged, "dropping the result of %s does not compile" % name)
    check(rc == 0, "the call list does not compile:\n" + err)
    return len(NODISCARD), len(EXEMPT)


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
    decls = declarations()
    check(len(decls) > 140, "only %d declarations parsed: is the parser broken?" % len(decls))
    with tempfile.TemporaryDirectory() as scratch:
        check_headers(scratch)
        marked, exempt = check_nodiscard(decls, scratch)
    check_flags(decls)
    check_times(decls)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("api: every check passed (%d headers; %d calls URSA_NODISCARD, %d exempt)" %
          (len(headers()), marked, exempt))
    return 0


sys.exit(main())
