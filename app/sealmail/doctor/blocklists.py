"""The DNS blocklists the deliverability checks ask, and what each one's answers mean.

A list is asked ``<reversed address>.<zone>`` type A (RFC 5782 §2.1: the IPv4 octets reversed;
§2.4: IPv6 as 32 reversed nibbles) — only lists that publish IPv6 entries are asked about IPv6.
No such name means not listed. An answer is read against the list's own documented codes:

- a listing code: listed, with what that code means (Spamhaus' SBL is not its PBL);
- a refusal code (Spamhaus' ``127.255.255.252/254/255``): the list did not answer this resolver
  (a query through a public resolver, too many queries): not a listing, a reason to use a
  resolver of one's own;
- anything else: an unexpected answer (an undocumented code, or a resolver that makes up answers
  for names that do not exist), reported as a warning, never as a listing.

Codes as each list documents them (2026). Lists that need an account or a key are not here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Blocklist:
    name: str
    zone: str
    ipv6: bool  # whether the list publishes IPv6 entries (RFC 5782 §2.4)
    listed: Mapping[str, str]  # answer -> what the listing means
    refused: Mapping[str, str]  # answers that refuse the query instead of answering it
    removal: str  # where its listings are looked up and removal is asked


_SPAMHAUS_REFUSED = {
    "127.255.255.252": "query refused (Spamhaus: a typing error in the list's name)",
    "127.255.255.254": "query refused: asked through a public or open resolver (8.8.8.8, 1.1.1.1 and the like)",
    "127.255.255.255": "query refused: too many queries from this resolver (rate limited)",
}

BLOCKLISTS: tuple[Blocklist, ...] = (
    Blocklist(
        "Spamhaus ZEN",
        "zen.spamhaus.org",
        True,
        {
            "127.0.0.2": "SBL: a known source of spam",
            "127.0.0.3": "SBL CSS: an address sending low-reputation (snowshoe) mail",
            "127.0.0.4": "XBL: an infected or exploited machine",
            "127.0.0.5": "XBL: an infected or exploited machine",
            "127.0.0.6": "XBL: an infected or exploited machine",
            "127.0.0.7": "XBL: an infected or exploited machine",
            "127.0.0.9": "SBL DROP: a hijacked or criminal network",
            "127.0.0.10": "PBL: its ISP says this end-user range should not send mail directly",
            "127.0.0.11": "PBL: an end-user range (Spamhaus' estimate) that should not send mail directly",
        },
        _SPAMHAUS_REFUSED,
        "https://check.spamhaus.org/",
    ),
    Blocklist(
        "Barracuda",
        "b.barracudacentral.org",
        False,
        {"127.0.0.2": "listed: mail from this address reached Barracuda's traps or has a poor reputation"},
        {},
        "https://www.barracudacentral.org/rbl/removal-request",
    ),
    Blocklist(
        "SpamCop",
        "bl.spamcop.net",
        False,
        {"127.0.0.2": "listed: reported as a spam source (listings end 24 hours after the reports stop)"},
        {},
        "https://www.spamcop.net/bl.shtml",
    ),
    Blocklist(
        "UCEPROTECT level 1",
        "dnsbl-1.uceprotect.net",
        False,
        {"127.0.0.2": "listed: this address sent mail to UCEPROTECT's traps (expires 7 days after the last)"},
        {},
        "https://www.uceprotect.net/en/rblcheck.php",
    ),
    Blocklist(
        "PSBL",
        "psbl.surriel.com",
        False,
        {"127.0.0.2": "listed: this address sent mail to the PSBL's spam traps"},
        {},
        "https://psbl.org/",
    ),
    Blocklist(
        "SpamRATS",
        "all.spamrats.com",
        False,
        {
            "127.0.0.36": "RATS-Dyna: an address in a dynamic or residential range",
            "127.0.0.37": "RATS-NoPtr: an address without reverse DNS (PTR)",
            "127.0.0.38": "RATS-Spam: an address seen sending spam or probing mail servers",
        },
        {},
        "https://www.spamrats.com/lookup.php",
    ),
)

Outcome = Literal["clean", "listed", "refused", "unexpected"]


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    codes: tuple[tuple[str, str], ...] = ()  # (answer, what it means) for each answer read


def query_name(blocklist: Blocklist, address: str) -> str | None:
    """The name to ask (RFC 5782 §2.1, §2.4); None when the list has no IPv6 entries."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and not blocklist.ipv6:
        return None
    suffix = ".in-addr.arpa" if ip.version == 4 else ".ip6.arpa"
    return f"{ip.reverse_pointer.removesuffix(suffix)}.{blocklist.zone}"


def judge(blocklist: Blocklist, answers: list[str]) -> Verdict:
    """What a list's A answers for an address mean. A refusal or an unexpected answer is never a
    listing, even beside one (a resolver that invents answers is not evidence)."""
    if not answers:
        return Verdict("clean")
    listed = [(a, blocklist.listed[a]) for a in answers if a in blocklist.listed]
    refused = [(a, blocklist.refused[a]) for a in answers if a in blocklist.refused]
    known = {*blocklist.listed, *blocklist.refused}
    other = [(a, "not a code this list documents") for a in answers if a not in known]
    if refused:
        return Verdict("refused", tuple(refused))
    if other:
        return Verdict("unexpected", tuple(other + listed))
    return Verdict("listed", tuple(listed))
