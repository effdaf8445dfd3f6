#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# tests/check-public-api.sh - the public surface of libs2s-client:
#  1. the symbols the library exports (nm -D --defined-only) are exactly
#     the names of client/s2s-client.sym, all in a version node;
#  2. every public header compiles alone as C99 with -pedantic -Werror,
#     and as C++ (g++ -fsyntax-only).
#
#   check-public-api.sh SRCDIR LIBRARY
set -eu
src=${1:?usage: check-public-api.sh SRCDIR LIBRARY}
lib=${2:?usage: check-public-api.sh SRCDIR LIBRARY}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# 1. Exported symbols.  nm prints "addr T name@@NODE"; the node itself is
# an absolute symbol (type A) without an @.
grep -o '^[[:space:]]*s2s_[a-z0-9_]*;' "$src/client/s2s-client.sym" |
	tr -d ' \t;' | sort >"$tmp/want"
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' |
	sed 's/@.*//' | sort >"$tmp/have"
if ! diff -u "$tmp/want" "$tmp/have" >"$tmp/diff"; then
	echo "exported symbols differ from client/s2s-client.sym" \
		"(- listed only, + exported only):"
	cat "$tmp/diff"
	fail=1
fi
unversioned=$(nm -D --defined-only "$lib" | awk '$2 != "A" && $3 !~ /@/')
if [ -n "$unversioned" ]; then
	echo "symbols without a version node: $unversioned"
	fail=1
fi
[ -s "$tmp/want" ] || { echo "no symbols in s2s-client.sym"; fail=1; }

# 2. Public headers, each alone.
inc="-I$src/client/include -I$src/core/include"
for h in s2s/client.h s2s/error.h; do
	printf '#include <%s>\n#include <%s>\nint main(void) { return 0; }\n' \
		"$h" "$h" >"$tmp/t.c"
	# shellcheck disable=SC2086
	if ! ${CC:-cc} -std=c99 -pedantic -Wall -Wextra -Werror $inc \
		-fsyntax-only "$tmp/t.c"; then
		echo "$h does not compile alone as C99 -pedantic"
		fail=1
	fi
	if command -v "${CXX:-g++}" >/dev/null 2>&1; then
		# shellcheck disable=SC2086
		if ! "${CXX:-g++}" -x c++ -std=c++11 -pedantic -Wall -Wextra \
			-Werror $inc -fsyntax-only "$tmp/t.c"; then
			echo "$h does not compile as C++"
			fail=1
		fi
	else
		echo "g++ not found: C++ check of $h skipped"
	fi
done
[ $fail -eq 0 ] && echo "public API: $(wc -l <"$tmp/want") symbols, headers OK"
exit $fail
