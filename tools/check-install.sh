#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tools/check-install.sh BUILD_DIR: what a user of the installed library sees.
# Installs BUILD_DIR into a scratch prefix, then checks that
#   - libursa.so carries a versioned SONAME and exports only ursa_* symbols;
#   - `pkg-config --cflags --libs ursa` is all it takes to build and run the
#     README's example against the shared library;
#   - each installed header compiles alone, included first, as C11 and (where
#     a C++ compiler is found) as C++17, and no ursa/*.h includes ursa.h.
set -euo pipefail
build=${1:?usage: check-install.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

meson install -C "$build" --destdir "$scratch" >/dev/null
prefix=$(meson introspect "$build" --buildoptions |
	python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
libdir=$(find "$scratch$prefix" -name 'libursa.so.*.*.*' -printf '%h\n' | head -1)
so=$(find "$libdir" -name 'libursa.so.*.*.*' | head -1)

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname =~ ^libursa\.so\.[0-9]+$ ]] || { echo "bad SONAME: '$soname'"; exit 1; }

leaked=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^ursa_' | grep -v '^_' || true)
[ -z "$leaked" ] || { echo "exported beyond the public API:"; echo "$leaked"; exit 1; }

# DESTDIR install: the sysroot prefix maps the .pc's paths into the scratch tree.
export PKG_CONFIG_PATH="$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$scratch"
flags=$(pkg-config --cflags --libs ursa)
awk '/^```c$/{f=1;next}/^```$/{f=0}f' "$root/README.md" >"$scratch/example.c"
# shellcheck disable=SC2086 # flags are words
cc -Wall -Werror -Wno-unused-parameter -o "$scratch/example" "$scratch/example.c" $flags
out=$(LD_LIBRARY_PATH="$libdir" "$scratch/example")
[ "$(grep -c 'returned' <<<"$out")" -eq 4 ] || { echo "example output: $out"; exit 1; }

# Each public header on its own, first, as a user's compiler sees it.
incdir=$(dirname "$(find "$scratch$prefix" -path '*/include/ursa.h' | head -1)")
cxx=$(command -v clang++ || command -v c++ || true)
[ -n "$cxx" ] || echo "install check: no C++ compiler, the C++17 header check is skipped"
nheaders=0
for h in "$incdir"/ursa.h "$incdir"/ursa/*.h; do
	name=${h#"$incdir"/}
	printf '#include <%s>\n' "$name" >"$scratch/h.c"
	cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$incdir" "$scratch/h.c" ||
		{ echo "$name alone does not compile as C11"; exit 1; }
	if [ -n "$cxx" ]; then
		"$cxx" -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I"$incdir" -x c++ "$scratch/h.c" ||
			{ echo "$name alone does not compile as C++17"; exit 1; }
	fi
	if [ "$name" != ursa.h ] && grep -Eq '#[[:space:]]*include[[:space:]]*[<"](\.\./)?ursa\.h[>"]' "$h"; then
		echo "$name includes ursa.h (sub-headers include one way)"
		exit 1
	fi
	nheaders=$((nheaders + 1))
done
# The client-library adapters: each .pc brings ursa's flags and its
# library's, and a program using the header builds with nothing else.
nadapters=0
for a in hiredis:hiredis curl:libcurl; do
	name=${a%%:*}
	if ! pkg-config --exists "${a#*:}"; then
		echo "install check: ${a#*:} is not installed: the $name adapter is not checked"
		continue
	fi
	flags=$(pkg-config --cflags --libs "ursa-$name")
	printf '#include <ursa/adapters/%s.h>\nint main(void) { return 0; }\n' "$name" >"$scratch/a.c"
	# shellcheck disable=SC2086 # flags are words
	cc -Wall -Wextra -Werror -o "$scratch/a" "$scratch/a.c" $flags ||
		{ echo "<ursa/adapters/$name.h> does not build with pkg-config ursa-$name"; exit 1; }
	nadapters=$((nadapters + 1))
done
echo "install check: SONAME $soname, $(nm -D --defined-only "$so" | grep -c ' ursa_') public symbols, README example built with pkg-config and ran, $nheaders headers each compile alone, $nadapters adapters built with their .pc"
