#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-aarch64.sh: checks both asm fiber backends with tools/cross/ctx_test.c:
# natively against switch_x86_64.S, then statically cross-built against
# switch_aarch64.S and run under qemu-user, once plain and once with
# -mbranch-protection=standard (BTI + PAC).  Installs the Debian cross
# toolchain and qemu-user if they are missing.  Exits non-zero on any failure.
#
# Usage: tools/cross/run-aarch64.sh
#   CC         the native compiler (default: cc)
#   BUILD_DIR  where to leave the binaries (default: a temporary directory)

set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
src=$root/tools/cross/ctx_test.c
cflags=(-std=gnu11 -O2 -g -Wall -Wextra -frounding-math -I"$root/lib/fiber")

if [ "$(uname -m)" != x86_64 ]; then
	echo "run-aarch64.sh: expects an x86-64 host (it runs aarch64 under qemu)" >&2
	exit 2
fi

# Install only what is missing.
need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.a ] || need+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || command -v qemu-aarch64-static >/dev/null ||
	need+=(qemu-user)
if [ ${#need[@]} -gt 0 ]; then
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "== installing: ${need[*]}"
	$sudo apt-get update -q
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static)

if [ -n "${BUILD_DIR:-}" ]; then
	out=$BUILD_DIR
	mkdir -p "$out"
else
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi

# The tests kill children on purpose (brk, ud2, BTI, PAC): no core files.
ulimit -c 0

native_x86_64() {
	"${CC:-cc}" "${cflags[@]}" "$src" "$root/lib/fiber/switch_x86_64.S" -lm \
		-o "$out/ctx_test-x86_64" &&
		timeout 300 "$out/ctx_test-x86_64"
}

# cross_aarch64 NAME EXPECTED_NOTE [FLAGS...]: EXPECTED_NOTE is what readelf
# must say of the switch object's GNU property note ("" for none).
cross_aarch64() {
	local name=$1 expected=$2 note
	shift 2
	aarch64-linux-gnu-gcc "${cflags[@]}" "$@" -c "$root/lib/fiber/switch_aarch64.S" \
		-o "$out/switch-$name.o" || return
	note=$(aarch64-linux-gnu-readelf -n "$out/switch-$name.o" |
		sed -n 's/^ *Properties: *//p')
	echo "switch_aarch64.o property note: ${note:-(none)}"
	if [ "$note" != "$expected" ]; then
		echo "expected: ${expected:-(none)}"
		return 1
	fi
	aarch64-linux-gnu-gcc -static "${cflags[@]}" "$@" "$src" "$out/switch-$name.o" -lm \
		-o "$out/ctx_test-$name" || return
	# The link keeps the note only if every input has it (Debian's libc.a
	# has none); ctx_test checks BTI by guarding its own pages instead.
	note=$(aarch64-linux-gnu-readelf -n "$out/ctx_test-$name" |
		sed -n 's/^ *Properties: *//p')
	echo "linked binary property note: ${note:-(none)}"
	# -cpu max: a CPU with PAuth and BTI, so both are exercised.
	timeout 300 "$qemu" -cpu max "$out/ctx_test-$name"
}

steps=0
failures=0
step() {
	local name=$1
	shift
	steps=$((steps + 1))
	echo "== $name"
	if "$@"; then
		echo "== $name: ok"
	else
		echo "== $name: FAILED"
		failures=$((failures + 1))
	fi
}

step "x86-64 native (switch_x86_64.S)" native_x86_64
step "aarch64 under qemu (switch_aarch64.S)" cross_aarch64 aarch64 ""
step "aarch64 under qemu, -mbranch-protection=standard" \
	cross_aarch64 aarch64-bti "AArch64 feature: BTI, PAC" -mbranch-protection=standard

if [ "$failures" -ne 0 ]; then
	echo "run-aarch64.sh: $failures of $steps steps FAILED"
	exit 1
fi
echo "run-aarch64.sh: all $steps steps passed"
