"""SPF (RFC 7208) through pyspf, with its DNS questions sent to our resolver.

pyspf looks names up through one module-level function; it is replaced once by one that asks the
resolver of the check in progress (a context variable, so concurrent checks with different
resolvers never mix).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

import spf as pyspf

from sealmail.mailauth.dnsview import DnsTempError, DnsView

_current: contextvars.ContextVar[DnsView] = contextvars.ContextVar("sealmail_spf_dns")


def _lookup(name: str, qtype: str, strict: Any = True, timeout: Any = 30) -> list[tuple[tuple[str, str], Any]]:
    view = _current.get()
    try:
        values = view.records(name, "TXT" if qtype == "SPF" else qtype)
    except DnsTempError as exc:
        raise pyspf.TempError(f"DNS {exc}") from None
    if qtype == "SPF":
        return []  # the SPF RR type is obsolete (RFC 7208 §3.1); pyspf asks for it, we answer nothing
    return [((name, qtype), value) for value in values]


pyspf.DNSLookup = _lookup


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: str  # none, neutral, pass, fail, softfail, temperror, permerror
    explanation: str
    identity: str  # "mailfrom" or "helo"
    domain: str


def check(view: DnsView, ip: str, mail_from: str, helo: str) -> SpfResult:
    """RFC 7208 §2.4: check MAIL FROM, or the HELO identity when the reverse path is null."""
    sender = mail_from.strip("<>")
    identity = "mailfrom" if sender else "helo"
    if not sender:
        sender = f"postmaster@{helo}"
    token = _current.set(view)
    try:
        result, explanation = pyspf.check2(i=ip, s=sender, h=helo, querytime=20)
    except Exception as exc:  # a bug in a record must not stop delivery
        result, explanation = "permerror", str(exc)
    finally:
        _current.reset(token)
    return SpfResult(result or "none", explanation or "", identity, sender.rsplit("@", 1)[-1].lower())
