#!/bin/bash
# contrib/bootstrap.sh - set up, build, run or test portcullis on Debian 12
#
#   contrib/bootstrap.sh run    install the build dependencies, build, write a
#                               local configuration under ./run/ and run the
#                               milter in the foreground (prints the Postfix
#                               and Sendmail lines to connect it)
#   contrib/bootstrap.sh test   install everything the tests need, build with
#                               -Werror and ASan+UBSan, run the whole suite,
#                               then the valgrind run on a plain build; ends
#                               with "N passed, N failed, N skipped"
#   contrib/bootstrap.sh deps   only install the Debian packages (and
#                               unpack the tests' private Sendmail)
#   contrib/bootstrap.sh distcheck
#                               make distcheck: the tarball builds with
#                               -Werror and passes the whole suite outside
#                               the source tree (~10 min on 2 cores; not
#                               part of "test")
#
# Run as root (apt-get).  Everything it creates stays in this checkout,
# except the Sendmail of tests/e2e/sendmail.sh: Debian's packages unpacked
# (not installed: Sendmail conflicts with Postfix) into $SENDMAIL_ROOT,
# default /var/cache/portcullis-test/sendmail/root.
set -eu
cd "$(dirname "$0")/.."
top=$PWD

BUILD_DEPS="build-essential autoconf automake libtool pkg-config
 libmilter-dev libspf2-dev libldns-dev libclamav-dev libtdb-dev libhiredis-dev libpsl-dev
 libpcre2-dev libcmocka-dev libgmime-3.0-dev libopendkim-dev libopendmarc-dev libssl-dev"
TEST_DEPS="miltertest postfix swaks valgrind clang clang-format groff-base nsd python3-yaml
 m4 libdb5.3 libldap-2.5-0 libnsl2 libsasl2-2 libssl3
 curl python3-prometheus-client strace prometheus e2fsprogs procps
 debhelper dpkg-dev lintian redis-server redis-sentinel redis-tools
 opendkim-tools"
# Sendmail for tests/e2e/sendmail.sh conflicts with the postfix package: it
# is unpacked privately (the libraries above are its other dependencies).
SENDMAIL_DEBS="sendmail-bin sendmail-cf libwrap0"
SENDMAIL_ROOT=${SENDMAIL_ROOT:-/var/cache/portcullis-test/sendmail/root}

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "bootstrap: run as root (it installs Debian packages)" >&2
		exit 1
	fi
}

install_deps() {
	local pkgs="$1" missing=""
	for p in $pkgs; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	need_root
	echo "bootstrap: installing$missing"
	# Postfix must not configure or start a system instance: the tests run
	# their own on a private port.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends $missing >/dev/null
	# Nor a system Prometheus (tests/dashboard.sh runs its own on a
	# loopback port).
	case " $missing " in
	*" prometheus "*) systemctl disable --now prometheus >/dev/null 2>&1 || : ;;
	esac
}

# Download and unpack $SENDMAIL_DEBS into $SENDMAIL_ROOT (once).
fetch_sendmail() {
	local bin=$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail debs=$SENDMAIL_ROOT.debs
	[ -x "$bin" ] && return 0
	need_root
	echo "bootstrap: unpacking $SENDMAIL_DEBS into $SENDMAIL_ROOT"
	rm -rf "$SENDMAIL_ROOT" "$debs"
	mkdir -p "$SENDMAIL_ROOT" "$debs"
	(cd "$debs" && { apt-get download -q $SENDMAIL_DEBS >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && apt-get download -q $SENDMAIL_DEBS >/dev/null; }; })
	for d in "$debs"/*.deb; do dpkg -x "$d" "$SENDMAIL_ROOT"; done
	# setgid: the loader would ignore LD_LIBRARY_PATH (libwrap0 is in the root)
	chmod 0755 "$bin"
}

build() { # build DIR CONFIGURE-ARGS...
	local dir=$1
	shift
	[ -x configure ] || autoreconf -fi >/dev/null 2>&1
	mkdir -p "$dir"
	(cd "$dir" && { [ -f Makefile ] || ../configure -q "$@"; } && make -j"$(nproc)" >/dev/null)
}

# Count automake .trs results of one or more build dirs.
count() {
	local pass=0 fail=0 skip=0 r
	for f in $(find "$@" -name '*.trs' 2>/dev/null); do
		r=$(sed -n 's/^:test-result: //p' "$f" | head -n 1)
		case $r in
		PASS | XFAIL) pass=$((pass + 1)) ;;
		SKIP) skip=$((skip + 1)) ;;
		*) fail=$((fail + 1)) ;;
		esac
	done
	echo "$pass $fail $skip"
}

cmd_run() {
	install_deps "$BUILD_DEPS"
	build build
	local run=$top/run sock
	mkdir -p "$run/state"
	sock=$run/portcullis.sock
	if [ ! -f "$run/portcullis.conf" ]; then
		cat >"$run/portcullis.conf" <<EOC
# Local quick-start configuration (see portcullis.conf(5) and
# config/portcullis.conf for every setting).
socket = unix:$sock
socket_mode = 0666
state_dir = $run/state
log_target = stderr
EOC
	fi
	cat <<EOM

portcullis is starting in the foreground (Ctrl-C stops it).
Configuration: $run/portcullis.conf   (check it: build/milter/portcullis -n -c $run/portcullis.conf)

Connect Postfix (main.cf):
    smtpd_milters = unix:$sock
    milter_default_action = tempfail
Connect Sendmail (.mc, then rebuild sendmail.cf):
    INPUT_MAIL_FILTER(\`portcullis', \`S=unix:$sock, F=T, T=S:30s;R:30s;E:5m')

EOM
	exec build/milter/portcullis -f -c "$run/portcullis.conf"
}

cmd_test() {
	install_deps "$BUILD_DEPS $TEST_DEPS"
	fetch_sendmail
	local start=$SECONDS rc=0 pass fail skip
	rm -rf build-asan build-plain
	echo "bootstrap: build with -Werror, ASan and UBSan"
	build build-asan --enable-werror --enable-sanitizers
	echo "bootstrap: running the test suite"
	(cd build-asan && make -j2 check >make-check.out 2>&1) || rc=1
	grep -E '^(PASS|FAIL|SKIP|ERROR|XPASS|XFAIL):' build-asan/make-check.out || true
	echo "bootstrap: plain build for the valgrind run"
	build build-plain --enable-werror CFLAGS="-O2 -g"
	(cd build-plain && make check TESTS="tests/stress.sh" >make-check.out 2>&1) || rc=1
	grep -E '^(PASS|FAIL|SKIP|ERROR|XPASS|XFAIL):' build-plain/make-check.out | sed 's/^\([A-Z]*\):/\1: (valgrind)/' || true
	if [ $rc != 0 ]; then
		for log in build-asan/test-suite.log build-plain/test-suite.log; do
			[ -f "$log" ] && sed -n '1,400p' "$log"
		done
	fi
	read -r pass fail skip <<<"$(count build-asan build-plain)"
	echo "bootstrap: test suite took $((SECONDS - start)) s"
	echo "$pass passed, $fail failed, $skip skipped"
	[ "$fail" = 0 ] && [ $rc = 0 ]
}

cmd_distcheck() {
	install_deps "$BUILD_DEPS $TEST_DEPS"
	fetch_sendmail
	build build-dist
	(cd build-dist && make distcheck)
}

case ${1:-} in
run) cmd_run ;;
test) cmd_test ;;
distcheck) cmd_distcheck ;;
deps) install_deps "$BUILD_DEPS $TEST_DEPS" && fetch_sendmail ;;
*)
	sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
