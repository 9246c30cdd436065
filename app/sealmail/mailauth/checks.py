"""DKIM (every signature), ARC, DMARC, and the Authentication-Results header (RFC 8601).

All functions are synchronous and pure over a ``DnsView``; the MX runs them in a worker thread.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import getaddresses

import dkim
from publicsuffixlist import PublicSuffixList

from sealmail.mailauth import spf as spfcheck
from sealmail.mailauth.dkimsigner import Arc, Dkim
from sealmail.mailauth.dnsview import DnsTempError, DnsView, txt
from sealmail.mime.headers import top_fields, top_values, unfold

_PSL = PublicSuffixList()  # the list shipped in the package: no network fetch, ever
_TOKEN = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~@]+$")


# ---- DKIM ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DkimResult:
    result: str  # pass, fail, neutral, temperror, permerror
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    b: str = ""  # the first characters of the signature, to tell several apart (RFC 6008)


def _tags(value: bytes) -> dict[str, str]:
    text = re.sub(rb"\s+", b"", value).decode("ascii", "replace")
    out = {}
    for part in text.split(";"):
        if "=" in part:
            key, _, val = part.partition("=")
            out[key] = val
    return out


def _header_values(message: bytes, name: bytes) -> list[bytes]:
    return top_values(message, name.decode())


def dns_function(view: DnsView) -> Callable[..., bytes]:
    """dkimpy's ``dnsfunc``: TXT at a name as one byte string."""

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        records = txt(view, name.decode("ascii", "replace").rstrip("."))
        return records[0].encode() if records else b""

    return lookup


def check_dkim(view: DnsView, message: bytes) -> list[DkimResult]:
    """Verify each DKIM-Signature (RFC 6376 §6.1), RSA and Ed25519 (RFC 8463)."""
    signatures = _header_values(message, b"dkim-signature")
    results = []
    lookup = dns_function(view)
    verifier: Dkim | None = None  # the message is parsed once for all its signatures
    for index, value in enumerate(signatures):
        tags = _tags(value)
        common = {
            "domain": tags.get("d", "").lower(),
            "selector": tags.get("s", ""),
            "algorithm": tags.get("a", ""),
            "b": tags.get("b", "")[:8],
        }
        try:
            verifier = verifier or Dkim(message)
            ok = verifier.verify(idx=index, dnsfunc=lookup)
            results.append(DkimResult("pass" if ok else "fail", **common))
        except DnsTempError:
            results.append(DkimResult("temperror", **common))
        except dkim.ValidationError as exc:
            # A changed body is a failed signature; a signature that cannot be processed is a permerror.
            verdict = "fail" if "body hash mismatch" in str(exc) else "permerror"
            results.append(DkimResult(verdict, **common))
        except dkim.KeyFormatError:
            results.append(DkimResult("permerror", **common))  # no (usable) public key: RFC 6376 §6.1.2
        except Exception:  # malformed signatures and keys: a failure of this signature only
            results.append(DkimResult("fail", **common))
    return results


# ---- ARC -------------------------------------------------------------------------------------------


def check_arc(view: DnsView, message: bytes) -> str:
    """The chain validation status cv= (RFC 8617 §5.2): none, pass or fail."""
    if not _header_values(message, b"arc-seal"):
        return "none"
    try:
        cv, _results, _comment = Arc(message).verify(dnsfunc=dns_function(view))
    except DnsTempError:
        return "temperror"
    except Exception:
        return "fail"
    return cv.decode() if isinstance(cv, bytes) else str(cv)


# ---- DMARC -----------------------------------------------------------------------------------------


def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label (the domain itself when it is a suffix)."""
    return _PSL.privatesuffix(domain.lower().rstrip(".")) or domain.lower().rstrip(".")


def _aligned(identifier: str, from_domain: str, mode: str) -> bool:
    identifier, from_domain = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    if mode == "s":
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


@dataclass(frozen=True, slots=True)
class DmarcResult:
    result: str  # none, pass, fail, temperror, permerror
    from_domain: str = ""
    policy: str | None = None  # p (or sp) of the record that applied
    disposition: str = "none"  # what to do: none, quarantine, reject (after pct sampling)


def _dmarc_record(view: DnsView, domain: str) -> dict[str, str] | None:
    records = [r for r in txt(view, f"_dmarc.{domain}") if r.strip().lower().startswith("v=dmarc1")]
    if len(records) != 1:
        return None  # none, or several (RFC 7489 §6.6.3: treat as none)
    tags = {}
    for part in records[0].split(";"):
        if "=" in part:
            key, _, value = part.partition("=")
            tags[key.strip().lower()] = value.strip()
    return tags


def from_domains(message: bytes) -> list[str]:
    """The domains of the RFC5322.From addresses (RFC 7489 §6.6.1)."""
    values = [v.decode("utf-8", "replace") for v in _header_values(message, b"from")]
    found = []
    for _, address in getaddresses(values):
        if "@" in address:
            domain = address.rsplit("@", 1)[1].lower().rstrip(">").strip()
            with contextlib.suppress(UnicodeError):
                domain = domain.encode("idna").decode("ascii")
            found.append(domain)
    return found


def check_dmarc(  # noqa: PLR0911 - one return per outcome of RFC 7489 §6.6
    view: DnsView,
    message: bytes,
    spf: spfcheck.SpfResult,
    dkim_results: list[DkimResult],
    *,
    rng: random.Random | None = None,
) -> DmarcResult:
    domains = from_domains(message)
    if not domains:
        return DmarcResult("none")
    if len(set(domains)) != 1:
        # Several From domains cannot all be evaluated against one policy (RFC 7489 §6.6.1).
        return DmarcResult("permerror", domains[0])
    domain = domains[0]
    try:
        record = _dmarc_record(view, domain)
        record_domain = domain
        org = organizational_domain(domain)
        if record is None and org != domain:
            record, record_domain = _dmarc_record(view, org), org
    except DnsTempError:
        return DmarcResult("temperror", domain)
    if record is None:
        return DmarcResult("none", domain)
    policy = record.get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        # RFC 7489 §6.6.3: a record whose p is invalid applies as p=none if it has a valid rua.
        if "rua" not in record:
            return DmarcResult("none", domain)
        policy = "none"
    if record_domain != domain and record.get("sp", "").lower() in ("none", "quarantine", "reject"):
        policy = record["sp"].lower()
    spf_aligned = (
        spf.result == "pass"
        and spf.identity == "mailfrom"
        and _aligned(spf.domain, domain, record.get("aspf", "r").lower())
    )
    dkim_aligned = any(
        r.result == "pass" and _aligned(r.domain, domain, record.get("adkim", "r").lower()) for r in dkim_results
    )
    if spf_aligned or dkim_aligned:
        return DmarcResult("pass", domain, policy, "none")
    disposition = policy
    try:
        pct = int(record.get("pct", "100"))
    except ValueError:
        pct = 100
    if policy != "none" and (rng or random).randrange(100) >= pct:  # pct sampling, not security
        disposition = {"reject": "quarantine", "quarantine": "none"}[policy]  # RFC 7489 §6.6.4
    return DmarcResult("fail", domain, policy, disposition)


# ---- the whole check and its header ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthResults:
    spf: spfcheck.SpfResult
    dkim: list[DkimResult] = field(default_factory=list)
    arc: str = "none"
    dmarc: DmarcResult = field(default_factory=lambda: DmarcResult("none"))

    def header(self, authserv_id: str) -> str:
        """One Authentication-Results field (RFC 8601 §2.2), name included, no line break."""
        parts = [authserv_id]
        prop = "smtp.mailfrom" if self.spf.identity == "mailfrom" else "smtp.helo"
        parts.append(f"spf={self.spf.result} {prop}={_pvalue(self.spf.domain)}")
        if self.dkim:
            for r in self.dkim:
                extra = f" header.d={_pvalue(r.domain)}" if r.domain else ""
                extra += f" header.s={_pvalue(r.selector)}" if r.selector else ""
                extra += f" header.a={_pvalue(r.algorithm)}" if r.algorithm else ""
                extra += f" header.b={_pvalue(r.b)}" if r.b else ""
                parts.append(f"dkim={r.result}{extra}")
        else:
            parts.append("dkim=none")
        dmarc = f"dmarc={self.dmarc.result}"
        if self.dmarc.policy:
            dmarc += f" (p={self.dmarc.policy} dis={self.dmarc.disposition})"
        if self.dmarc.from_domain:
            dmarc += f" header.from={_pvalue(self.dmarc.from_domain)}"
        parts.append(dmarc)
        parts.append(f"arc={self.arc}")
        return "Authentication-Results: " + ";\r\n\t".join(parts)


def _pvalue(value: str) -> str:
    if value and _TOKEN.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authenticate(view: DnsView, *, ip: str, helo: str, mail_from: str, message: bytes) -> AuthResults:
    spf = spfcheck.check(view, ip, mail_from, helo)
    dkim_results = check_dkim(view, message)
    arc = check_arc(view, message)
    dmarc = check_dmarc(view, message, spf, dkim_results)
    return AuthResults(spf, dkim_results, arc, dmarc)


# ---- forged results --------------------------------------------------------------------------------


def forged_results_cut(message: bytes, authserv_id: str) -> tuple[bytes, int] | None:
    """Incoming Authentication-Results fields that claim our authserv-id, cut out (RFC 8601 §5).

    Returns ``(start, resume)``: the message without them is ``start + message[resume:]`` (they are
    all in the header, so ``start`` is short); None when there was none. No other byte changes.
    """
    ours = authserv_id.lower().encode()
    doomed = []
    for f in top_fields(message):
        if f.name.lower() != b"authentication-results":
            continue
        value = unfold(message[f.value_start : f.end])
        claimed = re.sub(rb"\([^)]*\)", b"", value).strip().split(b";", 1)[0].split()
        if claimed and claimed[0].lower() == ours:
            doomed.append((f.start, f.end))
    if not doomed:
        return None
    out, pos = bytearray(), 0
    for start, end in doomed:
        out += message[pos:start]
        pos = end
    return bytes(out), pos


def remove_forged_results(message: bytes, authserv_id: str) -> bytes | None:
    """The message without forged Authentication-Results (``forged_results_cut``), or None."""
    cut = forged_results_cut(message, authserv_id)
    if cut is None:
        return None
    start, resume = cut
    return start + message[resume:]
