# SPDX-License-Identifier: MIT
"""bench, run small: every path of a few workloads does its work and passes its
own checks (counts, checksums), and under `no-io-uring` (io_uring_setup
refused by seccomp with EPERM, then ENOSYS) bench still runs the sync and
threaded paths, says why the ring paths cannot run, and exits 0.

usage: bench_test.py BENCH NO_IO_URING
Sizes are tiny: this proves behaviour, not speed (speed is bench's own job)."""
import re
import subprocess
import sys

bench, no_io_uring = sys.argv[1], sys.argv[2]
# Small and quick; --python "" leaves asyncio out (not what is tested here).
args = ["--quick", "--reps", "1", "--warmup", "0", "--budget", "1", "--min-time", "0.02",
        "--tasks", "200", "--sleep", "0.05", "--io-time", "0.05", "--files", "50",
        "--python", "", "--dir", "/tmp", "spawn", "sleep", "file-small", "net-echo",
        "lock-2core", "queue", "future"]
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg, flush=True)


def rows(out):
    """{(workload, impl): rest of the row} from bench's tables."""
    got, workload = {}, None
    for line in out.splitlines():
        m = re.match(r"^([a-z0-9-]+): ", line)
        if m:
            workload = m.group(1)
            continue
        m = re.match(r"^  (sync|threaded|ring|ref) +(\S+) +(.*)$", line)
        if m and workload and m.group(2) != "impl":
            if m.group(2) != "asyncio":  # left out on purpose (--python "")
                got[(workload, m.group(2))] = (m.group(1), m.group(3))
    return got


def run(prefix):
    p = subprocess.run(prefix + [bench] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=600)
    out = p.stdout.decode(errors="replace")
    print(out, flush=True)
    return p.returncode, out


def measured(rest):
    return not rest.startswith(("cannot run", "FAILED")) and re.match(r"[0-9.]+[kMG]? ", rest)


# With io_uring: every row measured (nothing here is allowed to be missing
# on this project's machines: fio is not involved, asyncio is left out).
rc, out = run([])
check(rc == 0, "bench exited %d with io_uring available" % rc)
r = rows(out)
check(len(r) >= 12, "expected every path's row, got %d" % len(r))
for (w, impl), (cls, rest) in r.items():
    check(measured(rest), "%s/%s did not run: %s" % (w, impl, rest))

# Without: the same rows; ring-needing ones say why, the rest are measured.
for err in ("EPERM", "ENOSYS"):
    rc, out = run([no_io_uring, "-e", err])
    check(rc == 0, "bench exited %d with io_uring refused (%s)" % (rc, err))
    check("io_uring is refused on this machine" in out, "no banner saying io_uring is refused")
    check("likely cause:" in out, "the header does not give the likely cause")
    r2 = rows(out)
    check(set(r2) == set(r), "rows differ without io_uring: %s" % sorted(set(r) ^ set(r2)))
    for (w, impl), (cls, rest) in r2.items():
        if cls == "ring" or impl == "raw-ring":
            check(rest.startswith("cannot run: io_uring is refused"),
                  "%s/%s (%s) should say io_uring is refused: %s" % (w, impl, err, rest))
        else:
            check(measured(rest), "%s/%s (%s) did not run: %s" % (w, impl, err, rest))

if failures:
    sys.exit(1)
print("ok: bench runs every path, and without io_uring runs the rest and says why")
