#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# tests/systemd-check.sh - the systemd units meson generates are valid:
# s2s-device@.service (an instance of it) and Debian's mosquitto.service
# with the s2s-mqtt drop-in, checked with `systemd-analyze verify` in a
# private unit path, the binaries pointed at the build tree.  Without
# systemd-analyze: a syntax check (sections, Key=value lines, the keys
# that matter).
#
#   systemd-check.sh BUILDDIR BINDIR
#   (BINDIR: the bindir the units were configured with)
set -eu
build=${1:?usage: systemd-check.sh BUILDDIR BINDIR}
bindir=${2:?usage: systemd-check.sh BUILDDIR BINDIR}
unit=$build/systemd/s2s-device@.service
dropin=$build/systemd/s2s-mqtt.conf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -f "$unit" ] && [ -f "$dropin" ] || { echo "FAIL: units not generated"; exit 1; }
if grep -n '@[A-Z_]*@' "$unit" "$dropin"; then
	echo "FAIL: unsubstituted @VARIABLES@"
	exit 1
fi
grep -q "^ExecStart=$bindir/s2s listen" "$unit" ||
	{ echo "FAIL: ExecStart does not run $bindir/s2s"; exit 1; }
grep -q '^ExecStart=$' "$dropin" &&
	grep -q '^ExecStart=/usr/sbin/mosquitto -c /etc/mosquitto/s2s-mqtt.conf$' "$dropin" ||
	{ echo "FAIL: the drop-in does not replace ExecStart"; exit 1; }

# Syntax: every line is blank, a comment, a [Section] or Key=value, and
# keys sit in a section.
syntax() {
	awk '
	/^[ \t]*$/ || /^[#;]/ { next }
	/^\[[A-Za-z]+\]$/ { sect = 1; next }
	/^[A-Za-z][A-Za-z0-9]*=/ { if (!sect) { print FILENAME ":" NR ": key outside a section"; bad = 1 } next }
	/\\$/ { next }
	{ print FILENAME ":" NR ": not Key=value: " $0; bad = 1 }
	END { exit bad }' "$1"
}
syntax "$unit"
syntax "$dropin"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "systemd-analyze not installed: syntax checked only"
	exit 0
fi
# A private unit path with the build's s2s in place of the installed one.
mkdir -p "$tmp/units/mosquitto.service.d" "$tmp/bin"
ln -s "$(cd "$build/client" && pwd)/s2s" "$tmp/bin/s2s"
sed "s|$bindir/s2s|$tmp/bin/s2s|g" "$unit" >"$tmp/units/s2s-device@.service"
cp "$dropin" "$tmp/units/mosquitto.service.d/s2s-mqtt.conf"
if [ -f /lib/systemd/system/mosquitto.service ]; then
	cp /lib/systemd/system/mosquitto.service "$tmp/units/"
	check="$tmp/units/mosquitto.service"
else
	check=""
fi
cd "$tmp/units"
out=$(SYSTEMD_UNIT_PATH="$tmp/units:" systemd-analyze verify --man=no \
	"$tmp/units/s2s-device@sensor-01.service" $check 2>&1) || {
	echo "$out"
	echo "FAIL: systemd-analyze verify"
	exit 1
}
# verify prints warnings without failing: none may concern our files.
if echo "$out" | grep -E 's2s-device@|s2s-mqtt\.conf|mosquitto\.service'; then
	echo "FAIL: systemd-analyze verify warns about our units"
	exit 1
fi
echo "systemd units OK (systemd-analyze verify)"
