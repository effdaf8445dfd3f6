#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# docker/entrypoint.sh - the entry point of the s2s-mqtt image, and the
# same script the test suite runs on the host (tests/test_deploy.c).
#
#   entrypoint.sh [broker]        render mosquitto.conf, prepare the data
#                                 folder and keys, exec mosquitto
#   entrypoint.sh render          the same without starting the broker;
#                                 prints the path of the rendered file
#   entrypoint.sh device ROLE     an example device (ROLE: listener or
#                                 sender) with the s2s tool
#   entrypoint.sh health          the image's HEALTHCHECK: 0 when what
#                                 this container runs is up (a broker
#                                 answers on $SYS/broker/s2s, a device is
#                                 registered); needs S2S_HEALTH_FILE
#   entrypoint.sh CMD ARGS...     anything else is exec'd as is
#
# Broker settings (environment; defaults in brackets):
#   S2S_DATA            data folder: store, CS key, admin key  [/var/lib/s2s]
#   S2S_CONF            where the configuration is written  [$S2S_DATA/mosquitto.conf]
#   S2S_MOSQUITTO_CONF  a complete mosquitto.conf to use as is (mounted
#                       file): nothing is rendered
#   S2S_CONF_DIR        folder of extra *.conf files (mounted), copied in
#                       name order at the end of the rendered file, after
#                       the plugin line: plugin_opt_* lines there apply to
#                       the s2s plugin and override the variables; other
#                       Mosquitto options (listeners, password_file) work
#                       too  [/etc/s2s/conf.d]
#                       (Not include_dir: Mosquitto refuses plugin_opt_*
#                       lines in included files.)
#   S2S_BIND            listener address  [0.0.0.0]
#   S2S_PORT            plain MQTT port; "off" for none  [1883]
#   S2S_TLS_PORT        TLS port; unset: no TLS listener
#   S2S_TLS_CERT, S2S_TLS_KEY   server certificate and key (PEM)
#   S2S_TLS_CA          CA of client certificates (required with
#                       S2S_TLS_REQUIRE_CERT=true)
#   S2S_TLS_REQUIRE_CERT  true: devices need a client certificate  [false]
#   S2S_ALLOW_ANONYMOUS true lets enrolling devices connect  [true]
#   S2S_PASSWORD_FILE   mosquitto password_file (e.g. for feed readers)
#   S2S_PROFILE         hardened | paper  [hardened]
#   S2S_ENROLLMENT      code | open (demos only)  [code]
#   S2S_TOPIC_ROOT      [s2s]
#   S2S_FOREIGN_TOPICS  allow | deny  [allow]
#   S2S_FEED            on | off: the verified feed  [off]
#   S2S_FEED_READERS    any, or user1,user2 (see docs/OPERATIONS.md)
#   S2S_RETENTION_PACKAGES, S2S_RETENTION_AGE, S2S_TOKEN_MAX_AGE,
#   S2S_MAX_PACKAGE, S2S_STATS_INTERVAL, S2S_NEGOTIATION_TIMEOUT
#                       the plugin options of the same name
#   S2S_LOG             stderr | none  [stderr]
#   S2S_PLUGIN          mosquitto_s2s.so  [found in the usual places]
#   S2S_TOOL            the s2s tool  [s2s on PATH]
#   S2S_MOSQUITTO       the broker  [mosquitto on PATH or /usr/sbin]
#   S2S_RUN_USER        the user the broker drops to when started as
#                       root; the data folder is handed to it  [mosquitto]
#   S2S_PUBLIC          folder where cs.pub is copied for devices (a
#                       shared volume); unset: not copied
#   S2S_HEALTH_FILE     where the role and readiness of this container are
#                       noted for `entrypoint.sh health` (the image sets
#                       /tmp/s2s-health); unset: nothing is written
#
# Device settings (entrypoint.sh device ROLE):
#   S2S_DEVICE_ID (required), S2S_PEER (required), S2S_BROKER
#   [tcp://broker:1883; several, comma-separated, for a cluster: the
#   device fails over between them in that order], S2S_CS_PUB [$S2S_PUBLIC/cs.pub], S2S_DEVICE_DIR
#   [/var/lib/s2s-device], S2S_USER_NO (synthetic signature writer) [1],
#   S2S_INTERVAL (sender: seconds between messages) [5], S2S_TLS_CA.
set -eu

die() {
	echo "entrypoint: $*" >&2
	exit 1
}

# note WHAT: record the role/readiness for `entrypoint.sh health`.
note() {
	[ -n "${S2S_HEALTH_FILE:-}" ] || return 0
	echo "$1" >"$S2S_HEALTH_FILE.new" && mv "$S2S_HEALTH_FILE.new" "$S2S_HEALTH_FILE"
}

health() {
	[ -n "${S2S_HEALTH_FILE:-}" ] || die "health: S2S_HEALTH_FILE is not set"
	what=$(cat "$S2S_HEALTH_FILE" 2>/dev/null) || what=none
	case "$what" in
	broker)
		port=${S2S_PORT:-1883}
		[ "$port" = off ] && port=${S2S_TLS_PORT:?}
		exec mosquitto_sub -h 127.0.0.1 -p "$port" \
			-t '$SYS/broker/s2s/#' -C 1 -W 4 >/dev/null ;;
	device-registered)
		exit 0 ;;
	*)
		echo "entrypoint: not ready ($what)" >&2
		exit 1 ;;
	esac
}

: "${S2S_DATA:=/var/lib/s2s}"
: "${S2S_CONF:=$S2S_DATA/mosquitto.conf}"
: "${S2S_CONF_DIR:=/etc/s2s/conf.d}"
: "${S2S_BIND:=0.0.0.0}"
: "${S2S_PORT:=1883}"
: "${S2S_TLS_REQUIRE_CERT:=false}"
: "${S2S_ALLOW_ANONYMOUS:=true}"
: "${S2S_PROFILE:=hardened}"
: "${S2S_ENROLLMENT:=code}"
: "${S2S_TOPIC_ROOT:=s2s}"
: "${S2S_FOREIGN_TOPICS:=allow}"
: "${S2S_FEED:=off}"
: "${S2S_LOG:=stderr}"
: "${S2S_RUN_USER:=mosquitto}"
: "${S2S_TOOL:=s2s}"

find_plugin() {
	if [ -n "${S2S_PLUGIN:-}" ]; then
		echo "$S2S_PLUGIN"
		return
	fi
	for p in /usr/lib/*/mosquitto/mosquitto_s2s.so \
		/usr/lib/mosquitto/mosquitto_s2s.so \
		/usr/local/lib/*/mosquitto/mosquitto_s2s.so \
		/usr/local/lib/mosquitto/mosquitto_s2s.so; do
		[ -r "$p" ] && { echo "$p"; return; }
	done
	die "mosquitto_s2s.so not found; set S2S_PLUGIN"
}

find_mosquitto() {
	if [ -n "${S2S_MOSQUITTO:-}" ]; then
		echo "$S2S_MOSQUITTO"
	elif command -v mosquitto >/dev/null 2>&1; then
		command -v mosquitto
	else
		echo /usr/sbin/mosquitto
	fi
}

# One plain word: no spaces, no '#', nothing a conf line could misread.
check_word() {
	case "$2" in
	"" | *[!A-Za-z0-9_.,:/@+-]*)
		die "$1='$2': expected one word of [A-Za-z0-9_.,:/@+-]" ;;
	esac
}

check_choice() {
	name=$1 val=$2
	shift 2
	for c in "$@"; do
		[ "$val" = "$c" ] && return 0
	done
	die "$name='$val': expected one of: $*"
}

opt() {
	# opt NAME VALUE: a plugin_opt line if VALUE is set
	if [ -n "$2" ]; then
		check_word "plugin_opt_$1" "$2"
		echo "plugin_opt_$1 $2"
	fi
}

# Root: the broker drops to S2S_RUN_USER before it opens the store and the
# keys, so they must belong to that user.
give() {
	if [ "$(id -u)" -eq 0 ] && id "$S2S_RUN_USER" >/dev/null 2>&1; then
		chown "$S2S_RUN_USER:" "$@"
	fi
}

prepare_data() {
	mkdir -p "$S2S_DATA"
	chmod 0700 "$S2S_DATA"
	# The CS key and the admin key exist before the broker runs, so the
	# public key devices pin can be handed out at once.
	if [ ! -e "$S2S_DATA/cs.key" ]; then
		"$S2S_TOOL" keygen --out "$S2S_DATA/cs" >/dev/null ||
			die "cannot create the CS key in $S2S_DATA"
		echo "entrypoint: created the CS key $S2S_DATA/cs.key" >&2
	fi
	if [ ! -e "$S2S_DATA/cs.admin.pub" ]; then
		"$S2S_TOOL" keygen --out "$S2S_DATA/cs.admin" >/dev/null ||
			die "cannot create the admin key in $S2S_DATA"
		echo "entrypoint: created the admin key $S2S_DATA/cs.admin.key" >&2
	fi
	give "$S2S_DATA" "$S2S_DATA"/cs.* 
	[ -e "$S2S_DATA/s2s.db" ] && give "$S2S_DATA"/s2s.db*
	if [ -n "${S2S_PUBLIC:-}" ]; then
		mkdir -p "$S2S_PUBLIC"
		cp "$S2S_DATA/cs.pub" "$S2S_PUBLIC/cs.pub.new"
		chmod 0644 "$S2S_PUBLIC/cs.pub.new"
		mv "$S2S_PUBLIC/cs.pub.new" "$S2S_PUBLIC/cs.pub"
	fi
}

render() {
	check_choice S2S_PROFILE "$S2S_PROFILE" hardened paper
	check_choice S2S_ENROLLMENT "$S2S_ENROLLMENT" code open
	check_choice S2S_FOREIGN_TOPICS "$S2S_FOREIGN_TOPICS" allow deny
	check_choice S2S_FEED "$S2S_FEED" on off
	check_choice S2S_ALLOW_ANONYMOUS "$S2S_ALLOW_ANONYMOUS" true false
	check_choice S2S_TLS_REQUIRE_CERT "$S2S_TLS_REQUIRE_CERT" true false
	check_choice S2S_LOG "$S2S_LOG" stderr none
	check_word S2S_BIND "$S2S_BIND"
	check_word S2S_DATA "$S2S_DATA"
	check_word S2S_TOPIC_ROOT "$S2S_TOPIC_ROOT"
	[ "$S2S_PORT" = off ] && [ -z "${S2S_TLS_PORT:-}" ] &&
		die "S2S_PORT=off needs S2S_TLS_PORT"
	plugin=$(find_plugin)
	check_word S2S_PLUGIN "$plugin"
	tmp="$S2S_CONF.new"
	{
		echo "# Rendered by docker/entrypoint.sh from S2S_* variables;"
		echo "# edits are lost at the next start (use S2S_CONF_DIR or"
		echo "# S2S_MOSQUITTO_CONF).  Options: docs/OPERATIONS.md."
		echo "per_listener_settings false"
		echo "allow_anonymous $S2S_ALLOW_ANONYMOUS"
		if [ -n "${S2S_PASSWORD_FILE:-}" ]; then
			check_word S2S_PASSWORD_FILE "$S2S_PASSWORD_FILE"
			echo "password_file $S2S_PASSWORD_FILE"
		fi
		echo "persistence false"
		# Send each MQTT packet at once: with Nagle on, an answer that
		# follows another write waits for the client's delayed ACK (40 ms).
		echo "set_tcp_nodelay true"
		if [ "$S2S_LOG" = stderr ]; then
			echo "log_dest stderr"
			echo "log_type error"
			echo "log_type warning"
			echo "log_type notice"
			echo "log_type information"
		else
			echo "log_dest none"
		fi
		if [ "$S2S_PORT" != off ]; then
			check_word S2S_PORT "$S2S_PORT"
			echo "listener $S2S_PORT $S2S_BIND"
		fi
		if [ -n "${S2S_TLS_PORT:-}" ]; then
			check_word S2S_TLS_PORT "$S2S_TLS_PORT"
			[ -n "${S2S_TLS_CERT:-}" ] && [ -n "${S2S_TLS_KEY:-}" ] ||
				die "S2S_TLS_PORT needs S2S_TLS_CERT and S2S_TLS_KEY"
			check_word S2S_TLS_CERT "$S2S_TLS_CERT"
			check_word S2S_TLS_KEY "$S2S_TLS_KEY"
			echo "listener $S2S_TLS_PORT $S2S_BIND"
			echo "certfile $S2S_TLS_CERT"
			echo "keyfile $S2S_TLS_KEY"
			if [ -n "${S2S_TLS_CA:-}" ]; then
				check_word S2S_TLS_CA "$S2S_TLS_CA"
				echo "cafile $S2S_TLS_CA"
			fi
			if [ "$S2S_TLS_REQUIRE_CERT" = true ]; then
				[ -n "${S2S_TLS_CA:-}" ] ||
					die "S2S_TLS_REQUIRE_CERT=true needs S2S_TLS_CA"
				echo "require_certificate true"
			fi
		fi
		echo "plugin $plugin"
		echo "plugin_opt_store $S2S_DATA/s2s.db"
		echo "plugin_opt_cs_key $S2S_DATA/cs.key"
		echo "plugin_opt_profile $S2S_PROFILE"
		echo "plugin_opt_enrollment $S2S_ENROLLMENT"
		echo "plugin_opt_topic_root $S2S_TOPIC_ROOT"
		echo "plugin_opt_foreign_topics $S2S_FOREIGN_TOPICS"
		echo "plugin_opt_feed $S2S_FEED"
		opt feed_readers "${S2S_FEED_READERS:-}"
		opt retention_packages "${S2S_RETENTION_PACKAGES:-}"
		opt retention_age "${S2S_RETENTION_AGE:-}"
		opt token_max_age "${S2S_TOKEN_MAX_AGE:-}"
		opt max_package "${S2S_MAX_PACKAGE:-}"
		opt stats_interval "${S2S_STATS_INTERVAL:-}"
		opt negotiation_timeout "${S2S_NEGOTIATION_TIMEOUT:-}"
		# Last, so that plugin_opt_* lines there bind to our plugin.
		for f in "$S2S_CONF_DIR"/*.conf; do
			[ -f "$f" ] || continue
			echo "# ---- from $f"
			cat "$f"
			echo
		done
	} >"$tmp"
	mv "$tmp" "$S2S_CONF"
	chmod 0644 "$S2S_CONF"
}

broker() {
	prepare_data
	if [ -n "${S2S_MOSQUITTO_CONF:-}" ]; then
		[ -r "$S2S_MOSQUITTO_CONF" ] ||
			die "S2S_MOSQUITTO_CONF=$S2S_MOSQUITTO_CONF is not readable"
		S2S_CONF=$S2S_MOSQUITTO_CONF
	else
		render
	fi
	if [ "${1:-}" = render ]; then
		echo "$S2S_CONF"
		exit 0
	fi
	note broker
	exec "$(find_mosquitto)" -c "$S2S_CONF"
}

# ---- an example device (docker-compose.yml) ------------------------------

device() {
	role=${1:-}
	check_choice ROLE "$role" listener sender
	: "${S2S_DEVICE_ID:?S2S_DEVICE_ID is required}"
	: "${S2S_PEER:?S2S_PEER is required}"
	: "${S2S_BROKER:=tcp://broker:1883}"
	: "${S2S_CS_PUB:=${S2S_PUBLIC:-/var/lib/s2s-public}/cs.pub}"
	: "${S2S_DEVICE_DIR:=/var/lib/s2s-device}"
	: "${S2S_USER_NO:=1}"
	: "${S2S_INTERVAL:=5}"
	check_word S2S_DEVICE_ID "$S2S_DEVICE_ID"
	check_word S2S_PEER "$S2S_PEER"
	note device-starting
	dir=$S2S_DEVICE_DIR
	mkdir -p "$dir"
	chmod 0700 "$dir"
	[ -e "$dir/device.key" ] ||
		"$S2S_TOOL" keygen --out "$dir/device" >/dev/null
	[ -e "$dir/signature.png" ] ||
		"$S2S_TOOL" bio siggen --user "$S2S_USER_NO" --sample 1 \
			--out "$dir/signature.png" >/dev/null
	# The broker writes the CS public key on its first start.
	i=0
	while [ ! -r "$S2S_CS_PUB" ]; do
		i=$((i + 1))
		[ $i -gt 120 ] && die "no CS public key at $S2S_CS_PUB"
		sleep 1
	done
	tls=""
	if [ -n "${S2S_TLS_CA:-}" ]; then
		tls=", \"tls\": { \"ca_file\": \"$S2S_TLS_CA\" }"
	fi
	# one URI: a string; several (a cluster): a list, tried in order
	brokers="\"$S2S_BROKER\""
	case "$S2S_BROKER" in
	*,*) brokers="[\"$(printf '%s' "$S2S_BROKER" | sed 's/,/", "/g')\"]" ;;
	esac
	cat >"$dir/device.json" <<EOF
{ "broker": $brokers, "id": "$S2S_DEVICE_ID",
  "key": "device.key", "cs_key": "$S2S_CS_PUB",
  "signature": "signature.png", "state_dir": "state",
  "covers": "builtin"$tls }
EOF
	export S2S_CONFIG="$dir/device.json"
	until "$S2S_TOOL" register; do
		echo "entrypoint: register failed, retrying" >&2
		sleep 2
	done
	note device-registered
	if [ "$role" = listener ]; then
		exec "$S2S_TOOL" listen --peer "$S2S_PEER" --json
	fi
	n=0
	while :; do
		n=$((n + 1))
		echo "reading $n from $S2S_DEVICE_ID at $(date -u +%FT%TZ)"
		sleep "$S2S_INTERVAL"
	done | exec "$S2S_TOOL" send "$S2S_PEER" - --wait
}

case "${1:-broker}" in
broker) broker ;;
render) broker render ;;
device) shift; device "$@" ;;
health) health ;;
*) exec "$@" ;;
esac
