#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Install the Debian 12 packages s2s-mqtt needs, if any are missing.
# As root: apt-get installs them.  Otherwise: print the exact command and fail.
set -eu

PKGS="build-essential pkg-config meson ninja-build check libsubunit-dev
libwolfssl-dev libpaho-mqtt-dev libcjson-dev libsqlite3-dev libpng-dev
libdeflate-dev sqlite3 python3-yaml
mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev valgrind python3
openssl docker-compose systemd libpq-dev postgresql"

# Where podman is set up (../shared/tools/containers.sh setup), the compose
# demo (tests/container-demo.sh) needs container name resolution: the
# devices reach the broker as "broker".
if command -v podman >/dev/null 2>&1; then
	PKGS="$PKGS golang-github-containernetworking-plugin-dnsname"
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
	# The broker package starts a system service on 1883; we never use it.
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now mosquitto >/dev/null 2>&1 || true
		# Same for PostgreSQL: the tests start private servers.
		systemctl disable --now postgresql >/dev/null 2>&1 || true
	fi
else
	echo "s2s-mqtt needs these Debian packages. Run:" >&2
	echo "  sudo apt-get install -y$missing" >&2
	exit 1
fi
