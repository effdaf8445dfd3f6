#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# tests/doc-walkthroughs.sh - the documentation, run: every ```sh block
# whose first line is "# doc-test" in README.md, docs/INTEGRATION.md and
# docs/OPERATIONS.md (in that order) is run as written, with sh -eu, as one
# session: a fresh HOME (the walkthroughs install into $HOME/s2s and work
# under $HOME), the current directory the top of the source tree at the
# start of each file, PORT a free loopback port.  A command that fails
# fails the test; so does a file with no runnable block (a marker lost in
# an edit).  Brokers the walkthroughs leave behind are stopped (by the PID
# of a process whose command line names the private HOME).
#
#   doc-walkthroughs.sh SRCDIR
#
# Bounded: S2S_DOC_TIMEOUT seconds (1200) for everything.
set -eu
src=$(cd "${1:?usage: doc-walkthroughs.sh SRCDIR}" && pwd)
files="README.md docs/INTEGRATION.md docs/OPERATIONS.md"
for t in mosquitto sqlite3 cc pkg-config meson; do
	command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || {
		echo "doc walkthroughs skipped: $t not installed"
		exit 77
	}
done

work=$(mktemp -d)
# As root, nothing here is switched to user mosquitto (the walkthroughs'
# brokers run as the caller), but keep the tree traversable anyway.
chmod 755 "$work"
mkdir -p "$work/home" "$work/tmp"
script=$work/walkthrough.sh

leftovers() {
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[ "$pid" = $$ ] && continue
		if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "$work/home"; then
			echo "$pid"
		fi
	done
}
cleanup() {
	for pid in $(leftovers); do
		kill "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

# Extract: the blocks of each file, in order, each file starting from the
# source tree.
{
	echo "set -eu"
	for f in $files; do
		echo "echo '==== $f'"
		echo "cd '$src'"
		n=$(awk -v out="$work/blocks" -v name="$(basename "$f" .md)" '
			/^```sh[ \t]*$/ { inblk = 1; first = 1; next }
			inblk && /^```[ \t]*$/ { inblk = 0; next }
			inblk && first { first = 0; if ($0 ~ /^# doc-test[ \t]*$/) { keep = 1; count++; print "# ---- block " count > (out "." name) } else keep = 0; next }
			inblk && keep { print > (out "." name) }
			inblk { next }
			END { print count + 0 }' "$src/$f")
		if [ "$n" -eq 0 ]; then
			echo "FAIL: $f has no '# doc-test' block" >&2
			exit 1
		fi
		echo "# $n blocks of $f"
		cat "$work/blocks.$(basename "$f" .md)"
	done
} >"$script"

# below the ephemeral range: not taken by chance before the broker binds it
port=$(python3 "$src/tests/free-port.py")
echo "walkthroughs: $(grep -c '^# ---- block' "$script") blocks, HOME=$work/home, PORT=$port"
rc=0
env HOME="$work/home" TMPDIR="$work/tmp" PORT="$port" \
	timeout "${S2S_DOC_TIMEOUT:-1200}" sh -eux "$script" || rc=$?
if [ $rc -ne 0 ]; then
	echo "FAIL: a documented command failed (status $rc); the script was:"
	cat -n "$script"
	for l in "$work"/home/*/mosquitto.log; do
		[ -f "$l" ] && { echo "---- $l"; tail -20 "$l"; }
	done
	exit 1
fi
echo "documented walkthroughs OK"
