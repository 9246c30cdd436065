#!/usr/bin/perl
# An independent DKIM/ARC verifier for the tests: Debian's Mail::DKIM (libmail-dkim-perl; Ed25519
# through CryptX, libcryptx-perl). Reads one message on stdin, looks keys up at the DNS server given
# as HOST:PORT (the test's dnsmasq), prints one line per DKIM signature and, with --arc, one for the
# ARC chain:
#   dkim <algorithm> <d=> <s=> <result> <detail>
#   arc <result> <detail>
# Usage: perl tests/dkimverify.pl 127.0.0.1:5353 [--arc] < message
use strict;
use warnings;
use Mail::DKIM 1.20200824;
use Mail::DKIM::Verifier;
use Mail::DKIM::ARC::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

my ( $server, @flags ) = @ARGV;
die "usage: $0 HOST:PORT [--arc] < message\n" unless defined $server && $server =~ /^([^:]+):(\d+)$/;
my $resolver = Net::DNS::Resolver->new(
    nameservers => [$1],
    port        => $2,
    recurse     => 1,
    retry       => 2,
    tcp_timeout => 5,
    udp_timeout => 5,
);
Mail::DKIM::DNS::resolver($resolver);

binmode STDIN;
local $/;
my $message = <STDIN>;

my $dkim = Mail::DKIM::Verifier->new();
$dkim->PRINT($message);
$dkim->CLOSE();
for my $signature ( $dkim->signatures ) {
    next unless $signature->isa('Mail::DKIM::Signature');    # DKIM-Signature, not DomainKey
    printf "dkim %s %s %s %s %s\n", $signature->algorithm, $signature->domain, $signature->selector,
      $signature->result, ( $signature->result_detail // '' );
}

if ( grep { $_ eq '--arc' } @flags ) {
    my $arc = Mail::DKIM::ARC::Verifier->new( Strict => 1 );
    $arc->PRINT($message);
    $arc->CLOSE();
    printf "arc %s %s\n", $arc->result, ( $arc->result_detail // '' );
}
