#!/bin/sh
# tests/ctl.sh - portcullisctl on the store of a running portcullis
#
# A real daemon and portcullisctl share one state_dir; SMTP transactions go
# through the milter protocol with the raw client of tests/milter/lib.lua
# (run by miltertest), which shows each reply with its ref id.  Checked:
# 1. each whitelist kind (client, network, host, sender, domain, recipient):
#    refused, `whitelist add` -> the same transaction passes at once (no
#    reload), `whitelist del` -> refused again; list output; expiry by the
#    settable clock (PORTCULLIS_CLOCK_FILE) and `expire`.
# 2. a refused transaction -> `explain REF` (store and --log) ->
#    `whitelist add --from-ref REF` -> the same transaction passes, for a
#    HELO-stage (client), a MAIL-stage (sender) and a RCPT-stage
#    (recipient) refusal.
# 3. `check` is a dry run: it shows each check's decision and the final one,
#    keeps no ref and changes nothing; with clamav it scans for real (the
#    made-up message: Clean; --message FILE / - with EICAR: 554 at end of
#    DATA; no database: 451 4.3.0, "decision defer at end of DATA"), and a
#    partly refused transaction says how many recipients are accepted.
# 4. dump / load: greylist and awl records loaded from the documented text,
#    greylist list/show/del and awl list/del on them, and a dump loaded into
#    an empty state_dir dumps identically; a bad file names FILE:LINE and
#    loads nothing.
# 5. bad arguments: one-line messages and exit status 2 (usage) or 1 (not
#    found).
# 6. durability: a loop of `whitelist add` killed with SIGKILL at several
#    moments, the daemon killed with SIGKILL in the middle too: every entry
#    that portcullisctl reported as added is there afterwards, no file was
#    moved aside, and the restarted daemon obeys the entries.
# shellcheck disable=SC2086 # $BAD and the like are split into arguments
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

t_need "$MILTERTEST" perl
[ -x "$PORTCULLISCTL" ] || fail "PORTCULLISCTL='$PORTCULLISCTL' is not built"
t_init

PORTCULLIS_CLOCK_FILE=$T/clock
export PORTCULLIS_CLOCK_FILE
echo 1800000000 >"$T/clock"
printf 'x@example.test REJECT No such user here\n' >"$T/rcpt.map"
CONF=$T/portcullis.conf
t_conf "$CONF" "pidfile = $T/portcullis.pid" "access.recipient = texthash:$T/rcpt.map"


cat >"$T/client.lua" <<'EOF'
-- one transaction through the raw milter client; prints "STEP CODE DATA"
local t = dofile(libdir .. "/lib.lua")
local steps = { { "conn", host, ip }, { "helo", helo }, { "mail", from } }
for r in string.gmatch(rcpts, "[^,]+") do
	steps[#steps + 1] = { "rcpt", r }
end
steps[#steps + 1] = { "abort" }
steps[#steps + 1] = { "quit" }
local res = assert(t.raw(steps))
for _, e in ipairs(res) do
	print(e.cmd .. " " .. e.code .. " " .. e.data)
end
EOF

# txn IP HOST HELO FROM RCPT[,RCPT]: run it; $TX_OUT is the output, $TX_REF
# the ref of the last refusal, $TX_RCPT the RCPT reply codes ("c" or "y").
txn()
{
	TX_OUT=$(t_mt "$T/client.lua" -D "dir=$T" -D "portcullis=$PORTCULLIS" \
		-D "libdir=$top_srcdir/tests/milter" -D "ip=$1" -D "host=$2" -D "helo=$3" \
		-D "from=$4" -D "rcpts=$5" 2>&1)
	_rc=$?
	[ $_rc -eq 0 ] || t_err "miltertest exit $_rc: $TX_OUT"
	TX_REF=$(echo "$TX_OUT" | sed -n 's/.*(ref \([0-9A-Za-z]*\)); contact.*/\1/p' | tail -n 1)
	TX_RCPT=$(echo "$TX_OUT" | awk '$1 == "R" { printf "%s", $2 }')
}

# expect WHAT WANT_RCPT_CODES IP HOST HELO FROM RCPTS
expect()
{
	_what=$1 _want=$2
	shift 2
	txn "$@"
	if [ "$TX_RCPT" = "$_want" ]; then
		pass "$_what (rcpt: $TX_RCPT)"
	else
		t_err "$_what: rcpt replies '$TX_RCPT', want '$_want': $TX_OUT"
	fi
}

# t_run_ctl WANT_STATUS ARGS...: $CTL_OUT holds stdout+stderr.


t_start "$CONF" "$T/daemon.log"

# HELO localhost from a remote client is refused (helo.localhost): the base
# refusal that each whitelist kind must lift.
BAD="192.0.2.7 mx1.example.net localhost <a@lists.example.org> <b@example.test>"

# --- 1. each kind, obeyed at once --------------------------------------------
expect "refused before any whitelist" y $BAD
for entry in "client 192.0.2.7" "network 192.0.2.0/24" "host .example.net" \
	"host mx1.example.net" "sender a@lists.example.org" "domain example.org" \
	"recipient b@example.test"; do
	# shellcheck disable=SC2086
	t_run_ctl 0 whitelist add $entry --comment "test $entry"
	t_has "added $entry"
	expect "whitelist $entry: passes" c $BAD
	# shellcheck disable=SC2086
	t_run_ctl 0 whitelist list ${entry%% *}
	t_has "$entry created=2027-01-15T08:00:00Z by="
	t_has "comment=test $entry"
	# shellcheck disable=SC2086
	t_run_ctl 0 whitelist del $entry
	t_has "deleted $entry"
	expect "whitelist $entry deleted: refused again" y $BAD
done
# a recipient entry lifts only that recipient
t_run_ctl 0 whitelist add recipient '<B@Example.test>'
t_has "added recipient b@example.test"
expect "recipient whitelist: only that recipient" cy \
	192.0.2.7 mx1.example.net localhost '<a@example.org>' '<b@example.test>,<c@example.test>'
t_run_ctl 0 whitelist del recipient b@example.test
# the sender whitelist sees the address, not a lookalike
t_run_ctl 0 whitelist add sender a@example.org
expect "sender whitelist: another sender still refused" y \
	192.0.2.7 mx1.example.net localhost '<a@example.org.evil.test>' '<b@example.test>'
t_run_ctl 0 whitelist del sender a@example.org

# expiry: honoured by the daemon's copy, then removed by expire
t_run_ctl 0 whitelist add client 192.0.2.7 --expires 1h
t_has "added client 192.0.2.7 expires 2027-01-15T09:00:00Z"
expect "entry with --expires 1h: passes" c $BAD
echo 1800003601 >"$T/clock"
expect "entry after its expiry: refused" y $BAD
t_run_ctl 0 whitelist list
[ -z "$CTL_OUT" ] || t_err "expired entry still listed: $CTL_OUT"
# expire counts what it removes: in a state_dir of its own, as the
# daemon's background expiry would race with it here
mkdir "$T/exp"
t_conf "$T/exp.conf" "state_dir = $T/exp" "socket = unix:$T/exp/sock"
timeout 60 "$PORTCULLISCTL" -c "$T/exp.conf" whitelist add client 192.0.2.7 --expires 1h >/dev/null ||
	t_err "whitelist add in $T/exp failed"
echo 1800007202 >"$T/clock"
CTL_OUT=$(timeout 60 "$PORTCULLISCTL" -c "$T/exp.conf" expire 2>&1) || t_err "expire failed: $CTL_OUT"
t_has "whitelist  1 expired"
t_has "total      1 expired"
# the main state_dir: its expired entry must be gone (not merely expired)
# before the clock goes back; the daemon's background expiry may or may not
# have reached it yet, so remove it here (the count is not asserted)
timeout 60 "$PORTCULLISCTL" -c "$CONF" expire >/dev/null 2>&1 ||
	t_err "expire in the main state_dir failed"
echo 1800000000 >"$T/clock"
expect "expired entry gone: refused" y $BAD

# --- 2. explain and --from-ref -------------------------------------------------
txn $BAD
REF1=$TX_REF
[ -n "$REF1" ] || t_err "no ref in the refusal: $TX_OUT"
t_run_ctl 0 explain "$REF1"
t_has "ref       $REF1"
t_has "client    192.0.2.7"
t_has "helo      localhost"
t_has "symbol    helo.localhost helo"
t_has "verdict   reject"
t_run_ctl 0 explain --log "$T/daemon.log" "$REF1"
t_has "ref=$REF1 client=mx1.example.net[192.0.2.7]"
t_run_ctl 1 explain NoSuchRef0
t_has "ref NoSuchRef0: not in the store"
t_run_ctl 0 whitelist add --from-ref "$REF1"
t_has "added client 192.0.2.7 (from ref $REF1)"
expect "after whitelist add --from-ref (HELO stage -> client)" c $BAD
t_run_ctl 0 whitelist list client
t_has "comment=from ref $REF1"
t_run_ctl 0 whitelist del client 192.0.2.7

# MAIL stage: a sender domain that is not a FQDN -> the sender
MAILBAD="198.51.100.9 mail.example.com mail.example.com <u@nofqdn> <b@example.test>"
expect "non-FQDN sender refused" y $MAILBAD
REF2=$TX_REF
t_run_ctl 0 whitelist add --from-ref "$REF2" --comment "vendor test box"
t_has "added sender u@nofqdn (from ref $REF2)"
expect "after --from-ref (MAIL stage -> sender)" c $MAILBAD

# RCPT stage: an access.recipient REJECT -> that recipient
RCPTBAD="198.51.100.9 mail.example.com mail.example.com <u@example.com> <x@example.test>"
expect "recipient refused by access.recipient" y $RCPTBAD
REF3=$TX_REF
t_run_ctl 0 whitelist add --from-ref "$REF3"
t_has "added recipient x@example.test (from ref $REF3)"
expect "after --from-ref (RCPT stage -> recipient)" c $RCPTBAD

# --- 3. check: a dry run ---------------------------------------------------------
t_run_ctl 0 stats
refs_before=$(echo "$CTL_OUT" | sed -n 's/^entries.refs //p')
t_run_ctl 1 check --ip 192.0.2.7 --helo localhost --from '<a@example.org>' --rcpt '<b@example.test>'
t_has "check  helo.localhost"
t_has "reject (helo)"
t_has "decision reject"
t_run_ctl 0 check --ip 198.51.100.9 --helo localhost --from '<u@nofqdn>' --rcpt '<b@example.test>'
t_has "check  whitelist.sender"
t_has "decision accept"
t_run_ctl 0 stats
[ "$(echo "$CTL_OUT" | sed -n 's/^entries.refs //p')" = "$refs_before" ] ||
	t_err "check kept a ref: refs $refs_before -> $CTL_OUT"

# with clamav: the dry run scans for real (the scanner helper is portcullisctl
# started again), and the last line names what the MTA would answer
mkdir -p "$T/avdb"
python3 - "$T" <<'PYEOF' || fail "python3 could not write the test database"
import sys
T = sys.argv[1]
eicar = "*H+H$!ELIF-TSET-SURIVITNA-DRADNATS-RACIE$}7)CC7)^P(45XZP\\4[PA@%P!O5X"[::-1].encode()
open(T + "/avdb/test.ndb", "w").write("Test.Eicar:0:*:" + eicar.hex() + "\n")
open(T + "/virus.eml", "wb").write(b"From: a@example.org\nSubject: eicar\n\n" + eicar + b"\n")
PYEOF
AVCONF=$T/av.conf
t_conf "$AVCONF" "checks = helo, clamav" "clamav.database = $T/avdb" \
	"state_dir = $T/avstate" "trusted_networks ="
mkdir -p "$T/avstate"
CONF_SAVED=$CONF
CONF=$AVCONF
t_run_ctl 0 check --ip 192.0.2.7 --helo mail.example.org --from a@example.org --rcpt b@example.test
t_has "header   X-Virus-Status: Clean" "check with clamav, made-up message"
t_has "decision accept"
t_run_ctl 1 check --ip 192.0.2.7 --helo mail.example.org --from a@example.org --rcpt b@example.test \
	--message "$T/virus.eml"
t_has "eom      554 5.7.1 Message contains a virus: Test.Eicar" "check --message with EICAR"
t_has "decision reject at end of DATA (554 5.7.1)"
t_run_ctl 1 check --ip 192.0.2.7 --helo mail.example.org --from a@example.org --rcpt b@example.test \
	--message - <"$T/virus.eml"
t_has "decision reject at end of DATA (554 5.7.1)" "check --message - (stdin)"
t_conf "$AVCONF" "checks = helo, clamav" "clamav.database = $T/no-such-db" \
	"state_dir = $T/avstate" "trusted_networks ="
t_run_ctl 1 check --ip 192.0.2.7 --helo mail.example.org --from a@example.org --rcpt b@example.test
t_has "eom      451 4.3.0 Virus scan failed" "check with a missing database"
t_has "decision defer at end of DATA (451 4.3.0): the sender is told to retry"
CONF=$CONF_SAVED
t_run_ctl 1 check --ip 198.51.100.9 --helo mail.example.com --from '<u@example.com>' \
	--rcpt '<b@example.test>' --rcpt '<c@nofqdn>'
t_has "decision accept for 1 of 2 recipients; the others are refused at RCPT"

# --- 4. dump and load -------------------------------------------------------------
TAB=$(printf '\t')
cat >"$T/grey.dump" <<EOF
# greylist and awl records written by hand in the dump format
greylist${TAB}ip:203.0.113.0/24 s@example.net r@example.test${TAB}2027-02-01T00:00:00Z${TAB}flags=-${TAB}passes=0${TAB}defers=2${TAB}first=2027-01-15T07:58:00Z${TAB}last=2027-01-15T07:59:00Z
greylist${TAB}ip:203.0.113.0/24 s@example.net q@example.test${TAB}2027-02-01T00:00:00Z${TAB}flags=passed${TAB}passes=4${TAB}defers=1${TAB}first=2027-01-14T07:00:00Z${TAB}last=2027-01-15T07:00:00Z
greylist${TAB}ip:2001:db8:5::/64 other@example.org r@example.test${TAB}never${TAB}flags=passed,nogrey${TAB}passes=1${TAB}defers=0${TAB}first=1799990000${TAB}last=1799990000
awl${TAB}ip:203.0.113.0/24${TAB}2027-03-01T00:00:00Z${TAB}passes=7${TAB}first=2027-01-01T00:00:00Z${TAB}last=2027-01-15T07:00:00Z
awl${TAB}ip:198.18.0.0/24${TAB}2027-03-01T00:00:00Z${TAB}passes=5${TAB}first=2027-01-01T00:00:00Z${TAB}last=2027-01-15T07:00:00Z
stats${TAB}greylist.passes${TAB}never${TAB}data=5
EOF
t_run_ctl 0 load "$T/grey.dump"
t_has "loaded 6 records"
t_run_ctl 0 greylist list
[ "$(echo "$CTL_OUT" | grep -c .)" -eq 3 ] || t_err "greylist list: $CTL_OUT"
t_run_ctl 0 greylist list --net 203.0.113.77
[ "$(echo "$CTL_OUT" | grep -c .)" -eq 2 ] || t_err "greylist list --net: $CTL_OUT"
t_run_ctl 0 greylist list --sender '<S@Example.NET>' --rcpt r@example.test
t_has "ip:203.0.113.0/24 s@example.net r@example.test waiting passes=0 defers=2"
t_run_ctl 0 greylist show --ip 2001:db8:5::9 --from other@example.org --rcpt '<r@example.test>'
t_has "state     passed (score-aware: not greylisted)"
t_run_ctl 1 greylist show --ip 192.0.2.1 --from other@example.org --rcpt r@example.test
t_has "no matching entry"
t_run_ctl 0 awl list
t_has "ip:198.18.0.0/24 passes=5"
t_run_ctl 0 stats
t_has "entries.greylist 3"
t_has "entries.awl 2"
t_has "greylist.passes 5"
# a dump of everything, loaded into an empty state_dir, dumps the same
t_ctl dump >"$T/all.dump" 2>"$T/dump.err" || t_err "dump failed: $(cat "$T/dump.err")"
[ -s "$T/dump.err" ] && t_err "dump complained: $(cat "$T/dump.err")"
for ns in greylist awl whitelist refs stats; do
	grep -q "^$ns$TAB" "$T/all.dump" || t_err "dump t_has no $ns record"
done
mkdir "$T/copy"
t_conf "$T/copy.conf" "state_dir = $T/copy" "socket = unix:$T/copy/sock"
CTL_OUT=$(timeout 60 "$PORTCULLISCTL" -c "$T/copy.conf" load - <"$T/all.dump" 2>&1) ||
	t_err "load into the copy: $CTL_OUT"
timeout 60 "$PORTCULLISCTL" -c "$T/copy.conf" dump >"$T/copy.dump" 2>&1
# (records come in store order: compare them sorted)
sort "$T/all.dump" >"$T/all.sorted"
sort "$T/copy.dump" >"$T/copy.sorted"
if cmp -s "$T/all.sorted" "$T/copy.sorted"; then
	pass "dump -> load -> dump gives the same $(grep -vc '^#' "$T/all.dump") records"
else
	t_err "dump of the loaded copy differs: $(diff "$T/all.sorted" "$T/copy.sorted" | head -n 10)"
fi
# deletions
t_run_ctl 0 greylist del --ip 203.0.113.1 --rcpt q@example.test
t_has "deleted ip:203.0.113.0/24 s@example.net q@example.test"
t_run_ctl 0 greylist del 'ip:2001:db8:5::/64 other@example.org r@example.test'
t_run_ctl 0 greylist list
[ "$(echo "$CTL_OUT" | grep -c .)" -eq 1 ] || t_err "after greylist del: $CTL_OUT"
t_run_ctl 0 awl del 198.18.0.0/24
t_has "deleted ip:198.18.0.0/24"
t_run_ctl 1 awl del 198.18.0.0/24
t_has "not found"
# a bad file: every bad line named, nothing loaded
cat >"$T/bad.dump" <<EOF
whitelist${TAB}client:192.0.2.200${TAB}never${TAB}created=0${TAB}by=x${TAB}comment=fine
whitelist${TAB}client:not-an-ip${TAB}never${TAB}created=0${TAB}by=x${TAB}comment=
greylist${TAB}just-a-key${TAB}never${TAB}flags=-
EOF
t_run_ctl 1 load "$T/bad.dump"
t_has "$T/bad.dump:2: whitelist client: 'not-an-ip' is not an IP address"
t_has "$T/bad.dump:3: "
t_has "nothing loaded"
t_run_ctl 0 whitelist list client
case $CTL_OUT in *192.0.2.200*) t_err "a bad file was partly loaded: $CTL_OUT" ;; esac

# --- 5. bad arguments ----------------------------------------------------------------
t_run_ctl 2 whitelist
t_has "portcullisctl: whitelist: add, del or list expected"
t_run_ctl 2 whitelist add friend 192.0.2.1
t_has "unknown kind 'friend'"
t_run_ctl 2 whitelist add client
t_has "KIND VALUE expected"
t_run_ctl 2 whitelist add client 192.0.2.300
t_has "'192.0.2.300' is not an IP address"
t_run_ctl 2 whitelist add network 192.0.2.1
t_has "is not a network ADDRESS/LENGTH"
t_run_ctl 2 whitelist add sender '<>'
t_has "the null sender <> cannot be whitelisted"
t_run_ctl 2 whitelist add client 192.0.2.1 --expires soon
t_has "--expires 'soon'"
t_run_ctl 2 whitelist add --from-ref 'bad ref!'
t_has "is not a reference id"
t_run_ctl 1 whitelist add --from-ref NoSuchRef0
t_has "not in the store"
t_run_ctl 1 whitelist del client 192.0.2.99
t_has "whitelist del: client 192.0.2.99: not found"
t_run_ctl 2 whitelist list client extra
t_run_ctl 2 greylist frob
t_has "unknown subcommand 'frob'"
t_run_ctl 2 greylist del
t_has "needs KEY or --ip/--sender/--rcpt"
t_run_ctl 2 awl del
t_run_ctl 2 expire now
t_run_ctl 2 load
t_run_ctl 2 load "$T/no-such-file"
t_has "No such file or directory"
t_run_ctl 2 dump nosuchns
t_has "no namespace 'nosuchns'"
t_run_ctl 2 explain
t_run_ctl 2 frobnicate
t_has "unknown command 'frobnicate'"

# --- 6. kill -9: no reported change is lost ---------------------------------------------
cat >"$T/adder.sh" <<EOF
#!/bin/sh
# add clients 10.9.R.1.. in turn; each "added" line is printed only after
# portcullisctl returned success
i=1
while [ \$i -le 250 ]; do
	out=\$("$PORTCULLISCTL" -c "$CONF" whitelist add client 10.9.\$1.\$i --comment "round \$1") &&
		echo "\$out"
	i=\$((i + 1))
done
EOF
total=0
for round in 1 2 3 4 5 6; do
	sh "$T/adder.sh" "$round" >"$T/added.$round" 2>"$T/adder.$round.err" &
	apid=$!
	T_PIDS="$T_PIDS $apid"
	# let a few adds complete, then kill the loop's current portcullisctl
	t_wait_for "[ \$(grep -c . '$T/added.$round') -ge $round ]" 60 ||
		t_err "round $round: no add completed: $(cat "$T/adder.$round.err")"
	if [ "$round" = 3 ]; then
		# the daemon too, in the middle of the writes
		kill -9 "$T_PID" 2>/dev/null
		t_wait_exit "$T_PID" 10 || t_err "daemon did not die"
	fi
	# stop the loop, then kill its running portcullisctl (a grandchild:
	# loop -> $(...) subshell -> portcullisctl) in the middle of its work
	kill -STOP "$apid" 2>/dev/null
	kids=$(pgrep -P "$apid")
	grandkids=
	for k in $kids; do
		grandkids="$grandkids $(pgrep -P "$k")"
	done
	# shellcheck disable=SC2086
	kill -9 $grandkids $kids "$apid" 2>/dev/null
	wait "$apid" 2>/dev/null
	n=$(grep -c '^added client' "$T/added.$round")
	total=$((total + n))
done
for f in "$T"/*.corrupt-*; do
	[ -e "$f" ] && t_err "a store file was moved aside: $f"
done
t_run_ctl 0 whitelist list client
missing=0
for f in "$T"/added.*; do
	for v in $(sed -n 's/^added client //p' "$f"); do
		echo "$CTL_OUT" | grep -q "^client $v " || missing=$((missing + 1))
	done
done
if [ $missing -eq 0 ] && [ $total -gt 0 ]; then
	pass "kill -9 of writers (6 times) and of the daemon: all $total reported adds present"
else
	t_err "$missing of $total reported whitelist adds lost after kill -9"
fi
# the restarted daemon opens the files and obeys an entry added meanwhile
t_start "$CONF" "$T/daemon2.log"
v=$(sed -n 's/^added client //p' "$T/added.6" | tail -n 1)
expect "restarted daemon obeys client $v" c "$v" mx1.example.net localhost '<a@example.org>' '<b@example.test>'
grep -q corrupt "$T/daemon2.log" && t_err "restarted daemon found a corrupt file"

t_stop "$T_PID" 10 "$T_WRAP"
t_sanitizer_clean "$T/daemon.log"
t_sanitizer_clean "$T/daemon2.log"
t_done
