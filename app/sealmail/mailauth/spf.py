"""SPF (RFC 7208) through pyspf, with its DNS questions sent to our resolver.

pyspf looks names up through one module-level function; it is left as it is, and our subclass of
its ``query`` asks the resolver of the check in progress instead (each check has its own query, so
concurrent checks with different resolvers never mix).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import spf as pyspf

from sealmail.mailauth.dnsview import DnsTempError, DnsView


class _Query(pyspf.query):  # type: ignore[misc]  # pyspf has no type information: its classes are Any
    """pyspf's ``query`` asking its DNS questions of a ``DnsView``.

    pyspf sends every question through one method, ``dns``, which calls a module-level function;
    this override answers from the view instead, keeping what pyspf's ``dns`` does around the
    lookup (its answer cache, the time limit, the void-lookup limit of RFC 7208 §4.6.4). The view
    follows CNAMEs itself, so pyspf's CNAME handling has nothing to do. The pyspf method replaced
    is pinned in ``tests/mailauth/test_dkimpy_pins.py``.
    """

    def __init__(self, view: DnsView, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view = view

    def dns(self, name: str, qtype: str, cnames: Any = None, ignore_void: bool = False) -> list[Any]:
        if not name:
            raise Exception("Invalid query")  # pyspf's own: caught as a permerror
        name = str(name).removesuffix(".")
        if not all(0 < len(label) < 64 for label in name.split(".")):
            return []  # not a valid DNS name: no answer, as pyspf
        name = name.lower()
        result: list[Any] = self.cache.get((name, qtype), [])
        if result:
            return result
        if self.querytime < 0:
            raise pyspf.TempError("DNS Error: exceeded max query lookup time")
        began = time.time()
        result = _lookup(self.view, name, qtype)
        if result:
            self.cache[(name, qtype)] = result
        if self.querytime > 0:
            self.querytime -= time.time() - began
        if not result and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > pyspf.MAX_VOID_LOOKUPS:
                raise pyspf.PermError(f"Void lookup limit of {pyspf.MAX_VOID_LOOKUPS} exceeded")
        return result


def _lookup(view: DnsView, name: str, qtype: str) -> list[Any]:
    try:
        values = view.records(name, "TXT" if qtype == "SPF" else qtype)
    except DnsTempError as exc:
        raise pyspf.TempError(f"DNS {exc}") from None
    if qtype == "SPF":
        return []  # the SPF RR type is obsolete (RFC 7208 §3.1); pyspf asks for it, we answer nothing
    return values


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
    try:
        # What pyspf.check2 does, with our query: RFC 7208 §4.6.4's 20 s for the whole check.
        query = _Query(view, i=ip, s=sender, h=helo, timeout=pyspf.MAX_PER_LOOKUP_TIME, querytime=20)
        result, _code, explanation = query.check()
    except Exception as exc:  # a bug in a record must not stop delivery
        result, explanation = "permerror", str(exc)
    return SpfResult(result or "none", explanation or "", identity, sender.rsplit("@", 1)[-1].lower())
