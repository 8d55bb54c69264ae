#!/usr/bin/perl
# tests/dns/faultproxy.pl - a DNS proxy on a loopback port that injects faults
#
#   faultproxy.pl --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT
#                 [--rule SUFFIX=ACTION]... [--lifetime SECONDS] [--verbose]
#   faultproxy.pl --probe 127.0.0.1:PORT NAME    exit 0 when a NOERROR answer
#                                               for NAME/SOA arrives in 1 s
#
# Queries over UDP and TCP are forwarded to the upstream server (NSD, see
# server.sh), except that a query whose name is SUFFIX or ends in .SUFFIX
# gets the first matching rule's ACTION:
#   delay:MS   the upstream answer is sent MS milliseconds after the query
#              came (or when it comes, if the upstream is slower)
#   drop       no answer at all (over TCP: the connection is held, then closed)
#   servfail   an immediate SERVFAIL answer
#   refused    an immediate REFUSED answer
#   spoof      (UDP) first four forged replies that a resolver must ignore -
#              wrong id, wrong question, garbage, right id and question but
#              from another source port, all pointing at 192.0.2.66 - then,
#              50 ms later, the real answer
# Only core Perl (IO::Socket, IO::Select, Time::HiRes).  The process ends by
# itself after --lifetime seconds (default 600), so a test that dies without
# its cleanup leaves nothing behind for long.  --verbose logs every UDP
# query and reply with a timestamp on stdout.  Loopback only.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Socket qw(MSG_DONTWAIT);
use Time::HiRes qw(time sleep);
use POSIX ();

my ($listen, $upstream, $lifetime, @rules) = (undef, undef, 600);
my ($probe_addr, $probe_name, $verbose);

while (@ARGV) {
	my $a = shift @ARGV;
	if ($a eq '--listen') { $listen = shift @ARGV }
	elsif ($a eq '--upstream') { $upstream = shift @ARGV }
	elsif ($a eq '--lifetime') { $lifetime = shift @ARGV }
	elsif ($a eq '--verbose') { $verbose = 1 }
	elsif ($a eq '--rule') {
		my $r = shift @ARGV;
		$r =~ /^([A-Za-z0-9._-]+)=(delay:\d+|drop|servfail|refused|spoof)$/
		    or die "faultproxy: bad rule '$r'\n";
		push @rules, [lc $1, $2];
	}
	elsif ($a eq '--probe') { ($probe_addr, $probe_name) = splice(@ARGV, 0, 2) }
	else { die "faultproxy: unknown argument '$a'\n" }
}

# Parse the question of a DNS message: (lower-case name, offset after QTYPE/QCLASS).
sub question {
	my ($m) = @_;
	return () if length($m) < 12;
	my ($off, @labels) = (12);
	while (1) {
		return () if $off >= length($m);
		my $len = ord(substr($m, $off, 1));
		last if $len == 0;
		return () if $len > 63 || $off + 1 + $len > length($m);
		push @labels, substr($m, $off + 1, $len);
		$off += 1 + $len;
	}
	$off += 1 + 4;
	return () if $off > length($m);
	return (lc(join('.', @labels)), $off);
}

sub rule_for {
	my ($name) = @_;
	for my $r (@rules) {
		my $s = $r->[0];
		return $r->[1] if $name eq $s || substr($name, -length($s) - 1) eq ".$s";
	}
	return '';
}

# An answer with RCODE rc and no records, for query q.
sub error_reply {
	my ($q, $rc) = @_;
	my (undef, $qend) = question($q);
	return undef unless $qend;
	my ($id, $flags) = unpack('nn', $q);
	$flags = 0x8000 | ($flags & 0x0100) | 0x0080 | $rc;    # QR, RD copied, RA
	return pack('nnnnnn', $id, $flags, 1, 0, 0, 0) . substr($q, 12, $qend - 12);
}

# A forged answer for q: one A record 192.0.2.66, id and name as given.
sub forged {
	my ($q, $id, $flip) = @_;
	my (undef, $qend) = question($q);
	my $qs = substr($q, 12, $qend - 12);
	substr($qs, 1, 1) = chr(ord(substr($qs, 1, 1)) ^ 0x03) if $flip;    # another name
	return pack('nnnnnn', $id, 0x8580, 1, 1, 0, 0) . $qs
	    . pack('nnnNn', 0xc00c, 1, 1, 300, 4) . pack('C4', 192, 0, 2, 66);
}

sub hostport {
	my ($s) = @_;
	$s =~ /^\[?([0-9a-fA-F.:]+)\]?:(\d+)$/ or die "faultproxy: bad address '$s'\n";
	return ($1, $2);
}

if (defined $probe_addr) {
	my ($h, $p) = hostport($probe_addr);
	my $s = IO::Socket::INET->new(Proto => 'udp', PeerAddr => $h, PeerPort => $p) or exit 1;
	my $id = int(rand(65536));
	my $q = pack('nnnnnn', $id, 0x0100, 1, 0, 0, 0);
	$q .= chr(length $_) . $_ for split /\./, $probe_name;
	$q .= "\0" . pack('nn', 6, 1);
	$s->send($q) or exit 1;
	my $sel = IO::Select->new($s);
	my $end = time + 1;
	while ((my $left = $end - time) > 0) {
		last unless $sel->can_read($left);
		my $r;
		defined $s->recv($r, 65535) or exit 1;    # refused: nothing listens yet
		next if length($r) < 12;
		my ($rid, $flags) = unpack('nn', $r);
		exit(($flags & 0x000f) == 0 ? 0 : 1) if $rid == $id;
	}
	exit 1;
}

defined $listen && defined $upstream or die "faultproxy: need --listen and --upstream\n";
my ($lh, $lp) = hostport($listen);
my ($uh, $up) = hostport($upstream);
my $udp = IO::Socket::INET->new(Proto => 'udp', LocalAddr => $lh, LocalPort => $lp)
    or die "faultproxy: udp $listen: $!\n";
my $tcp = IO::Socket::INET->new(Proto => 'tcp', LocalAddr => $lh, LocalPort => $lp,
    Listen => 16, ReuseAddr => 1) or die "faultproxy: tcp $listen: $!\n";
$SIG{CHLD} = 'IGNORE';
$SIG{TERM} = $SIG{INT} = sub { exit 0 };
$| = 1;
print "faultproxy: listening on $listen, upstream $upstream\n";

# One upstream socket; each forwarded query gets an id of ours, so replies
# map back to the client (and its own id) without a socket per query.
my $ups = IO::Socket::INET->new(Proto => 'udp', PeerAddr => $uh, PeerPort => $up)
    or die "faultproxy: upstream $upstream: $!\n";
my $sel = IO::Select->new($udp, $tcp, $ups);
my %pend;      # our id -> { peer, id, due, until }
my $next_id = int(rand(65536));
my @later;     # [time, reply, peer], sorted by time
my $stop = time + $lifetime;

sub tcp_child {
	my ($c) = @_;
	alarm 5;
	my ($hdr, $q) = ('', '');
	read($c, $hdr, 2) == 2 or exit 0;
	my $len = unpack('n', $hdr);
	read($c, $q, $len) == $len or exit 0;
	my ($name) = question($q);
	exit 0 unless defined $name;
	my $act = rule_for($name);
	if ($act eq 'drop') { sleep 4; exit 0 }
	if ($act eq 'servfail' || $act eq 'refused') {
		my $r = error_reply($q, $act eq 'servfail' ? 2 : 5);
		print $c pack('n', length $r) . $r;
		exit 0;
	}
	sleep($1 / 1000) if $act =~ /^delay:(\d+)/;
	my $u = IO::Socket::INET->new(Proto => 'tcp', PeerAddr => $uh, PeerPort => $up) or exit 0;
	print $u $hdr . $q;
	read($u, $hdr, 2) == 2 or exit 0;
	$len = unpack('n', $hdr);
	my $r = '';
	read($u, $r, $len) == $len or exit 0;
	print $c $hdr . $r;
	exit 0;
}

sub client_query {
	my ($q, $peer) = @_;
	my ($name) = question($q);
	return unless defined $name;
	my $act = rule_for($name);
	printf("%.3f query %s %s\n", time, $name, $act || 'forward') if $verbose;
	return if $act eq 'drop';
	if ($act eq 'servfail' || $act eq 'refused') {
		$udp->send(error_reply($q, $act eq 'servfail' ? 2 : 5), 0, $peer);
		return;
	}
	my $delay = 0;
	$delay = $1 / 1000 if $act =~ /^delay:(\d+)/;
	my $id = unpack('n', $q);
	if ($act eq 'spoof') {
		$udp->send(forged($q, $id ^ 0x5a5a, 0), 0, $peer);
		$udp->send(forged($q, $id, 1), 0, $peer);
		$udp->send(pack('n', $id) . "\x81\x80\xff\xff\x07", 0, $peer);
		my $o = IO::Socket::INET->new(Proto => 'udp', LocalAddr => $lh);
		$o->send(forged($q, $id, 0), 0, $peer) if $o;
		$delay = 0.05;
	}
	$next_id = ($next_id + 1) & 0xffff;
	$pend{$next_id} = { peer => $peer, id => $id, due => time + $delay, until => time + 5 };
	substr($q, 0, 2) = pack('n', $next_id);
	$ups->send($q);
}

sub upstream_reply {
	my ($r) = @_;
	return if length($r) < 12;
	my $p = delete $pend{unpack('n', $r)} or return;
	substr($r, 0, 2) = pack('n', $p->{id});
	@later = sort { $a->[0] <=> $b->[0] } (@later, [$p->{due}, $r, $p->{peer}]);
}

while (time < $stop) {
	my $wait = 1;
	$wait = $later[0][0] - time if @later && $later[0][0] - time < $wait;
	$wait = 0 if $wait < 0;
	for my $s ($sel->can_read($wait)) {
		if ($s == $tcp) {
			my $c = $tcp->accept or next;
			my $pid = fork;
			if (defined $pid && $pid == 0) {
				close $udp;
				tcp_child($c);
			}
			close $c;
		} elsif ($s == $udp) {
			# Everything waiting, not one datagram per wake-up.
			for (1 .. 64) {
				my $q;
				my $peer = $udp->recv($q, 65535, MSG_DONTWAIT);
				last unless defined $peer;
				client_query($q, $peer);
			}
		} elsif ($s == $ups) {
			for (1 .. 64) {
				my $r;
				last unless defined $ups->recv($r, 65535, MSG_DONTWAIT);
				upstream_reply($r);
			}
		}
	}
	my $now = time;
	while (@later && $later[0][0] <= $now) {
		my $l = shift @later;
		$udp->send($l->[1], 0, $l->[2]);
		printf("%.3f reply %d bytes (due %.3f)\n", time, length $l->[1], $l->[0]) if $verbose;
	}
	for my $k (keys %pend) {
		delete $pend{$k} if $pend{$k}{until} <= $now;
	}
}
exit 0;
