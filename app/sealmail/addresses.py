"""Addresses: IDN domains, internationalised local parts (EAI) and alias names.

Pure functions, no storage. Every address that enters Sealmail goes through here once, so the
rest of the code compares canonical forms only:

* domains are kept in both forms, Unicode (U-labels) and ASCII (A-labels), computed with IDNA 2008
  and the UTS 46 mapping: ``universitéxyz.fr`` and ``xn--universitxyz-jeb.fr`` are one domain;
* local parts are NFC-normalised and ASCII letters are lower-cased (RFC 6531 allows UTF-8 local
  parts; we compare ASCII case-insensitively as every mainstream server does);
* alias names are a local part, ``*`` (catch-all) or ``/pattern/`` (regex, RE2 syntax, so a hostile
  pattern cannot make matching slower than linear).
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Literal

import idna
import re2

from sealmail.errors import InvalidInput

AliasKind = Literal["exact", "catchall", "regex"]

MAX_LOCAL_OCTETS = 64  # RFC 5321 §4.5.3.1.1
MAX_DOMAIN_OCTETS = 253  # RFC 1035 §2.3.4, less the root label
MAX_PATTERN_LENGTH = 256
_ATEXT_SPECIALS = set("!#$%&'*+-/=?^_`{|}~")


@dataclass(frozen=True, slots=True)
class DomainName:
    unicode: str
    ascii: str

    def __str__(self) -> str:
        return self.unicode


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A parsed ``local@domain`` with the local part normalised."""

    local: str
    domain: DomainName

    @property
    def text(self) -> str:
        return f"{self.local}@{self.domain.unicode}"

    @property
    def ascii_domain_text(self) -> str:
        """The form for an SMTP envelope to a server without SMTPUTF8 (the local part may still be UTF-8)."""
        return f"{self.local}@{self.domain.ascii}"

    @property
    def base_local(self) -> str:
        return split_plus(self.local)[0]


def normalize_domain(name: str) -> DomainName:
    """Validate a domain and return both of its forms; raise ``InvalidInput`` with the reason."""
    if not isinstance(name, str):
        raise InvalidInput("domain name must be text")
    return _normalize_domain(name)


@functools.lru_cache(maxsize=4096)
def _normalize_domain(name: str) -> DomainName:
    # IDNA processing is slow and the same few domains come back at every RCPT: results are kept
    # (errors are not: they raise, and lru_cache keeps only returns).
    text = name.strip()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise InvalidInput("domain name is empty")
    shown = name.strip()
    try:
        ascii_name = idna.encode(text, uts46=True, std3_rules=True, transitional=False).decode("ascii")
        unicode_name = idna.decode(ascii_name)
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidInput(f"invalid domain name {shown!r}: {_idna_reason(exc)}") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise InvalidInput(f"invalid domain name {shown!r}: a mail domain needs at least two labels")
    if len(ascii_name) > MAX_DOMAIN_OCTETS:
        raise InvalidInput(f"invalid domain name {shown!r}: longer than {MAX_DOMAIN_OCTETS} characters")
    if labels[-1].isdigit():
        raise InvalidInput(f"invalid domain name {shown!r}: an IP address is not a domain")
    return DomainName(unicode=unicode_name, ascii=ascii_name)


def _idna_reason(exc: Exception) -> str:
    text = str(exc) or exc.__class__.__name__
    return text[0].lower() + text[1:] if text else text


def normalize_local(local: str, *, fold_case: bool = True) -> str:
    """NFC-normalise, lower-case ASCII letters, and validate as a dot-atom (RFC 5322 §3.4.1, RFC 6532 §3.2).

    ``fold_case=False`` keeps the case: for other servers' addresses, whose local parts only their
    own server may interpret (RFC 5321 §2.4).
    """
    if not isinstance(local, str):
        raise InvalidInput("local part must be text")
    norm = unicodedata.normalize("NFC", local)
    if fold_case:
        norm = "".join(ch.lower() if ch.isascii() else ch for ch in norm)
    if not norm:
        raise InvalidInput("local part is empty")
    if norm.startswith('"'):
        raise InvalidInput(f"local part {local!r}: quoted local parts are not supported")
    if len(norm.encode("utf-8")) > MAX_LOCAL_OCTETS:
        raise InvalidInput(f"local part {local!r}: longer than {MAX_LOCAL_OCTETS} octets")
    if norm.startswith(".") or norm.endswith(".") or ".." in norm:
        raise InvalidInput(f"local part {local!r}: dots may not start, end or repeat")
    for ch in norm:
        if ch.isascii():
            if not (ch.isalnum() or ch in _ATEXT_SPECIALS or ch == "."):
                raise InvalidInput(f"local part {local!r}: character {ch!r} is not allowed")
        elif unicodedata.category(ch)[0] in "CZ":
            # Control, format, unassigned, private-use and space characters make look-alike addresses.
            raise InvalidInput(f"local part {local!r}: character U+{ord(ch):04X} is not allowed")
    return norm


def split_plus(local: str) -> tuple[str, str | None]:
    """``user+tag`` -> (``user``, ``tag``); plus-addressing delivers to the base alias."""
    base, sep, tag = local.partition("+")
    if not sep or not base:
        return local, None
    return base, tag


def split_address(address: str) -> tuple[str, str]:
    if not isinstance(address, str) or "@" not in address:
        raise InvalidInput(f"address {address!r}: expected local@domain")
    local, _, domain = address.strip().rpartition("@")
    if not local:
        raise InvalidInput(f"address {address!r}: local part is empty")
    return local, domain


def parse_mailbox(address: str, *, fold_case: bool = True) -> Mailbox:
    """Parse and normalise ``local@domain`` (angle brackets tolerated)."""
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    local, domain = split_address(text)
    return Mailbox(local=normalize_local(local, fold_case=fold_case), domain=normalize_domain(domain))


@dataclass(frozen=True, slots=True)
class AliasName:
    kind: AliasKind
    name: str  # the normalised local part, "*", or the "/pattern/flags" text
    domain: DomainName

    @property
    def text(self) -> str:
        return f"{self.name}@{self.domain.unicode}"


def parse_alias_address(address: str) -> AliasName:
    """Parse what a user types for an alias: ``user@d``, ``*@d`` or ``/regex/@d``."""
    local, domain_text = split_address(address)
    domain = normalize_domain(domain_text)
    if local == "*":
        return AliasName("catchall", "*", domain)
    if local.startswith("/"):
        compile_alias_pattern(local)  # refuse bad patterns at creation time
        return AliasName("regex", local, domain)
    return AliasName("exact", normalize_local(local), domain)


def compile_alias_pattern(text: str) -> re2._Regexp:
    """Compile ``/pattern/`` (optionally ``/pattern/i``) with RE2.

    Matching is always case-insensitive because local parts are. RE2 has no backreferences or
    look-around, and guarantees time linear in the input: a pattern it cannot compile is refused.
    """
    if len(text) > MAX_PATTERN_LENGTH:
        raise InvalidInput(f"regex alias longer than {MAX_PATTERN_LENGTH} characters")
    if len(text) < 3 or not text.startswith("/") or "/" not in text[1:]:
        raise InvalidInput(f"regex alias {text!r}: write it as /pattern/")
    body, _, flags = text[1:].rpartition("/")
    if not body:
        raise InvalidInput(f"regex alias {text!r}: the pattern is empty")
    if flags not in ("", "i"):
        raise InvalidInput(f"regex alias {text!r}: unknown flags {flags!r} (only 'i' is accepted)")
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = 1 << 20
    try:
        return re2.compile(body, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidInput(f"regex alias {text!r}: {reason} (RE2 syntax; no backreferences or look-around)") from None


def is_webhook(recipient: str) -> bool:
    return recipient.startswith(("http://", "https://"))
