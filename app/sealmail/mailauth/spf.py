"""SPF (RFC 7208) through pyspf, with its DNS questions sent to our resolver.

pyspf looks names up through one module-level function; it is left as it is, and our subclass of
its ``query`` asks the resolver of the check in progress instead (each check has its own query, so
concurrent checks with different resolvers never mix).

``check`` is the MX's verdict on a sender. ``count_lookups`` is what pyspf does not offer: how many
DNS-querying terms a domain's record needs at most, its includes and redirects followed (RFC 7208
§4.6.4 allows 10), for the deliverability checks of a domain's own record.
"""

from __future__ import annotations

import re
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


def check(view: DnsView, ip: str, mail_from: str, helo: str, *, querytime: float = 20) -> SpfResult:
    """RFC 7208 §2.4: check MAIL FROM, or the HELO identity when the reverse path is null.
    ``querytime``: seconds for the whole check (RFC 7208 §4.6.4 suggests at least 20)."""
    sender = mail_from.strip("<>")
    identity = "mailfrom" if sender else "helo"
    if not sender:
        sender = f"postmaster@{helo}"
    try:
        # What pyspf.check2 does, with our query: RFC 7208 §4.6.4's 20 s for the whole check.
        query = _Query(view, i=ip, s=sender, h=helo, timeout=pyspf.MAX_PER_LOOKUP_TIME, querytime=querytime)
        result, _code, explanation = query.check()
    except Exception as exc:  # a bug in a record must not stop delivery
        result, explanation = "permerror", str(exc)
    return SpfResult(result or "none", explanation or "", identity, sender.rsplit("@", 1)[-1].lower())


# RFC 7208 §4.6.4: the terms that cost a DNS query (and count against the limit of 10).
_QUERYING = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
_TERM = re.compile(r"^[+?~-]?([a-z][a-z0-9_.-]*)(?:[:=/](.*))?$", re.IGNORECASE)
_MAX_DEPTH = 10  # pyspf's MAX_RECURSION is 20; the lookup limit ends any real chain long before


@dataclass(frozen=True, slots=True)
class SpfLookups:
    record: str | None  # the domain's own v=spf1 record; None: it has none
    count: int  # DNS-querying terms in it and in every record it includes or redirects to
    unfollowed: tuple[str, ...]  # include/redirect targets that could not be followed (macros, no record)


def count_lookups(view: DnsView, domain: str, *, querytime: float = 20) -> SpfLookups:
    """The most DNS lookups an evaluation of ``domain``'s record can need (RFC 7208 §4.6.4): each
    include, a, mx, ptr, exists and redirect, in the record and in the records of its includes and
    redirects (a record reached twice counts twice, as an evaluation asks twice; a loop is followed
    once). A receiver evaluates until a term matches; this counts every term: what a sender whose
    address matches late costs.

    Raises ``pyspf.TempError`` when DNS did not answer and ``pyspf.PermError`` for a domain with
    two records (RFC 7208 §4.5)."""
    query = _Query(view, i="192.0.2.1", s=f"postmaster@{domain}", h=domain, querytime=querytime)
    unfollowed: list[str] = []

    def walk(name: str, path: frozenset[str]) -> tuple[str | None, int]:
        record = query.dns_spf(name)
        if record is None or len(path) > _MAX_DEPTH:
            return None, 0
        count = 0
        for term in str(record).split()[1:]:
            match = _TERM.match(term)
            if match is None or match[1].lower() not in _QUERYING:
                continue
            count += 1
            kind, target = match[1].lower(), (match[2] or "").lower()
            if kind not in ("include", "redirect"):
                continue
            if "%" in target or not target:
                unfollowed.append(target or kind)  # a macro names a different domain per sender
            elif target not in path:  # a record including itself (directly or not) is followed once
                found, inner = walk(target, path | {target})
                if found is None:
                    unfollowed.append(target)
                count += inner
        return str(record), count

    record, count = walk(domain.lower(), frozenset({domain.lower()}))
    return SpfLookups(record, count, tuple(unfollowed))
