#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# tests/compose-check.sh - docker-compose.yml is valid (Debian's
# docker-compose, `config` needs no Docker engine) and describes what the
# documentation says: a broker with a healthcheck, two devices, the data
# volume, mounted configuration; the Dockerfile uses the scripts the tests
# run on the host.  Exit 77 (skipped) without docker-compose.
#
#   compose-check.sh SRCDIR
set -eu
src=${1:?usage: compose-check.sh SRCDIR}
if ! command -v docker-compose >/dev/null 2>&1; then
	echo "docker-compose not installed (apt-get install docker-compose):" \
		"compose validation skipped"
	exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cd "$src"
docker-compose -f docker-compose.yml config >"$out"
python3 - "$out" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
assert set(s) >= {"broker", "alice", "bob"}, s.keys()
b = s["broker"]
assert "healthcheck" in b and "test" in b["healthcheck"], "no healthcheck"
assert b["build"]["dockerfile"].endswith("docker/Dockerfile")
vols = [v["target"] if isinstance(v, dict) else v.split(":")[1]
        for v in b["volumes"]]
assert "/var/lib/s2s" in vols and "/etc/s2s/conf.d" in vols, vols
assert b["environment"]["S2S_FEED"] == "on"
assert "health" in b["healthcheck"]["test"], b["healthcheck"]
for d in ("alice", "bob"):
    assert s[d]["command"][0] == "device", s[d]["command"]
    assert "broker" in s[d]["depends_on"]
    # a device's data is a named volume of its own
    assert any((v.split(":")[1] if isinstance(v, str) else v["target"]) == "/var/lib/s2s-device"
               for v in s[d]["volumes"]), s[d]["volumes"]
print("docker-compose.yml: services", ", ".join(sorted(s)))
PY
# The image runs the scripts the test suite runs (tests/test_deploy.c).
grep -q 'docker/build.sh' docker/Dockerfile
grep -q 'docker/entrypoint.sh' docker/Dockerfile
grep -q '^USER mosquitto' docker/Dockerfile
# No VOLUME: it gave every container (the devices too) an anonymous
# volume; the broker's store is a named volume in the compose file.
! grep -q '^VOLUME' docker/Dockerfile
# One health check for every role (entrypoint.sh health).
grep -q '^HEALTHCHECK' docker/Dockerfile
grep -q 's2s-entrypoint", "health"' docker/Dockerfile
sh -n docker/entrypoint.sh
sh -n docker/build.sh
echo "compose and Dockerfile OK"
