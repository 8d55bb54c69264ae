#!/bin/sh
# tests/deb.sh - the Debian package (debian/): build it, lintian, install,
# run the installed daemon as its unit would behind a private Postfix,
# reinstall, upgrade, remove, purge
#
# Asserts:
#  1. dpkg-buildpackage -us -uc -b (nocheck, -j2) builds portcullis_V.deb
#     from a copy of the source tree (git ls-files, or the tree without its
#     build folders), with no compiler warning, and the source tree is left
#     as it was (git status unchanged);
#  2. lintian on the .changes prints no E: and no W: line (a kept warning
#     is overridden in debian/portcullis.lintian-overrides, with its reason);
#  3. the .deb holds the programs, the five /etc/portcullis files as
#     conffiles, contrib's unit (identical) and its Debian drop-in, the
#     tmpfiles.d entry (identical to contrib's), the three man pages,
#     /var/lib/portcullis and README.Debian; its maintainer scripts enable
#     the unit but start it only as a try-restart on upgrade, and stop it
#     on removal;
#  4. dpkg -i: the system user portcullis (system uid, nologin, home
#     /var/lib/portcullis, member of group postfix), /var/lib/portcullis
#     (portcullis, 0750), /var/spool/postfix/portcullis (portcullis:postfix
#     0750, from the tmpfiles entry), the unit enabled
#     (multi-user.target.wants) and accepted by systemd-analyze verify
#     (with its drop-in), the installed portcullis.conf identical to
#     config/portcullis.conf, man pages found by man -w, no daemon started;
#  5. README.Debian's step 1 (socket inside Postfix's chroot, socket_group =
#     postfix; plus log_target = stderr and helo.non_fqdn = monitor for the
#     test), then the unit's ExecStartPre and ExecStart (parsed from the
#     installed unit and its drop-ins), run as its User=/Group= with its
#     groups, UMask= and RuntimeDirectory=, serve a private Postfix: the
#     socket is portcullis:postfix 0660, a message with a non-FQDN HELO is
#     delivered with "X-Portcullis-Monitor: helo.non_fqdn (ref R)", a HELO
#     localhost is refused 550 5.7.1 with a ref that portcullisctl explains;
#     portcullisctl whitelist add --from-ref REF adds state;
#  6. dpkg -i of the same version again, then of a copy with the version
#     bumped and one unedited conffile changed, while the daemon runs: no
#     conffile prompt, the edited portcullis.conf is kept, the unedited
#     conffile is the new one, the state is kept (explain REF, whitelist
#     list); restarted as the unit's try-restart would, the upgraded daemon
#     lets the whitelisted client through and tags the monitored HELO again;
#  7. dpkg -r keeps portcullis.conf and /var/lib/portcullis, removes the
#     programs; dpkg -P removes /etc/portcullis, /var/lib/portcullis,
#     /var/spool/postfix/portcullis and the enable link (the system user
#     stays, Debian's practice; the test deletes it when it made it);
#  8. the system's Postfix configuration is unchanged and no system
#     Postfix was started.
# The package is purged at exit, also when the test fails.  Skips (77)
# without dpkg-buildpackage, debhelper, lintian, Postfix, swaks or root, or
# when a portcullis package (or its folders) is already on the machine.
# Prints the elapsed time of the build and of the whole test.

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_need dpkg-buildpackage dpkg-deb dpkg-query dpkg-parsechangelog dh lintian \
	setpriv userdel tar cmp comm
[ -f "$top_srcdir/debian/control" ] || { echo "SKIP: no debian/ in $top_srcdir" >&2; exit 77; }

# Never touch a portcullis that is installed (or was, by hand) on this
# machine: the test installs and purges its own.
st=$(dpkg-query -W -f='${Status}' portcullis 2>/dev/null)
case $st in
"" | *" not-installed") ;;
*)
	echo "SKIP: package portcullis is '$st' on this machine" >&2
	exit 77
	;;
esac
for d in /etc/portcullis /var/lib/portcullis /var/spool/postfix/portcullis /run/portcullis; do
	[ -e "$d" ] && { echo "SKIP: $d exists on this machine" >&2; exit 77; }
done

t_init
START_MS=$(t_now_ms)
HAD_USER=no
getent passwd portcullis >/dev/null && HAD_USER=yes
PF_SYS_BEFORE=$(cat /etc/postfix/main.cf /etc/postfix/master.cf 2>/dev/null | md5sum)
pf_sys_master()
{
	_p=$(sed -n '1s/^[[:space:]]*\([0-9][0-9]*\).*/\1/p' /var/spool/postfix/pid/master.pid 2>/dev/null)
	[ -n "$_p" ] && t_alive "$_p" && echo "$_p"
}
PF_SYS_MASTER=$(pf_sys_master)

# ok_since MARK MSG: "ok: MSG" when no assertion failed since MARK=$T_FAILS
ok_since()
{
	[ "$T_FAILS" = "$1" ] && echo "ok: $2"
	:
}

installed()
{
	dpkg-query -W -f='${Status}' portcullis 2>/dev/null | grep -qv ' not-installed$'
}

# At exit (the last cleanup to run): the daemon stopped, the package
# purged, the folders of the unit gone, the test's user deleted.
deb_cleanup()
{
	if [ -n "${PC_PID:-}" ] && t_alive "$PC_PID"; then
		kill -TERM "$PC_PID" 2>/dev/null
		t_wait_exit "$PC_PID" 10 || kill -KILL "$PC_PID" 2>/dev/null
	fi
	if installed; then
		timeout 120 dpkg --purge portcullis >"$T/purge-at-exit.out" 2>&1 ||
			echo "dpkg --purge portcullis at exit: $(cat "$T/purge-at-exit.out")" >&2
	fi
	# none of these existed before the test (else it skipped): a broken
	# postrm must not leave them for the next run
	rm -rf /run/portcullis /var/lib/portcullis /var/spool/postfix/portcullis /etc/portcullis
	rm -f /etc/systemd/system/multi-user.target.wants/portcullis.service
	[ "$HAD_USER" = no ] && getent passwd portcullis >/dev/null && userdel portcullis
	:
}
t_at_exit deb_cleanup

# --- 1. build from a copy of the source tree --------------------------------------
M=$T_FAILS
VERSION=$(dpkg-parsechangelog -l "$top_srcdir/debian/changelog" -S Version) ||
	fail "cannot read debian/changelog"
ARCH=$(dpkg --print-architecture)
B=$T/build
SRC=$B/portcullis-$VERSION
mkdir -p "$SRC"
top_abs=$(cd "$top_srcdir" && pwd -P)
IN_GIT=no GIT_BEFORE=
[ "$(git -C "$top_srcdir" rev-parse --show-toplevel 2>/dev/null)" = "$top_abs" ] && IN_GIT=yes
if [ $IN_GIT = yes ]; then
	GIT_BEFORE=$(git -C "$top_srcdir" status --porcelain 2>&1)
	# tracked and new files, not what .gitignore names (build folders)
	(cd "$top_srcdir" && git ls-files -z -co --exclude-standard |
		tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$SRC" ||
		fail "cannot copy the source tree (git ls-files)"
else
	# no git (e.g. make distcheck's tree): all but the configured build
	# folders inside it
	excl=$(cd "$top_srcdir" && find . -mindepth 2 -maxdepth 3 -name config.status |
		sed 's|/config.status$||')
	# shellcheck disable=SC2046
	(cd "$top_srcdir" && tar $(for d in $excl; do printf -- '--exclude=%s ' "$d"; done) \
		--exclude=./.git -cf - .) | tar -xf - -C "$SRC" || fail "cannot copy $top_srcdir"
	chmod -R u+w "$SRC"
fi
[ -f "$SRC/debian/rules" ] && [ -f "$SRC/configure.ac" ] || fail "the copy in $SRC lacks debian/rules or configure.ac"

BUILD_T0=$(t_now_ms)
(cd "$SRC" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
	DEB_BUILD_OPTIONS="nocheck parallel=2" \
	timeout 1200 dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1 ||
	fail "dpkg-buildpackage failed: $(tail -n 30 "$T/build.log")"
BUILD_MS=$(($(t_now_ms) - BUILD_T0))
DEB=$B/portcullis_${VERSION}_$ARCH.deb
CHANGES=$B/portcullis_${VERSION}_$ARCH.changes
[ -f "$DEB" ] && [ -f "$CHANGES" ] || fail "no $DEB or $CHANGES after the build: $(ls "$B")"
grep -E '\.[ch]:[0-9]+:[0-9]+: warning:' "$T/build.log" >"$T/cc-warnings"
[ -s "$T/cc-warnings" ] && t_err "compiler warnings in the package build: $(head -n 5 "$T/cc-warnings")"
if [ $IN_GIT = yes ]; then
	[ "$(git -C "$top_srcdir" status --porcelain 2>&1)" = "$GIT_BEFORE" ] ||
		t_err "the package build changed the source tree: $(git -C "$top_srcdir" status --porcelain | head -n 5)"
fi
ok_since "$M" "1. built $(basename "$DEB") ($(stat -c %s "$DEB") bytes) in $BUILD_MS ms"

# --- 2. lintian ---------------------------------------------------------------------
M=$T_FAILS
timeout 300 lintian "$CHANGES" >"$T/lintian.out" 2>&1
grep -v 'running with root privileges is not recommended' "$T/lintian.out" | sed 's/^/lintian: /'
grep -q '^E: ' "$T/lintian.out" && t_err "lintian errors: $(grep '^E: ' "$T/lintian.out" | head -n 5)"
grep -q '^W: ' "$T/lintian.out" && t_err "lintian warnings (fix or override with a reason): $(grep '^W: ' "$T/lintian.out" | head -n 5)"
grep -q '^[EW]: ' "$T/lintian.out" || echo "ok: 2. lintian: no error, no warning"

# --- 3. the package's contents and maintainer scripts ------------------------------------
M=$T_FAILS
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' >"$T/contents"
for f in /usr/sbin/portcullis /usr/sbin/portcullisctl /usr/libexec/portcullis/portcullis-av \
	/etc/portcullis/portcullis.conf /etc/portcullis/bogon-networks.cidr \
	/etc/portcullis/dangerous-extensions /etc/portcullis/greylist-dynamic.pcre \
	/etc/portcullis/greylist-pools.pcre \
	/lib/systemd/system/portcullis.service /lib/systemd/system/portcullis.service.d/debian.conf \
	/usr/lib/tmpfiles.d/portcullis.conf \
	/usr/share/man/man8/portcullis.8.gz /usr/share/man/man5/portcullis.conf.5.gz \
	/usr/share/man/man8/portcullisctl.8.gz /var/lib/portcullis \
	/usr/share/doc/portcullis/README.Debian /usr/share/doc/portcullis/copyright \
	/usr/share/doc/portcullis/contrib/postfix/main.cf.snippet; do
	grep -qx "$f" "$T/contents" || t_err "the package lacks $f"
done
dpkg-deb --info "$DEB" conffiles | sort >"$T/conffiles"
printf '%s\n' /etc/portcullis/bogon-networks.cidr /etc/portcullis/dangerous-extensions \
	/etc/portcullis/greylist-dynamic.pcre /etc/portcullis/greylist-pools.pcre \
	/etc/portcullis/portcullis.conf >"$T/conffiles.want"
cmp -s "$T/conffiles" "$T/conffiles.want" ||
	t_err "conffiles are '$(tr '\n' ' ' <"$T/conffiles")', want the five /etc/portcullis files"
mkdir "$T/x" "$T/ctl"
dpkg-deb -x "$DEB" "$T/x"
dpkg-deb -e "$DEB" "$T/ctl"
cmp -s "$top_srcdir/contrib/systemd/portcullis.service" "$T/x/lib/systemd/system/portcullis.service" ||
	t_err "the packaged unit is not contrib/systemd/portcullis.service"
cmp -s "$top_srcdir/contrib/systemd/portcullis.tmpfiles" "$T/x/usr/lib/tmpfiles.d/portcullis.conf" ||
	t_err "the packaged tmpfiles entry is not contrib/systemd/portcullis.tmpfiles"
# Enabled on installation; started only by try-restart on upgrade (when it
# runs); stopped on removal, not before an upgrade.
grep -q "deb-systemd-helper enable 'portcullis.service'" "$T/ctl/postinst" ||
	t_err "postinst does not enable the unit"
grep -q "_dh_action\|deb-systemd-invoke start\|deb-systemd-invoke restart" "$T/ctl/postinst" &&
	t_err "postinst starts the unit: $(grep -n 'deb-systemd-invoke' "$T/ctl/postinst")"
sed -n '/if \[ -n "\$2" \]; then/,/fi/p' "$T/ctl/postinst" | grep -q 'deb-systemd-invoke try-restart' ||
	t_err "postinst does not try-restart the unit on upgrade"
grep -q 'deb-systemd-invoke stop' "$T/ctl/preinst" 2>/dev/null &&
	t_err "preinst stops the unit before an upgrade"
grep -q '"\$1" = remove.*/run/systemd/system' "$T/ctl/prerm" &&
	grep -q 'deb-systemd-invoke stop portcullis.service' "$T/ctl/prerm" ||
	t_err "prerm does not stop the unit on removal"
n=$(grep -c . "$T/contents")
ok_since "$M" "3. package: $n paths, $(grep -c . "$T/conffiles") conffiles, contrib's unit and tmpfiles entry"

# --- 4. dpkg -i ---------------------------------------------------------------------------
M=$T_FAILS
timeout 120 dpkg -i "$DEB" </dev/null >"$T/install.out" 2>&1 ||
	fail "dpkg -i $DEB: $(tail -n 20 "$T/install.out")"
installed || fail "dpkg -i: the package is not installed"
pw=$(getent passwd portcullis)
if [ -z "$pw" ]; then
	t_err "no user portcullis after dpkg -i"
else
	uid=$(echo "$pw" | cut -d: -f3)
	[ "$uid" -lt 1000 ] || t_err "user portcullis has uid $uid, not a system uid"
	[ "$(echo "$pw" | cut -d: -f6)" = /var/lib/portcullis ] || t_err "portcullis' home: $pw"
	case $(echo "$pw" | cut -d: -f7) in
	*/nologin | */false) ;;
	*) t_err "portcullis has a login shell: $pw" ;;
	esac
	id -Gn portcullis | tr ' ' '\n' | grep -qx postfix || t_err "portcullis is not in group postfix: $(id portcullis)"
	id -gn portcullis | grep -qx portcullis || t_err "portcullis' primary group: $(id portcullis)"
fi
[ "$(stat -c '%U %G %a' /var/lib/portcullis 2>&1)" = "portcullis portcullis 750" ] ||
	t_err "/var/lib/portcullis: '$(stat -c '%U %G %a' /var/lib/portcullis 2>&1)', want portcullis portcullis 750"
[ "$(stat -c '%U %G %a' /var/spool/postfix/portcullis 2>&1)" = "portcullis postfix 750" ] ||
	t_err "/var/spool/postfix/portcullis: '$(stat -c '%U %G %a' /var/spool/postfix/portcullis 2>&1)', want portcullis postfix 750"
WANTS=/etc/systemd/system/multi-user.target.wants/portcullis.service
[ "$(readlink "$WANTS")" = /lib/systemd/system/portcullis.service ] ||
	t_err "the unit is not enabled: $WANTS -> '$(readlink "$WANTS")'"
if command -v systemd-analyze >/dev/null 2>&1; then
	# the installed unit with its drop-in, as systemd would load it
	timeout 60 systemd-analyze verify --man=no /lib/systemd/system/portcullis.service \
		>"$T/verify.out" 2>&1 && ! grep -q . "$T/verify.out" ||
		t_err "systemd-analyze verify portcullis.service: $(cat "$T/verify.out")"
fi
cmp -s "$top_srcdir/config/portcullis.conf" /etc/portcullis/portcullis.conf ||
	t_err "the installed portcullis.conf is not config/portcullis.conf"
dpkg-query -W -f='${Conffiles}\n' portcullis | awk 'NF {print $1}' | sort >"$T/conffiles.db"
cmp -s "$T/conffiles.db" "$T/conffiles.want" ||
	t_err "dpkg's conffiles of portcullis: $(tr '\n' ' ' <"$T/conffiles.db")"
if grep -qs '^path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
	echo "note: dpkg excludes /usr/share/man on this machine: man pages not checked"
else
	for m in 8:portcullis 5:portcullis.conf 8:portcullisctl; do
		f=/usr/share/man/man${m%%:*}/${m#*:}.${m%%:*}.gz
		[ -s "$f" ] || t_err "man page $f not installed"
		command -v man >/dev/null 2>&1 || continue
		p=$(man -w "${m%%:*}" "${m#*:}" 2>/dev/null)
		[ "$p" = "$f" ] || t_err "man -w ${m%%:*} ${m#*:}: '$p', want $f"
	done
fi
sys_daemons()
{
	for _e in /proc/[0-9]*/exe; do
		[ "$(readlink "$_e" 2>/dev/null)" = /usr/sbin/portcullis ] && echo "${_e%/exe}"
	done
}
[ -z "$(sys_daemons)" ] || t_err "a /usr/sbin/portcullis runs after dpkg -i: $(sys_daemons)"
ok_since "$M" "4. installed: user $(id portcullis), unit enabled, /var/lib/portcullis, man pages"

# --- 5. README.Debian's step 1, the daemon as the unit runs it, a private Postfix ----------
M=$T_FAILS
CONF=/etc/portcullis/portcullis.conf
SOCK=/var/spool/postfix/portcullis/portcullis.sock
grep -q "socket = unix:$SOCK" /usr/share/doc/portcullis/README.Debian &&
	grep -q "socket_group = postfix" /usr/share/doc/portcullis/README.Debian ||
	t_err "README.Debian does not give the socket and socket_group lines"
sed -i -e "s|^#socket = .*|socket = unix:$SOCK|" -e "s|^#socket_group = .*|socket_group = postfix|" \
	-e "s|^#log_target = .*|log_target = stderr|" -e "s|^#hostname = .*|hostname = mx.example.test|" \
	-e "s|^#contact = .*|contact = postmaster@example.test|" "$CONF"
echo "helo.non_fqdn = monitor" >>"$CONF"
cp "$CONF" "$T/edited.conf"

# The unit and its drop-ins, in systemd's order: KEY's last value, or the
# list of its values (an empty assignment clears the list).
UNIT=/lib/systemd/system/portcullis.service
unit_files()
{
	echo "$UNIT"
	ls /lib/systemd/system/portcullis.service.d/*.conf \
		/etc/systemd/system/portcullis.service.d/*.conf 2>/dev/null
}
unit_list()
{
	cat $(unit_files) | awk -v k="$1" '
		/^\[/ { svc = ($0 == "[Service]") }
		svc && index($0, k "=") == 1 {
			v = substr($0, length(k) + 2)
			if (v == "") l = ""; else l = (l == "" ? v : l "\n" v)
		}
		END { if (l != "") print l }'
}
unit_val()
{
	unit_list "$1" | tail -n 1
}
U=$(unit_val User) G=$(unit_val Group) UMASK=$(unit_val UMask)
RTDIR=$(unit_val RuntimeDirectory) RTMODE=$(unit_val RuntimeDirectoryMode)
EXEC_START=$(unit_val ExecStart) EXEC_PRE=$(unit_list ExecStartPre)
SUPP=$(unit_list SupplementaryGroups | tr '\n' ' ')
[ "$U" = portcullis ] && [ "$G" = portcullis ] || t_err "unit: User=$U Group=$G, want portcullis"
[ -z "$SUPP" ] || t_err "unit with its drop-ins: SupplementaryGroups=$SUPP, want none (debian.conf clears it)"
case $EXEC_START in
/usr/sbin/portcullis\ *) ;;
*) fail "unit: ExecStart=$EXEC_START, want /usr/sbin/portcullis ..." ;;
esac
case $EXEC_START$EXEC_PRE in
*[\"\'\$\\%]*) fail "unit: ExecStart/ExecStartPre with quotes or specifiers, not handled here: $EXEC_START" ;;
esac
# systemd gives a User= service the user's groups and SupplementaryGroups=.
GIDS=$(id -G "$U" | tr ' ' ',')
for g in $SUPP; do
	GIDS=$GIDS,$(getent group "$g" | cut -d: -f3)
done
cat >"$T/unit-exec" <<EOF
#!/bin/sh
umask ${UMASK:-0022}
exec setpriv --reuid=$U --regid=$G --groups=$GIDS --no-new-privs -- "\$@"
EOF
chmod 755 "$T/unit-exec"

unit_start()
{
	rm -rf "/run/$RTDIR"
	mkdir -p "/run/$RTDIR"
	chown "$U:$G" "/run/$RTDIR"
	chmod "${RTMODE:-0755}" "/run/$RTDIR"
	while IFS= read -r _cmd; do
		[ -n "$_cmd" ] || continue
		# shellcheck disable=SC2086
		"$T/unit-exec" $_cmd >"$T/pre.out" 2>&1 || t_err "ExecStartPre=$_cmd: $(cat "$T/pre.out")"
	done <<EOF
$EXEC_PRE
EOF
	_before=$(grep -c ' started on ' "$T/portcullis.log" 2>/dev/null)
	# shellcheck disable=SC2086
	timeout -s KILL 300 "$T/unit-exec" $EXEC_START 2>>"$T/portcullis.log" &
	PC_WRAP=$!
	T_PIDS="$T_PIDS $PC_WRAP"
	PC_PID=
	t_wait_for 'PC_PID=$(pgrep -P "$PC_WRAP" | head -n 1); [ -n "$PC_PID" ] || ! t_alive "$PC_WRAP"' 10 ||
		fail "the unit's ExecStart did not start"
	[ -n "$PC_PID" ] || fail "ExecStart exited at once: $(tail -n 5 "$T/portcullis.log")"
	T_PIDS="$T_PIDS $PC_PID"
	t_wait_for '[ -S "$SOCK" ] || ! t_alive "$PC_PID"' 15 && t_alive "$PC_PID" ||
		fail "no socket $SOCK: $(tail -n 5 "$T/portcullis.log")"
	t_wait_for '[ "$(grep -c " started on " "$T/portcullis.log")" -gt "${_before:-0}" ]' 10 ||
		fail "no new 'started on' line in the log"
}
# SIGTERM as systemctl stop sends it; the RuntimeDirectory goes with it.
unit_stop()
{
	kill -TERM "$PC_PID"
	t_reap "$PC_PID" 35 "$PC_WRAP" && { [ "$T_RC" = 0 ] || t_err "portcullis: exit status $T_RC after SIGTERM"; }
	rm -rf "/run/$RTDIR"
	PC_PID=
}

touch "$T/portcullis.log"
unit_start
[ "$(stat -c %U "/proc/$PC_PID")" = portcullis ] || t_err "the daemon runs as $(stat -c %U "/proc/$PC_PID")"
[ "$(stat -c '%U %G %a' "$SOCK")" = "portcullis postfix 660" ] ||
	t_err "socket: '$(stat -c '%U %G %a' "$SOCK")', want portcullis postfix 660"
[ "$(readlink "/proc/$PC_PID/exe")" = /usr/sbin/portcullis ] ||
	t_err "the daemon is $(readlink "/proc/$PC_PID/exe"), not /usr/sbin/portcullis"

pf_init
SOCK=/var/spool/postfix/portcullis/portcullis.sock
pf_start

# monitor NAME ADDR: a message with the non-FQDN HELO "mailhost" is
# delivered with "X-Portcullis-Monitor: helo.non_fqdn (ref R)".
monitor()
{
	pf_smtp "$1" "$2" mailhost sender@example.net user@example.test
	_q=$(queue_id "$1")
	[ -n "$_q" ] || { t_err "$1: not queued: $(grep -E '^ *<' "$T/$1.txt" | tail -n 3)"; return 1; }
	_f=$(delivered "$1" "$_q")
	[ -n "$_f" ] || return 1
	_h=$(grep '^X-Portcullis-Monitor:' "$_f")
	echo "$_h" | grep -qx 'X-Portcullis-Monitor: helo\.non_fqdn (ref [0-9A-Za-z]\{10\})' ||
		{ t_err "$1: want 'X-Portcullis-Monitor: helo.non_fqdn (ref R)' in the delivered mail, got '$_h'"; return 1; }
	echo "ok: $1: queued as $_q, delivered with '$_h'"
}
monitor tagged 192.0.2.9 && echo "ok: 5a. a message through Postfix and the installed daemon"

pf_smtp bad 192.0.2.7 localhost sender@example.net user@example.test
reply=$(pf_reply bad 'RCPT TO:<user@example.test>')
REF=$(echo "$reply" | sed -n 's/^ *<\*\* *550 5\.7\.1 .*(ref \([0-9A-Za-z]\{10\}\)); contact postmaster@example\.test$/\1/p')
if [ -z "$REF" ]; then
	t_err "HELO localhost: RCPT answered '$reply', want 550 5.7.1 ... (ref R); contact postmaster@example.test"
else
	echo "ok: 5b. HELO localhost refused: $reply"
	timeout 60 portcullisctl explain "$REF" >"$T/explain1.out" 2>&1 ||
		t_err "portcullisctl explain $REF: $(cat "$T/explain1.out")"
	grep -q "verdict   reject" "$T/explain1.out" || t_err "explain $REF: $(cat "$T/explain1.out")"
	timeout 60 portcullisctl whitelist add --from-ref "$REF" >"$T/wl.out" 2>&1 ||
		t_err "portcullisctl whitelist add --from-ref $REF: $(cat "$T/wl.out")"
	t_grep "added client 192\.0\.2\.7 \(from ref $REF\)" "$T/wl.out" "whitelist add's 'added client 192.0.2.7'" >/dev/null
fi
find /var/lib/portcullis ! -user portcullis >"$T/not-owned"
[ -s "$T/not-owned" ] && t_err "files in /var/lib/portcullis not owned by portcullis: $(head -n 3 "$T/not-owned")"
(cd /var/lib/portcullis && ls) >"$T/state.before"
[ -s "$T/state.before" ] || t_err "no state in /var/lib/portcullis"
ok_since "$M" "5c. state: $(tr '\n' ' ' <"$T/state.before")"

# --- 6. reinstall and upgrade, with the daemon running ----------------------------------------
M=$T_FAILS
# Every state file of before the upgrade is still there (the daemon may
# have opened more since).
state_has()
{
	(cd /var/lib/portcullis 2>/dev/null && ls) >"$T/state.now"
	_gone=$(comm -23 "$T/state.before" "$T/state.now" | tr '\n' ' ')
	[ -z "$_gone" ] || t_err "$1: state files gone: $_gone"
}
state_kept()
{
	state_has "$1"
	cmp -s "$T/edited.conf" "$CONF" || t_err "$1: the edited $CONF was not kept: $(diff "$T/edited.conf" "$CONF" | head -n 5)"
	[ -n "$REF" ] || return 0
	timeout 60 portcullisctl explain "$REF" >"$T/explain2.out" 2>&1 || t_err "$1: explain $REF: $(cat "$T/explain2.out")"
	timeout 60 portcullisctl whitelist list client >"$T/wl-list.out" 2>&1
	grep -q "192\.0\.2\.7" "$T/wl-list.out" || t_err "$1: whitelist entry gone: $(cat "$T/wl-list.out")"
}
timeout 120 dpkg -i "$DEB" </dev/null >"$T/reinstall.out" 2>&1 ||
	t_err "dpkg -i (same version again): $(tail -n 10 "$T/reinstall.out")"
state_kept "reinstall"
ok_since "$M" "6a. the same version installed again: configuration and state kept"

M=$T_FAILS
# The upgrade: this package with the version bumped and one conffile that
# the admin did not edit changed.
R=$T/repack
NEWV=$VERSION+debtest1
dpkg-deb -R "$DEB" "$R"
sed -i "s/^Version: .*/Version: $NEWV/" "$R/DEBIAN/control"
echo "# changed in $NEWV" >>"$R/etc/portcullis/dangerous-extensions"
if grep -q ' etc/portcullis/dangerous-extensions$' "$R/DEBIAN/md5sums"; then
	sed -i '/ etc\/portcullis\/dangerous-extensions$/d' "$R/DEBIAN/md5sums"
	(cd "$R" && md5sum etc/portcullis/dangerous-extensions) >>"$R/DEBIAN/md5sums"
fi
NEWDEB=$T/portcullis_${NEWV}_$ARCH.deb
dpkg-deb -b "$R" "$NEWDEB" >/dev/null || fail "dpkg-deb -b $R"
timeout 120 dpkg -i "$NEWDEB" </dev/null >"$T/upgrade.out" 2>&1 ||
	t_err "dpkg -i (upgrade to $NEWV): $(tail -n 10 "$T/upgrade.out")"
[ "$(dpkg-query -W -f='${Version}' portcullis)" = "$NEWV" ] ||
	t_err "after the upgrade: version $(dpkg-query -W -f='${Version}' portcullis), want $NEWV"
grep -q "Configuration file '/etc/portcullis" "$T/upgrade.out" &&
	t_err "dpkg asked about a conffile: $(grep -A 3 "Configuration file" "$T/upgrade.out")"
t_grep "Installing new version of config file /etc/portcullis/dangerous-extensions" \
	"$T/upgrade.out" "dpkg's 'Installing new version of config file .../dangerous-extensions'" >/dev/null
cmp -s "$R/etc/portcullis/dangerous-extensions" /etc/portcullis/dangerous-extensions ||
	t_err "the upgrade did not install the new, unedited conffile dangerous-extensions"
state_kept "upgrade"
ok_since "$M" "6b. upgraded to $NEWV: edited portcullis.conf kept, unedited conffile updated, state kept"

# What try-restart does: stop, start the new version.
unit_stop
unit_start
pf_smtp again 192.0.2.7 localhost sender@example.net user@example.test
QID=$(queue_id again)
if [ -z "$QID" ]; then
	t_err "after the upgrade: the whitelisted client 192.0.2.7 was not let through: $(grep -E '^ *<' "$T/again.txt" | tail -n 3)"
else
	[ -n "$(delivered again "$QID")" ] && echo "ok: 6c. after the upgrade the kept whitelist lets 192.0.2.7 through"
fi
monitor tagged2 192.0.2.10 && echo "ok: 6d. the upgraded daemon with the kept configuration tags again"
unit_stop
pf_stop
t_sanitizer_clean "$T/portcullis.log" portcullis

# --- 7. remove, then purge ----------------------------------------------------------------------
M=$T_FAILS
timeout 120 dpkg -r portcullis </dev/null >"$T/remove.out" 2>&1 ||
	t_err "dpkg -r portcullis: $(tail -n 10 "$T/remove.out")"
[ -e /usr/sbin/portcullis ] && t_err "dpkg -r left /usr/sbin/portcullis"
cmp -s "$T/edited.conf" "$CONF" || t_err "dpkg -r did not keep the edited $CONF"
state_has "dpkg -r"
getent passwd portcullis >/dev/null || t_err "dpkg -r removed the user portcullis"
ok_since "$M" "7a. removed: configuration, state and user kept"

M=$T_FAILS
timeout 120 dpkg -P portcullis </dev/null >"$T/purge.out" 2>&1 ||
	t_err "dpkg -P portcullis: $(tail -n 10 "$T/purge.out")"
installed && t_err "still installed after dpkg -P: $(dpkg-query -W -f='${Status}' portcullis)"
for d in /etc/portcullis /var/lib/portcullis /var/spool/postfix/portcullis /run/portcullis "$WANTS"; do
	[ -e "$d" ] || [ -L "$d" ] && t_err "dpkg -P left $d"
done
ok_since "$M" "7b. purged: /etc/portcullis, /var/lib/portcullis, /var/spool/postfix/portcullis, the enable link gone"

# --- 8. the system's Postfix --------------------------------------------------------------------
M=$T_FAILS
[ "$(cat /etc/postfix/main.cf /etc/postfix/master.cf 2>/dev/null | md5sum)" = "$PF_SYS_BEFORE" ] ||
	t_err "the system's /etc/postfix/main.cf or master.cf changed"
[ "$(pf_sys_master)" = "$PF_SYS_MASTER" ] ||
	t_err "the system's Postfix master was '$PF_SYS_MASTER' before, is '$(pf_sys_master)' now"
ok_since "$M" "8. the system's Postfix untouched"

echo "deb.sh: package build $BUILD_MS ms, whole test $(($(t_now_ms) - START_MS)) ms"
t_done
