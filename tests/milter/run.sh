#!/bin/sh
# tests/milter/run.sh - run one miltertest Lua script against the built daemon
#
#   sh tests/milter/run.sh path/to/script.lua
#
# The automake LOG_COMPILER for tests/milter/*.lua.  It needs MILTERTEST and
# PORTCULLIS (and PORTCULLISCTL) from the environment (Makefile.am's
# AM_TESTS_ENVIRONMENT); without miltertest the test is skipped (exit 77).
#
# It makes a private temporary folder, writes a base configuration there
# (portcullis.conf: unix socket, pidfile and state in the folder, log to
# stderr, no trusted networks), and runs the script with these globals:
#   dir            the temporary folder (the script adds its own config
#                  lines and table files there before it starts the daemon)
#   portcullis     the daemon binary
#   portcullisctl  the admin tool
#   libdir         this folder, for dofile(libdir .. "/lib.lua")
# The script starts the daemon through lib.lua, with its stderr appended to
# DIR/log.  After miltertest the test also fails when the daemon's log holds
# a sanitizer report (AddressSanitizer, LeakSanitizer, UBSan "runtime error:").
# A script with a line "-- needs: dns" gets a real DNS server: NSD and the
# fault proxy of tests/dns/server.sh (zones: tests/dns/*.zone), the globals
# dnsport and dnsproxy, and "dns.resolver = 127.0.0.1:DNSPORT" in the base
# configuration; it is skipped (77) when nsd is missing.
# PORTCULLIS_CLOCK_FILE is DIR/clock: a script that writes a time there
# (t.clock in lib.lua) sets the clock of the daemon and of portcullisctl
# (greylist delays and expiry are tested without sleeping).
# Everything is bounded by a timeout (MILTER_TEST_TIMEOUT seconds, default
# 90) and cleaned up by a trap, including a daemon that outlived a killed
# miltertest.  KEEP_TEST_DIR=1 keeps the temporary folder for a look.

script=$1
if [ -z "$script" ] || [ ! -f "$script" ]; then
	echo "usage: sh run.sh SCRIPT.lua" >&2
	exit 99
fi
if [ -z "$MILTERTEST" ] || ! command -v "$MILTERTEST" >/dev/null 2>&1; then
	echo "SKIP: miltertest not found (MILTERTEST='$MILTERTEST')"
	exit 77
fi
if [ -z "$PORTCULLIS" ] || [ ! -x "$PORTCULLIS" ]; then
	echo "ERROR: PORTCULLIS='$PORTCULLIS' is not an executable" >&2
	exit 99
fi
: "${PORTCULLISCTL:=$(dirname "$PORTCULLIS")/portcullisctl}"
: "${ASAN_OPTIONS:=detect_leaks=1:abort_on_error=0}"
: "${UBSAN_OPTIONS:=print_stacktrace=1}"
export ASAN_OPTIONS UBSAN_OPTIONS

here=$(cd "$(dirname "$0")" && pwd)
abs_script=$(cd "$(dirname "$script")" && pwd)/$(basename "$script")

dir=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-lua.XXXXXX") || exit 99
# A unix socket path must fit in sun_path (108 bytes).
if [ ${#dir} -gt 80 ]; then
	rmdir "$dir"
	dir=$(mktemp -d /tmp/pc-lua.XXXXXX) || exit 99
fi

cleanup() {
	[ -f "$dir/dns/dns.env" ] && sh "$here/../dns/server.sh" stop "$dir/dns" >/dev/null 2>&1
	# Only the daemon this run started: its pid is in our private pidfile.
	if [ -s "$dir/portcullis.pid" ]; then
		pid=$(cat "$dir/portcullis.pid" 2>/dev/null)
		case "$pid" in
		'' | *[!0-9]*) ;;
		*)
			# Make sure the pid is still our daemon (a daemon killed by a
			# signal leaves its pidfile behind, and pids are reused).
			if kill -0 "$pid" 2>/dev/null &&
				tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -F -q "$dir/portcullis.conf"; then
				kill -TERM "$pid" 2>/dev/null
				n=0
				while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do
					sleep 0.1
					n=$((n + 1))
				done
				kill -KILL "$pid" 2>/dev/null
			fi
			;;
		esac
	fi
	if [ -n "$KEEP_TEST_DIR" ]; then
		echo "kept $dir"
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT
trap 'exit 99' HUP INT TERM

PORTCULLIS_CLOCK_FILE=$dir/clock
export PORTCULLIS_CLOCK_FILE

cat >"$dir/portcullis.conf" <<EOF
# base configuration written by tests/milter/run.sh
socket = unix:$dir/sock
state_dir = $dir
pidfile = $dir/portcullis.pid
log_target = stderr
trusted_networks =
hostname = mx.example.test
contact = postmaster@example.test
EOF
: >"$dir/log"

dnsargs=
if grep -q '^-- needs: dns' "$script"; then
	DNS_SERVER_LIFETIME=300 sh "$here/../dns/server.sh" start "$dir/dns" >"$dir/dns.out" 2>&1
	rc=$?
	if [ $rc -eq 77 ]; then
		cat "$dir/dns.out"
		exit 77
	elif [ $rc -ne 0 ]; then
		cat "$dir/dns.out" "$dir/dns/nsd.log" "$dir/dns/proxy.log" >&2 2>/dev/null
		echo "ERROR: the DNS servers did not start" >&2
		exit 99
	fi
	. "$dir/dns/dns.env"
	printf 'dns.resolver = 127.0.0.1:%s\ndns.timeout_ms = 2000\n' "$DNS_NSD_PORT" >>"$dir/portcullis.conf"
	dnsargs="-D dnsport=$DNS_NSD_PORT -D dnsproxy=$DNS_PROXY_PORT"
fi

start=$(date +%s)
(cd "$dir" && timeout -k 5 "${MILTER_TEST_TIMEOUT:-90}" "$MILTERTEST" \
	-D dir="$dir" -D portcullis="$PORTCULLIS" -D portcullisctl="$PORTCULLISCTL" \
	-D libdir="$here" $dnsargs -s "$abs_script")
rc=$?
end=$(date +%s)

status=0
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	echo "FAIL: miltertest timed out" >&2
	status=1
elif [ $rc -ne 0 ]; then
	echo "FAIL: miltertest exited with status $rc" >&2
	status=1
fi
# miltertest ends the daemon with SIGTERM and waits for it: it must stop
# cleanly (log "portcullis stopped", remove its socket), which is also what
# lets LeakSanitizer run at exit.
if ! grep -q 'portcullis: portcullis stopped' "$dir/log" 2>/dev/null; then
	echo "FAIL: the daemon did not shut down cleanly on SIGTERM (no 'portcullis stopped' in its log)" >&2
	status=1
elif [ -e "$dir/sock" ]; then
	echo "FAIL: the daemon left its socket $dir/sock behind" >&2
	status=1
fi
if grep -E 'ERROR: AddressSanitizer|LeakSanitizer|runtime error:' "$dir/log" >/dev/null 2>&1; then
	echo "FAIL: sanitizer report in the daemon's log:" >&2
	status=1
fi
if [ $status -ne 0 ]; then
	echo "--- daemon log ($dir/log), last 60 lines:" >&2
	tail -n 60 "$dir/log" | cut -c1-400 >&2
fi
echo "$(basename "$script"): $((end - start)) s"
exit $status
