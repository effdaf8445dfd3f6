#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# docker/build.sh - the build stage of docker/Dockerfile, also run on the
# host by the test suite (tests/test_deploy.c): configure (if needed),
# compile, install into DESTDIR, then build examples/ against the
# *installed* pkg-config file, outside the build tree.
#
#   docker/build.sh DESTDIR [BUILDDIR]
#
# BUILDDIR defaults to build-docker; a configured BUILDDIR is reused as is
# (its prefix stays).  S2S_NO_REBUILD=1: do not compile (the tests, whose
# build is already up to date), install with --no-rebuild.
# Result: DESTDIR/<prefix>/... and DESTDIR/<prefix>/bin/s2s-sender and
# s2s-listener (the examples).
set -eu

destdir=${1:?usage: docker/build.sh DESTDIR [BUILDDIR]}
src=$(cd "$(dirname "$0")/.." && pwd)
build=${2:-$src/build-docker}
case "$destdir" in /*) ;; *) destdir=$(pwd)/$destdir ;; esac

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --prefix=/usr --buildtype=release \
		-Dtests=disabled
fi
if [ "${S2S_NO_REBUILD:-0}" = 1 ]; then
	meson install -C "$build" --destdir "$destdir" --no-rebuild --quiet
else
	meson compile -C "$build"
	meson install -C "$build" --destdir "$destdir" --quiet
fi

# Where did it go?  The prefix and libdir of the build.
prefix=$(meson introspect "$build" --buildoptions |
	python3 -c 'import json,sys; o={x["name"]:x["value"] for x in json.load(sys.stdin)}; print(o["prefix"]); print(o["libdir"])')
libdir=$(echo "$prefix" | sed -n 2p)
prefix=$(echo "$prefix" | sed -n 1p)
case "$libdir" in /*) ;; *) libdir=$prefix/$libdir ;; esac

# The examples, as a user would build them: only the installed .pc file.
export PKG_CONFIG_PATH="$destdir$libdir/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$destdir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src"/examples/*.c "$work"/
cd "$work"
for ex in s2s-sender s2s-listener; do
	# shellcheck disable=SC2046
	${CC:-cc} -std=c99 -Wall -Wextra -pedantic -Werror -O2 -o "$ex" "$ex.c" \
		$(pkg-config --cflags --libs s2s-client) \
		-Wl,-rpath-link,"$destdir$libdir"
	install -m 0755 "$ex" "$destdir$prefix/bin/$ex"
done
echo "build.sh: installed into $destdir (prefix $prefix, libdir $libdir)"
