#!/bin/sh
# tests/dns/server.sh - a real DNS server (NSD) and a fault-injecting proxy
# on loopback ports, for the tests
#
#   sh tests/dns/server.sh start DIR   start both, wait until they answer,
#                                      write DIR/dns.env and print it:
#                                        DNS_NSD_PORT=N    NSD (UDP+TCP), 127.0.0.1
#                                                          and, when the host has
#                                                          it, ::1
#                                        DNS_PROXY_PORT=N  faultproxy.pl (UDP+TCP),
#                                                          127.0.0.1, forwarding to NSD
#                                        DNS_NSD_IP6=1     when NSD also listens on ::1
#   sh tests/dns/server.sh stop DIR    stop them (safe to call twice, or after
#                                      a failed start)
#
# Exit status of start: 0, 77 when nsd or perl is missing (the caller skips),
# 1 on failure (the logs DIR/nsd.log and DIR/proxy.log say why).
#
# Zones: every *.zone file in tests/dns/ and in the folders listed in
# $DNS_ZONE_DIRS (colon-separated); the zone name is the file name without
# ".zone" (dns.test.zone serves dns.test; root.zone serves the root, ".").  Proxy rules (see faultproxy.pl)
# come from $DNS_PROXY_RULES, default
#   "slow.test=delay:200 drop.test=drop fail.test=servfail refused.test=refused spoof.test=spoof"
# DNS_PROXY_VERBOSE=1 logs each query to DIR/proxy.log.
# Both processes run under `timeout` ($DNS_SERVER_LIFETIME s, default 600)
# as the calling user, with every file NSD writes kept in DIR, so a test
# that dies without calling stop leaves nothing behind for long.  The
# caller's trap should still call stop.  NSD runs without privilege drop or
# chroot; nothing listens beyond the loopback.
set -u

here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
	sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}
lifetime=${DNS_SERVER_LIFETIME:-600}
rules=${DNS_PROXY_RULES:-slow.test=delay:200 drop.test=drop fail.test=servfail refused.test=refused spoof.test=spoof}

# A pid we started is alive (zombies count as dead).
alive()
{
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	_st=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

stop()
{
	for _f in "$dir/proxy.pid" "$dir/nsd.wrap.pid"; do
		[ -f "$_f" ] || continue
		_p=$(cat "$_f")
		alive "$_p" && kill -TERM "$_p" 2>/dev/null
	done
	# NSD's own pid file: the main process, in case the timeout wrapper
	# is already gone.
	if [ -f "$dir/nsd.pid" ]; then
		_p=$(cat "$dir/nsd.pid" 2>/dev/null)
		alive "$_p" && kill -TERM "$_p" 2>/dev/null
	fi
	for _f in "$dir/proxy.pid" "$dir/nsd.wrap.pid" "$dir/nsd.pid"; do
		[ -f "$_f" ] || continue
		_p=$(cat "$_f" 2>/dev/null)
		_n=0
		while alive "$_p" && [ $_n -lt 60 ]; do
			sleep 0.05
			_n=$((_n + 1))
		done
		alive "$_p" && kill -KILL "$_p" 2>/dev/null
		rm -f "$_f"
	done
	return 0
}

# Is loopback port $1 free for both TCP and UDP?
port_free()
{
	! ss -Hltnu "sport = :$1" 2>/dev/null | grep -q .
}

random_port()
{
	_r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	echo $((20000 + _r % 12000))
}

free_port()
{
	_i=0
	while [ $_i -lt 50 ]; do
		_port=$(random_port)
		if port_free "$_port"; then
			echo "$_port"
			return 0
		fi
		_i=$((_i + 1))
	done
	return 1
}

# wait_probe ADDR:PORT NAME PID: poll until NAME/SOA is answered NOERROR
# (3 s at most), or the process PID died.
wait_probe()
{
	_n=0
	while [ $_n -lt 30 ]; do
		perl "$here/faultproxy.pl" --probe "$1" "$2" && return 0
		alive "$3" || return 1
		sleep 0.1
		_n=$((_n + 1))
	done
	return 1
}

has_ip6()
{
	[ -r /proc/net/if_inet6 ] && grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6
}

write_conf()
{
	{
		echo "# written by tests/dns/server.sh"
		echo "server:"
		echo "	ip-address: 127.0.0.1@$1"
		[ -n "$ip6" ] && echo "	ip-address: ::1@$1"
		echo "	port: $1"
		[ -n "$ip6" ] || echo "	do-ip6: no"
		echo "	username: \"\""
		echo "	chroot: \"\""
		echo "	zonesdir: \"$dir\""
		echo "	pidfile: \"$dir/nsd.pid\""
		echo "	database: \"\""
		echo "	zonelistfile: \"$dir/zone.list\""
		echo "	xfrdfile: \"$dir/xfrd.state\""
		echo "	xfrdir: \"$dir\""
		echo "	logfile: \"$dir/nsd.log\""
		echo "	server-count: 1"
		echo "	verbosity: 1"
		echo "	hide-version: yes"
		echo "	reuseport: no"
		echo "	tcp-count: 64"
		# Tests send bursts from one address: no response rate limiting.
		echo "	rrl-ratelimit: 0"
		echo "	rrl-whitelist-ratelimit: 0"
		echo "remote-control:"
		echo "	control-enable: no"
		_dirs=$here
		[ -n "${DNS_ZONE_DIRS:-}" ] && _dirs="$_dirs:$DNS_ZONE_DIRS"
		_old_ifs=$IFS
		IFS=:
		for _d in $_dirs; do
			IFS=$_old_ifs
			for _z in "$_d"/*.zone; do
				[ -f "$_z" ] || continue
				_name=$(basename "$_z" .zone)
				[ "$_name" = root ] && _name=.
				echo "zone:"
				echo "	name: \"$_name\""
				echo "	zonefile: \"$(cd "$(dirname "$_z")" && pwd)/$(basename "$_z")\""
			done
		done
		IFS=$_old_ifs
	} >"$dir/nsd.conf"
}

start()
{
	nsd=$(PATH=$PATH:/usr/sbin:/sbin command -v nsd 2>/dev/null)
	if [ -z "$nsd" ] || ! command -v perl >/dev/null 2>&1; then
		echo "server.sh: nsd or perl not installed (apt-get install nsd perl)" >&2
		exit 77
	fi
	if ! perl -MTime::HiRes -MIO::Socket::INET -MIO::Select -e 1 2>/dev/null; then
		echo "server.sh: perl lacks Time::HiRes/IO::Socket (apt-get install perl)" >&2
		exit 77
	fi
	mkdir -p "$dir" || exit 1
	ip6=
	has_ip6 && ip6=1
	_try=0
	nsd_port=
	while [ $_try -lt 5 ]; do
		_try=$((_try + 1))
		_p=$(free_port) || break
		write_conf "$_p"
		rm -f "$dir/nsd.pid" "$dir/nsd.log"
		timeout -k 2 "$lifetime" "$nsd" -d -c "$dir/nsd.conf" >>"$dir/nsd.out" 2>&1 &
		echo $! >"$dir/nsd.wrap.pid"
		if wait_probe "127.0.0.1:$_p" dns.test "$(cat "$dir/nsd.wrap.pid")"; then
			nsd_port=$_p
			break
		fi
		stop # the port was taken meanwhile, or NSD failed: see the log
		cat "$dir/nsd.log" "$dir/nsd.out" 2>/dev/null | tail -n 5 >&2
	done
	[ -n "$nsd_port" ] || {
		echo "server.sh: NSD did not start" >&2
		exit 1
	}
	_try=0
	proxy_port=
	while [ $_try -lt 5 ]; do
		_try=$((_try + 1))
		_p=$(free_port) || break
		_args=
		for _r in $rules; do
			_args="$_args --rule $_r"
		done
		[ -n "${DNS_PROXY_VERBOSE:-}" ] && _args="$_args --verbose"
		# shellcheck disable=SC2086 # rules are words
		timeout -k 2 "$lifetime" perl "$here/faultproxy.pl" --listen "127.0.0.1:$_p" \
			--upstream "127.0.0.1:$nsd_port" --lifetime "$lifetime" $_args \
			>>"$dir/proxy.log" 2>&1 &
		echo $! >"$dir/proxy.pid"
		if wait_probe "127.0.0.1:$_p" dns.test "$(cat "$dir/proxy.pid")"; then
			proxy_port=$_p
			break
		fi
		_pp=$(cat "$dir/proxy.pid")
		kill -TERM "$_pp" 2>/dev/null
		rm -f "$dir/proxy.pid"
	done
	[ -n "$proxy_port" ] || {
		stop
		echo "server.sh: the fault proxy did not start" >&2
		exit 1
	}
	{
		echo "DNS_NSD_PORT=$nsd_port"
		echo "DNS_PROXY_PORT=$proxy_port"
		echo "DNS_NSD_IP6=${ip6:-0}"
	} >"$dir/dns.env"
	cat "$dir/dns.env"
}

case $cmd in
start) start ;;
stop) stop ;;
*)
	echo "server.sh: unknown command '$cmd' (start|stop)" >&2
	exit 2
	;;
esac
