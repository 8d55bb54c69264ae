# tests/e2e/mta-lib.sh - what the e2e tests of every MTA share: the SMTP
# client and reading its transcript (POSIX sh; sourced after tests/lib.sh,
# by tests/e2e/postfix-lib.sh and tests/e2e/sendmail-lib.sh)
#
#   mta_swaks NAME FROM RCPT [SWAKS ARGS...]
#                               one swaks session (server, HELO and so on
#                               in ARGS); the message has "Subject:
#                               portcullis e2e NAME" and "X-Test-Id: NAME";
#                               transcript in $T/NAME.txt, status $T/NAME.rc
#   mta_reply NAME CMD_ERE      the server's reply to the first client
#                               command matching CMD_ERE in transcript NAME
#   mta_refused NAME CMD_ERE CODE XCODE TEXT
#                               t_err unless that reply is "CODE XCODE
#                               ...TEXT (ref R); contact
#                               postmaster@example.test" (the MTA may put
#                               "<address>... " before TEXT) and
#                               R is the ref of a portcullis log line; sets
#                               $REF and $LINE (that log line), returns 1
#                               when an assertion failed
#   log_line REF                portcullis' log line of ref REF (in
#                               $T/portcullis.log)

mta_swaks()
{
	_mn=$1 _mf=$2 _mt=$3
	shift 3
	timeout 60 "$SWAKS" --from "$_mf" --to "$_mt" \
		--header "Subject: portcullis e2e $_mn" --header "X-Test-Id: $_mn" \
		--body "test message $_mn" "$@" >"$T/$_mn.txt" 2>&1
	echo $? >"$T/$_mn.rc"
}

# The line after the first client command matching CMD_ERE (e.g. 'RCPT
# TO:<u@example.test>') in transcript NAME: the server's reply (swaks:
# "<- " or "<** ").
mta_reply()
{
	grep -A 1 -E "^ *-> $2" "$T/$1.txt" | sed -n 2p
}

log_line()
{
	grep "portcullis: ref=$1 " "$T/portcullis.log"
}

mta_refused()
{
	_rn=$1 _rc=$3 _rx=$4 _rt=$5
	REF= LINE=
	_reply=$(mta_reply "$1" "$2")
	case $_reply in
	*"<** $_rc $_rx "*"$_rt (ref "??????????"); contact postmaster@example.test") ;;
	*)
		t_err "$_rn: '$2' answered '$_reply', want '<** $_rc $_rx ...$_rt (ref R); contact postmaster@example.test'"
		return 1
		;;
	esac
	REF=$(echo "$_reply" | sed -n 's/.*(ref \([0-9A-Za-z]\{10\}\)); contact postmaster@example\.test$/\1/p')
	[ -n "$REF" ] || { t_err "$_rn: no 10-character ref in '$_reply'"; return 1; }
	t_wait_for 'log_line "$REF" >/dev/null' 5
	LINE=$(log_line "$REF")
	[ -n "$LINE" ] || { t_err "$_rn: ref $REF of the reply is not in the portcullis log"; return 1; }
	return 0
}
