#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# tests/container-demo.sh - the container image and the compose demo, for
# real: build docker/Dockerfile with podman (--format docker keeps the
# HEALTHCHECK), start docker-compose.yml with podman-compose under a
# private project name and host port, and wait until alice prints a
# message from bob that she verified.  Then: every service passes the
# image's health check (devices too), no device got an anonymous volume,
# the broker's store is on the named volume.  Everything is removed at the
# end (podman-compose down -v); the image stays, so the next build reuses
# its layers (.dockerignore keeps build trees out of the context).
#
#   container-demo.sh SRCDIR
#
# Exit 77 (skipped) where podman, podman-compose or the local debian:12
# base image are missing (../shared/tools/containers.sh setup provides
# them), or S2S_SKIP_CONTAINERS=1.  Bounded: S2S_CONTAINER_BUILD_TIMEOUT
# (1200 s) for the build, 240 s for the first verified message.
set -eu
src=$(cd "${1:?usage: container-demo.sh SRCDIR}" && pwd)

skip() {
	echo "container demo skipped: $*"
	exit 77
}
[ "${S2S_SKIP_CONTAINERS:-0}" = 1 ] && skip "S2S_SKIP_CONTAINERS=1"
command -v podman >/dev/null 2>&1 ||
	skip "no podman (../shared/tools/containers.sh setup)"
command -v podman-compose >/dev/null 2>&1 ||
	skip "no podman-compose (../shared/tools/containers.sh setup)"
podman image exists docker.io/library/debian:12 ||
	skip "no local debian:12 image (../shared/tools/containers.sh setup)"
# podman-compose's service names ("broker") resolve only with this plugin
# (scripts/deps.sh installs it where podman is present).
[ -x /usr/lib/cni/dnsname ] || [ "$(podman info --format '{{.Host.NetworkBackend}}')" = netavark ] ||
	skip "no container DNS: apt-get install golang-github-containernetworking-plugin-dnsname"

# One tag per checkout: helpers and CI runs on one machine do not run each
# other's images.
image=localhost/s2s-mqtt-test:$(printf '%s' "$src" | md5sum | cut -c1-12)
project=s2sdemo$$
# below the ephemeral range: not taken by chance before the broker binds it
port=$(python3 "$src/tests/free-port.py")
log=$(mktemp -d)
compose() {
	podman-compose -p "$project" -f "$src/docker-compose.yml" "$@"
}
cleanup() {
	compose down -v >"$log/down.txt" 2>&1 || cat "$log/down.txt"
	podman network rm -f "${project}_default" >/dev/null 2>&1 || true
	rm -rf "$log"
}
fail() {
	echo "FAIL: $*"
	for s in broker alice bob; do
		echo "---- logs of $s"
		podman logs "${project}_${s}_1" 2>&1 | tail -25
	done
	exit 1
}

echo "== podman build (layers are reused when nothing changed)"
start=$(date +%s)
timeout "${S2S_CONTAINER_BUILD_TIMEOUT:-1200}" \
	podman build --format docker -f "$src/docker/Dockerfile" -t "$image" \
	"$src" >"$log/build.txt" 2>&1 || {
	tail -40 "$log/build.txt"
	echo "FAIL: podman build"
	rm -rf "$log"
	exit 1
}
echo "built $image in $(($(date +%s) - start)) s"
# Stale images of earlier sources (hundreds of MB each: build stages, and
# runtime images whose tag moved on); the package layers they grew from
# stay cached.  Only those older than an hour: a build running beside this
# one (another checkout) keeps its fresh intermediate images.
podman image prune -f --filter label=org.s2s-mqtt.stage --filter until=1h \
	>/dev/null 2>&1 || true
# The image's own check, kept by --format docker.
podman image inspect "$image" --format '{{.HealthCheck.Test}}' |
	grep -q 's2s-entrypoint health' || { echo "FAIL: no HEALTHCHECK"; exit 1; }

trap cleanup EXIT
export S2S_IMAGE="$image" S2S_HOST_PORT="$port" S2S_INTERVAL=2
echo "== podman-compose up (project $project, broker on 127.0.0.1:$port)"
compose up -d >"$log/up.txt" 2>&1 || { cat "$log/up.txt"; fail "up"; }

# bob sends "reading N from bob at ..." every 2 s; alice prints each
# verified one as a JSON line.
end=$(($(date +%s) + 240))
until podman logs "${project}_alice_1" 2>/dev/null |
	grep -q '"from":"bob".*"msg":"reading [0-9]* from bob'; do
	[ "$(date +%s)" -lt "$end" ] || fail "alice showed no verified message from bob within 240 s"
	sleep 3
done
echo "alice verified a message from bob:"
podman logs "${project}_alice_1" 2>/dev/null | grep '"from":"bob"' | head -1

# The broker reached it from outside too: the published port answers.
python3 - "$port" <<'PY' || fail "port $port on the host does not answer"
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
PY

# Every service is healthy by the image's check (devices too: they used to
# inherit a broker probe and report unhealthy).
for s in broker alice bob; do
	ok=0
	# up to 60 s: a check is a process in the container, slow under load
	end=$(($(date +%s) + 60))
	while [ "$(date +%s)" -lt "$end" ]; do
		if podman healthcheck run "${project}_${s}_1" >/dev/null 2>&1; then
			ok=1
			break
		fi
		sleep 2
	done
	[ $ok = 1 ] || fail "$s is unhealthy"
	echo "$s: healthy"
done

# Volumes: the broker's store on the named volume; no anonymous volume
# for anyone (the image declares none).
mounts() {
	podman inspect "${project}_$1_1" \
		--format '{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}'
}
mounts broker | grep -q "${project}_s2s-data:/var/lib/s2s " ||
	fail "broker: /var/lib/s2s is not the named volume: $(mounts broker)"
for s in broker alice bob; do
	for m in $(mounts "$s"); do
		case "$m" in
		"${project}"_*) ;;
		*:/etc/s2s/conf.d) ;;
		*) fail "$s has an unnamed mount $m" ;;
		esac
	done
done
echo "volumes: $(mounts broker)| alice: $(mounts alice)"
echo "container demo OK"
