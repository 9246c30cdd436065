"""Open-relay probes: recipient paths that try to get mail for a foreign domain through our MX.

One table, used by the MX and submission tests here (tests/smtp) and by the Molecule world
scenario against the deployed host (molecule/world/tests/test_world.py loads this file by path).

Hosted in both places: ``example.test``. Foreign: ``other.test``, ``a.test``, ``b.test``,
``sub.example.test`` and every address literal. ``demo@example.test`` is a mailbox in the tests'
MX; the world host has no such mailbox (its local probes are not sent there).

RFC 5321 §3.6.2 and §7.1: an MX accepts mail only for the domains it serves. A path that names a
foreign final destination in any spelling (percent hack, source route, quoted local part, address
literal, trailing dot, subdomain, bang path) must be refused: 550/553/554 with 5.7.1 or a 5.1.x
enhanced code (RFC 3463), never 250. A hosted address spelled differently (a trailing root dot,
a source route that ends at it: RFC 5321 Appendix C lets a server ignore the route) may be
accepted, but only if the message then lands in that hosted mailbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HOSTED = "example.test"
FOREIGN = "other.test"


@dataclass(frozen=True)
class Probe:
    id: str
    path: str  # the RCPT TO argument, angle brackets included
    local: str | None  # the hosted mailbox it may deliver to if accepted; None: foreign, must be refused
    mx: str  # what our MX answers (code and enhanced code), pinned so a change is noticed


PROBES = [
    Probe("foreign", "<user@other.test>", None, "550 5.7.1"),
    # The percent hack (RFC 1123 §5.2.16 let hosts route ``user%host@relay``; RFC 5321 §3.6.2 says no).
    Probe("percent-hack", "<user%other.test@example.test>", None, "550 5.1.1"),
    Probe("percent-hack-mailbox", "<demo%other.test@example.test>", None, "550 5.1.1"),
    Probe("percent-hack-double", "<user%other.test%example.test@example.test>", None, "550 5.1.1"),
    # Source routes (RFC 5321 §4.1.1.3, Appendix C): ignored; the final destination decides.
    Probe("source-route", "<@a.test,@b.test:user@other.test>", None, "550 5.7.1"),
    Probe("source-route-via-us", "<@example.test:user@other.test>", None, "550 5.7.1"),
    Probe("source-route-to-hosted", "<@other.test:demo@example.test>", "demo@example.test", "250 2.1.5"),
    # Quoted local parts hiding an @ or a space (RFC 5321 §4.1.2 Quoted-string).
    Probe("quoted-at", '<"user@other.test"@example.test>', None, "553 5.1.3"),
    Probe("quoted-percent", '<"user%other.test"@example.test>', None, "550 5.1.1"),  # quotes not needed: unquoted
    Probe("quoted-space-foreign", '<"a b"@other.test>', None, "553 5.1.3"),
    # Address literals (RFC 5321 §4.1.3): nobody's mailbox here, not even our own address.
    Probe("ipv4-literal", "<user@[192.0.2.1]>", None, "553 5.1.3"),
    Probe("ipv6-literal", "<user@[IPv6:2001:db8::1]>", None, "553 5.1.3"),
    Probe("own-ipv4-literal", "<demo@[127.0.0.1]>", "demo@example.test", "553 5.1.3"),
    # The root's trailing dot (RFC 1034 §3.1) names the same domain, but RFC 5321 §4.1.2 Domain has
    # none: malformed, hosted or not.
    Probe("trailing-dot-foreign", "<user@other.test.>", None, "553 5.1.3"),
    Probe("trailing-dot-hosted", "<demo@example.test.>", "demo@example.test", "553 5.1.3"),
    # A subdomain of a hosted domain is another domain.
    Probe("subdomain", "<user@sub.example.test>", None, "550 5.7.1"),
    Probe("hosted-as-label", "<user@example.test.other.test>", None, "550 5.7.1"),
    # UUCP bang paths (RFC 976): only a local part here.
    Probe("bang-path", "<other.test!user@example.test>", None, "550 5.1.1"),
    # Two @: the last one names the domain; either way it is not a hosted mailbox.
    Probe("double-at-hosted-last", "<user@other.test@example.test>", None, "553 5.1.3"),
    Probe("double-at-foreign-last", "<user@example.test@other.test>", None, "553 5.1.3"),
]

FOREIGN_PROBES = [p for p in PROBES if p.local is None]

_REFUSED = re.compile(r"^(550|553|554) (5\.7\.1|5\.1\.\d{1,3})(\s|$)")


def refused_as_relay(reply: str) -> bool:
    """A reply that refuses a foreign destination as RFC 5321 §3.6.2 asks (and not a 4xx: no retry)."""
    return _REFUSED.match(reply) is not None
