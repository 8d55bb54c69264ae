#!/usr/bin/perl
# tests/rawclient.pl SOCKET SCRIPT - a raw milter client for the shell tests
#
# SCRIPT lines: "send CMD HEXDATA" sends one milter packet and prints
# "CMD REPLYCODE HEXDATA" for each reply packet (at end of message until
# the final one), or "CMD -" for a step the filter negotiated no reply for
# (the SMFIP_NR_* flags of its answer to "send O ...", as an MTA honours
# them) and for macros (D), abort (A) and quit (Q), which get none; "wait
# FILE" waits until FILE exists; "touch FILE" makes it.  Prints DONE at the
# end; CONNECTFAIL, EOF or TIMEOUT (30 s) on trouble.  Used by
# tests/stop.sh and tests/ratelimit-redis.sh.
use strict;
use warnings;
use IO::Socket::UNIX;
my ($sock, $script) = @ARGV;
$SIG{ALRM} = sub { print "TIMEOUT\n"; exit 3; };
alarm 30;
$| = 1;
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $sock)
    or do { print "CONNECTFAIL $!\n"; exit 2; };
binmode $s;
sub readn {
    my ($n) = @_; my $buf = "";
    while (length($buf) < $n) {
        my $r = sysread($s, $buf, $n - length($buf), length($buf));
        if (!defined $r || $r == 0) { print "EOF\n"; exit 4; }
    }
    return $buf;
}
# SMFIP_NR_* bit of each step that has one
my %nr = (C => 0x1000, H => 0x2000, M => 0x4000, R => 0x8000, T => 0x10000,
          U => 0x20000, L => 0x80, N => 0x40000, B => 0x80000);
my $proto = 0;    # protocol flags the filter asked for
open(my $fh, "<", $script) or die "script: $!";
while (my $line = <$fh>) {
    chomp $line;
    my ($op, $a, $b) = split / /, $line, 3;
    if ($op eq "wait") { select(undef, undef, undef, 0.02) until -e $a; next; }
    if ($op eq "touch") { open(my $t, ">", $a) or die; close $t; next; }
    my $d = defined $b ? pack("H*", $b) : "";
    print $s pack("N", length($d) + 1) . $a . $d;
    if ($a =~ /^[DAQ]$/ || (exists $nr{$a} && ($proto & $nr{$a}))) {
        print "$a -\n";
        next;
    }
    while (1) {
        my $len = unpack("N", readn(4));
        my $all = readn($len);
        my ($rc, $rd) = (substr($all, 0, 1), substr($all, 1));
        print "$a $rc " . unpack("H*", $rd) . "\n";
        $proto = unpack("N", substr($rd, 8, 4)) if $a eq "O" && $rc eq "O" && length($rd) >= 12;
        last if $a ne "E" || $rc =~ /^[cartdy]$/;
    }
}
print "DONE\n";
