#!/bin/sh
# SPDX-License-Identifier: MIT
#
# tests/valgrind.sh PROGRAM [ARGS...]: run PROGRAM under valgrind's memcheck
# and fail if it fails or if memcheck found an error or a definite leak in
# any of its processes.
#
# Criterion runs each test in a child it forks and re-executes, and ignores
# the child's exit status once the test has reported, so --error-exitcode
# alone would let a child's errors pass: every process writes its own log
# (%p pid, %n sequence: a fork and the exec that follows share a pid) and the
# logs are checked here.  Stacks are registered with valgrind by lib/ (see
# lib/fiber/stack.c), and under valgrind the workers wait in poll(2) rather
# than in io_uring_enter (see lib/ring.c).
#
# --fair-sched=yes: valgrind runs one thread at a time under a lock, and its
# default lock is not fair.  A thread spinning on an ursa spinlock (lib/spin.h:
# spin, sched_yield every 256 tries) takes that lock straight back after each
# yield, so the holder it waits for may not run for seconds: fuzz_cancel 5000
# hit its 240 s watchdog that way (workers "joining its child"), and
# stress_sync never finished.  The fair (ticket) lock hands it to the next
# waiting thread.
set -u

here=$(cd "$(dirname "$0")" && pwd)
logs=$(mktemp -d "${TMPDIR:-/tmp}/ursa-valgrind.XXXXXX") || exit 1
trap 'rm -rf "$logs"' EXIT
trap 'exit 143' TERM INT # (a meson timeout): exit, so that the EXIT trap runs

valgrind --trace-children=yes --fair-sched=yes --error-exitcode=1 \
	--leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--suppressions="$here/valgrind.supp" \
	--log-file="$logs/%p.%n.log" "$@"
rc=$?

for f in "$logs"/*.log; do
	if grep -q 'ERROR SUMMARY: [1-9]' "$f"; then
		cat "$f" >&2
		rc=1
	fi
done
if [ "$rc" -ne 0 ]; then
	echo "valgrind.sh: $* failed (status or memcheck errors above)" >&2
fi
exit "$rc"
