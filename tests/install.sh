#!/bin/sh
# tests/install.sh - "make install" into a temporary DESTDIR, then the
# installed daemon with the installed sample config behind a real Postfix
#
# Asserts:
#  1. make install DESTDIR=$T/root puts portcullis and portcullisctl
#     (executable) in $(sbindir), portcullis.conf and bogon-networks.cidr
#     (identical to config/) in $(sysconfdir)/portcullis/, the three man
#     pages in $(mandir), contrib/ in $(docdir)/contrib/, and writes nothing
#     outside $(prefix) (nor $(sysconfdir), $(localstatedir) when those
#     were configured outside it);
#  2. the installed daemon accepts the installed sample (-t exits 0) and
#     finds no setting in it that differs from the defaults (-n is empty);
#  3. a second make install keeps a modified portcullis.conf (and says
#     so), and restores a deleted bogon-networks.cidr;
#  4. the systemd unit passes `systemd-analyze verify` (ExecStart pointed
#     at the installed binary), when systemd-analyze is there; the Postfix
#     snippet's settings are all known to Postfix (postconf -n, no warning);
#  5. the INSTALLED daemon, started on a copy of the installed sample in
#     which only socket, socket_group, state_dir, pidfile, log_target,
#     trusted_networks, hostname and contact were uncommented and changed,
#     writes its pidfile and serves a private Postfix over a socket in the
#     queue folder, named by the RELATIVE path of the contrib snippet
#     (smtpd_milters = unix:portcullis/portcullis.sock): a good message is
#     queued and delivered, its log line has qid=QID verdict=accept; a HELO
#     localhost is refused 550 5.7.1 with a ref that is in the log; SIGUSR1
#     (the unit's ExecReload) reloads; SIGTERM stops it with status 0 and
#     removes socket and pidfile;
#  6. make uninstall removes the binaries and the unchanged
#     bogon-networks.cidr but leaves the modified portcullis.conf.
# Skips (77) without postfix, swaks or root.  Prints the elapsed time.

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix-lib.sh"

pf_need
t_need make cmp find
t_init
START_MS=$(t_now_ms)
pf_init

# Recursive make from inside "make check": drop the parent's flags
# (TESTS=..., jobserver) so that this is a plain install.
mk()
{
	timeout 120 env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
		${MAKE:-make} -C "$top_builddir" "$@"
}

# The installation folders as configured (expanded by make itself).
cat >"$T/dirs.mk" <<'EOF'
print-install-dirs:
	@echo "prefix=$(prefix)"
	@echo "sbindir=$(sbindir)"
	@echo "sysconfdir=$(sysconfdir)"
	@echo "localstatedir=$(localstatedir)"
	@echo "mandir=$(mandir)"
	@echo "docdir=$(docdir)"
EOF
mk -s -f Makefile -f "$T/dirs.mk" print-install-dirs >"$T/dirs" 2>"$T/dirs.err" ||
	fail "cannot read the installation folders: $(cat "$T/dirs.err")"
for v in prefix sbindir sysconfdir localstatedir mandir docdir; do
	val=$(sed -n "s|^$v=||p" "$T/dirs")
	case $val in
	/*) eval "$v=\$val" ;;
	*) fail "$v is '$val', not an absolute path" ;;
	esac
done
R=$T/root
CONFDIR=$R$sysconfdir/portcullis
BIN=$R$sbindir/portcullis

# --- 1. make install DESTDIR ---------------------------------------------------
mk install DESTDIR="$R" >"$T/install1.out" 2>&1 ||
	fail "make install DESTDIR=$R failed: $(tail -n 15 "$T/install1.out")"
for f in "$R$sbindir/portcullis" "$R$sbindir/portcullisctl"; do
	[ -f "$f" ] && [ -x "$f" ] || t_err "not installed (executable): $f"
done
for f in portcullis.conf bogon-networks.cidr; do
	if [ ! -f "$CONFDIR/$f" ]; then
		t_err "not installed: $CONFDIR/$f"
	else
		cmp -s "$top_srcdir/config/$f" "$CONFDIR/$f" ||
			t_err "$CONFDIR/$f differs from config/$f"
	fi
done
for f in man8/portcullis.8 man5/portcullis.conf.5 man8/portcullisctl.8; do
	[ -s "$R$mandir/$f" ] || t_err "man page not installed: $R$mandir/$f"
done
for f in README.md systemd/portcullis.service systemd/portcullis.tmpfiles \
	postfix/main.cf.snippet sendmail/portcullis.mc grafana/portcullis.json; do
	cmp -s "$top_srcdir/contrib/$f" "$R$docdir/contrib/$f" ||
		t_err "contrib/$f not installed as $R$docdir/contrib/$f"
done
# Nothing outside the configured folders (prefix, and sysconfdir or
# localstatedir when configured elsewhere, e.g. --sysconfdir=/etc).
(cd "$R" && find . ! -type d) | sed 's|^\.||' | while IFS= read -r f; do
	case $f in
	"$prefix"/* | "$sysconfdir"/* | "$localstatedir"/*) ;;
	*) echo "$f" ;;
	esac
done >"$T/outside"
[ -s "$T/outside" ] && t_err "make install wrote outside $prefix: $(head -n 5 "$T/outside")"
find "$R" -path "$R$localstatedir/*" ! -type d | grep -q . &&
	t_err "make install wrote under $localstatedir: $(find "$R$localstatedir" ! -type d | head -n 3)"
n=$( (cd "$R" && find . -type f) | wc -l)
echo "ok: 1. installed $n files under $R$prefix (prefix $prefix, sysconfdir $sysconfdir)"

# --- 2. the installed daemon accepts the installed sample ----------------------
# (-t also checks what the start needs: a state_dir that exists)
mkdir -p "$T/state"
{ cat "$CONFDIR/portcullis.conf"; echo "state_dir = $T/state"; } >"$T/sample-here.conf"
if "$BIN" -t -c "$T/sample-here.conf" >"$T/t.out" 2>&1; then
	diff=$("$BIN" -n -c "$CONFDIR/portcullis.conf" 2>&1)
	[ -z "$diff" ] || t_err "installed sample is not all defaults: portcullis -n says: $diff"
	echo "ok: 2. installed portcullis -t accepts the installed sample ($(head -n 1 "$T/t.out"))"
else
	t_err "installed portcullis -t on the installed sample: $(cat "$T/t.out")"
fi

# --- 3. a second install keeps a modified portcullis.conf ----------------------
echo "# local change $$" >>"$CONFDIR/portcullis.conf"
cp "$CONFDIR/portcullis.conf" "$T/modified.conf"
rm -f "$CONFDIR/bogon-networks.cidr"
mk install DESTDIR="$R" >"$T/install2.out" 2>&1 ||
	fail "second make install failed: $(tail -n 15 "$T/install2.out")"
cmp -s "$T/modified.conf" "$CONFDIR/portcullis.conf" ||
	t_err "second make install overwrote the modified $CONFDIR/portcullis.conf"
t_grep "keeping the existing .*/portcullis\.conf" "$T/install2.out" \
	"make install's 'keeping the existing .../portcullis.conf'" >/dev/null
cmp -s "$top_srcdir/config/bogon-networks.cidr" "$CONFDIR/bogon-networks.cidr" ||
	t_err "second make install did not restore the deleted bogon-networks.cidr"
echo "ok: 3. second make install kept the modified portcullis.conf"

# --- 4. the contrib files are accepted by their tools ----------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir "$T/unit"
	sed "s|/usr/sbin/portcullis|$BIN|g" "$R$docdir/contrib/systemd/portcullis.service" \
		>"$T/unit/portcullis.service"
	if (cd "$T/unit" && timeout 30 systemd-analyze verify --man=no ./portcullis.service) \
		>"$T/verify.out" 2>&1 && ! grep -q . "$T/verify.out"; then
		echo "ok: 4a. systemd-analyze verify accepts the unit"
	else
		t_err "systemd-analyze verify portcullis.service: $(cat "$T/verify.out")"
	fi
else
	echo "note: 4a. no systemd-analyze: the unit is not verified"
fi

# --- 5. the installed daemon behind Postfix -------------------------------------
# The socket folder inside the queue folder, as portcullis.tmpfiles makes it
# in /var/spool/postfix: group postfix may enter, nobody else.
PCSOCK=$Q/portcullis/portcullis.sock
mkdir -p "$Q/portcullis"
chgrp postfix "$Q/portcullis"
chmod 0750 "$Q/portcullis"
# An admin's edit of the installed sample: uncomment and change a few keys.
sed -e "s|^#socket = .*|socket = unix:$PCSOCK|" \
	-e "s|^#socket_group = .*|socket_group = postfix|" \
	-e "s|^#state_dir = .*|state_dir = $PC|" \
	-e "s|^#pidfile = .*|pidfile = $PC/portcullis.pid|" \
	-e "s|^#log_target = .*|log_target = stderr|" \
	-e "s|^#trusted_networks = .*|trusted_networks =|" \
	-e "s|^#hostname = .*|hostname = mx.example.test|" \
	-e "s|^#contact = .*|contact = postmaster@example.test|" \
	"$CONFDIR/portcullis.conf" >"$PC/portcullis.conf"
changed=$("$BIN" -n -c "$PC/portcullis.conf" 2>&1 | sed 's/ = .*//' | sort | tr '\n' ' ')
[ "$changed" = "contact hostname log_target pidfile socket socket_group state_dir trusted_networks " ] ||
	t_err "the adjusted sample changes '$changed', want contact hostname log_target pidfile socket socket_group state_dir trusted_networks"

PORTCULLIS=$BIN
t_start "$PC/portcullis.conf" "$T/portcullis.log"
PC_PID=$T_PID PC_WRAP=$T_WRAP
[ "$(cat "$PC/portcullis.pid" 2>/dev/null)" = "$PC_PID" ] ||
	t_err "pidfile $PC/portcullis.pid has '$(cat "$PC/portcullis.pid" 2>/dev/null)', want $PC_PID"
mode=$(stat -c '%a %G' "$PCSOCK")
[ "$mode" = "660 postfix" ] || t_err "socket $PCSOCK is '$mode', want '660 postfix'"
t_grep " started on unix:$PCSOCK " "$T/portcullis.log" "'started on unix:$PCSOCK'" >/dev/null

# smtpd_milters as in contrib/postfix/main.cf.snippet: relative to the
# queue folder (pf_start writes "smtpd_milters = unix:$SOCK").
SOCK=portcullis/portcullis.sock
pf_start
grep -qx "smtpd_milters = unix:portcullis/portcullis.sock" "$PF/main.cf" ||
	t_err "main.cf does not use the relative milter socket"

# The snippet's settings are Postfix parameters (postconf warns on unknown
# ones) and read back as written.
mkdir "$T/snip"
{
	echo "compatibility_level = 3.6"
	cat "$R$docdir/contrib/postfix/main.cf.snippet"
} >"$T/snip/main.cf"
: >"$T/snip/master.cf"
if postconf -c "$T/snip" -n >"$T/snip.out" 2>"$T/snip.err"; then
	snip_fails=$T_FAILS
	grep -q . "$T/snip.err" && t_err "postconf warns on the Postfix snippet: $(cat "$T/snip.err")"
	for kv in "smtpd_milters = unix:portcullis/portcullis.sock" "milter_default_action = tempfail" \
		"milter_protocol = 6" "non_smtpd_milters ="; do
		grep -qx "$kv" "$T/snip.out" || t_err "snippet: postconf -n lacks '$kv'"
	done
	[ "$T_FAILS" = "$snip_fails" ] && echo "ok: 4b. postconf reads the Postfix snippet without warnings"
else
	t_err "postconf -c on the snippet failed: $(cat "$T/snip.err")"
fi

pf_smtp good 192.0.2.8 mail.example.net sender@example.net user@example.test
QID=$(queue_id good)
if [ -z "$QID" ]; then
	t_err "good: not queued: $(grep -E '^ *<' "$T/good.txt" | tail -n 4)"
else
	f=$(delivered good "$QID")
	[ -n "$f" ] && echo "ok: 5a. a message through Postfix and the installed portcullis: queued as $QID, delivered"
	t_wait_for 'grep -q "portcullis: ref=[0-9A-Za-z]* qid=$QID " "$T/portcullis.log"' 5
	l=$(grep "portcullis: ref=[0-9A-Za-z]* qid=$QID " "$T/portcullis.log")
	echo "$l" | grep -q 'client=client-8\.example\.net\[192\.0\.2\.8\] helo=<mail\.example\.net> from=<sender@example\.net> to=<user@example\.test> verdict=accept' ||
		t_err "good: no log line 'qid=$QID ... to=<user@example.test> verdict=accept': '$l'"
fi

pf_smtp bad 192.0.2.7 localhost sender@example.net user@example.test
reply=$(pf_reply bad 'RCPT TO:<user@example.test>')
REF=$(echo "$reply" | sed -n 's/^ *<\*\* *550 5\.7\.1 .*(ref \([0-9A-Za-z]\{10\}\)); contact postmaster@example\.test$/\1/p')
if [ -z "$REF" ]; then
	t_err "bad HELO: RCPT answered '$reply', want 550 5.7.1 ... (ref R); contact postmaster@example.test"
else
	t_wait_for 'log_line "$REF" >/dev/null' 5
	log_line "$REF" | grep -q 'helo=<localhost> .*refused=<user@example\.test>:reject:helo\.localhost verdict=reject' ||
		t_err "bad HELO: log line of ref $REF: '$(log_line "$REF")'"
	echo "ok: 5b. HELO localhost refused at RCPT: $reply"
fi

# The unit's ExecReload: SIGUSR1.
kill -USR1 "$PC_PID"
t_wait_for 'grep -q "configuration reloaded from $PC/portcullis.conf" "$T/portcullis.log"' 5 ||
	t_err "no 'configuration reloaded from $PC/portcullis.conf' after SIGUSR1"
t_alive "$PC_PID" || t_err "portcullis died on SIGUSR1"

t0=$(t_now_ms)
kill -TERM "$PC_PID"
t_reap "$PC_PID" 10 "$PC_WRAP" && { [ "$T_RC" = 0 ] || t_err "portcullis: exit status $T_RC after SIGTERM"; }
echo "portcullis stopped in $(($(t_now_ms) - t0)) ms"
[ -e "$PCSOCK" ] && t_err "portcullis left its socket $PCSOCK behind"
[ -e "$PC/portcullis.pid" ] && t_err "portcullis left its pidfile behind"
t_sanitizer_clean "$T/portcullis.log" portcullis
if grep -E "portcullis: (error|warning): " "$T/portcullis.log" | grep -v "running as root" >"$T/warn"; then
	t_err "portcullis logged warnings: $(head -n 3 "$T/warn")"
fi
pf_stop

# --- 6. make uninstall ----------------------------------------------------------
mk uninstall DESTDIR="$R" >"$T/uninstall.out" 2>&1 ||
	t_err "make uninstall failed: $(tail -n 15 "$T/uninstall.out")"
[ -e "$BIN" ] && t_err "make uninstall left $BIN"
[ -e "$CONFDIR/bogon-networks.cidr" ] && t_err "make uninstall left the unchanged bogon-networks.cidr"
cmp -s "$T/modified.conf" "$CONFDIR/portcullis.conf" ||
	t_err "make uninstall removed or changed the modified portcullis.conf"
t_grep "leaving .*/portcullis\.conf" "$T/uninstall.out" "make uninstall's 'leaving .../portcullis.conf'" >/dev/null
left=$( (cd "$R" && find . -type f) | sed 's|^\./||')
[ "$left" = "${sysconfdir#/}/portcullis/portcullis.conf" ] ||
	t_err "after make uninstall, files left: $(echo "$left" | head -n 5)"
echo "ok: 6. make uninstall kept only the modified portcullis.conf"

echo "install.sh: $(($(t_now_ms) - START_MS)) ms"
t_done
