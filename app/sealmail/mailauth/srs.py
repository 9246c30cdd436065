"""The Sender Rewriting Scheme, so forwarded mail passes SPF at its destination.

A forwarded copy leaves with an envelope sender in the forwarding domain that encodes the
original one, authenticated by an HMAC and dated (days, modulo 1024), e.g.

    alice@a.example -> SRS0=HHHHHHHHHH=TT=a.example=alice@forwarder.example

Bounces to that address come back to us; ``reverse`` checks the hash and the age and gives the
original address back, so forged bounces (backscatter) are refused. An address that is already
SRS0 becomes SRS1 (it keeps the first forwarder, so the chain does not grow):

    SRS0=xxxx=TT=a.example=alice@first.example -> SRS1=HHHHHHHHHHTT=first.example==xxxx=TT=a.example=alice@us

Hashes: the first 10 base32 characters (50 bits) of an HMAC-SHA256 over the fields, with a
type tag and separators (so SRS0 and SRS1 hashes, or shifted fields, never stand for each other).
Base32 survives the lower-casing of local parts that some servers apply on the way back, so
the check is case-insensitive with no loss. libsrs2's 4-character base64 hash, compared
case-insensitively, had about 2^22 values: guessable online. At 50 bits, and with the MX
telling a good hash from a bad one only after DATA (one guess per transaction, see
``smtp.mx``), forging one is out of reach within an address's 21 days.

SRS1 is dated too: its own stamp rides at the end of its hash field (``HHHHHHHHHHTT``), so a
second forwarder that keeps the first forwarder's field as opaque text (libsrs2 does) still
works, and an SRS1 address of ours expires like an SRS0 one (libsrs2's SRS1 never expires).

Addresses of the earlier format (4-character hash) are refused: their stamp is chosen by
whoever writes the address, so accepting them for a transition period would keep the weak
hash forgeable for that long. Bounces of mail forwarded before the change are lost (at most
21 days' worth). No maintained Python library implements this today; it is small and fully
tested here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from sealmail.errors import InvalidInput

_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_DAY = 86400
HASH_LENGTH = 10  # base32 characters: 50 bits
_STAMP_LENGTH = 2


class InvalidSrs(InvalidInput):
    """Not an SRS address we made, or one past its age."""


@dataclass(frozen=True, slots=True)
class SrsAddress:
    """The fields of one of our SRS addresses, parsed but not yet checked (``Srs.check``)."""

    kind: str  # "SRS0" or "SRS1"
    hashed: str
    stamp: str
    fields: tuple[str, ...]  # SRS0: (domain, local); SRS1: (first forwarder, rest)

    def original(self) -> str:
        if self.kind == "SRS0":
            domain, local = self.fields
            return f"{local}@{domain}"
        first, rest = self.fields
        return f"SRS0{rest}@{first}" if rest[:1] in "=+-" else f"SRS0={rest}@{first}"


def _is_base32(text: str) -> bool:
    return all(c in _BASE32 for c in text.upper())


class Srs:
    def __init__(self, secret: bytes, max_age_days: int = 21) -> None:
        self.secret = secret
        self.max_age_days = max_age_days

    def _hash(self, kind: str, stamp: str, *fields: str) -> str:
        message = "\x00".join((kind, stamp.upper(), *(f.lower() for f in fields))).encode("utf-8")
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.b32encode(digest).decode()[:HASH_LENGTH]

    @staticmethod
    def _timestamp(now: float | None = None) -> str:
        day = int((now if now is not None else time.time()) // _DAY) % 1024
        return _BASE32[day >> 5] + _BASE32[day & 31]

    @staticmethod
    def _age_days(stamp: str, now: float | None = None) -> int:
        then = _BASE32.index(stamp[0].upper()) << 5 | _BASE32.index(stamp[1].upper())
        today = int((now if now is not None else time.time()) // _DAY) % 1024
        return (today - then) % 1024

    def forward(self, sender: str, forwarder_domain: str, now: float | None = None) -> str:
        """The envelope sender for a copy forwarded by ``forwarder_domain``. The null sender stays null."""
        if not sender or sender == "<>":
            return ""
        local, _, domain = sender.rpartition("@")
        if not local:
            return sender
        stamp = self._timestamp(now)
        upper = local.upper()
        if upper.startswith(("SRS0=", "SRS0+", "SRS0-")):
            # SRS1=HHHHHHHHHHTT=first-forwarder==<the SRS0 address without its prefix>
            rest = local[5:]
            return f"SRS1={self._hash('SRS1', stamp, domain, rest)}{stamp}={domain}=={rest}@{forwarder_domain}"
        if upper.startswith(("SRS1=", "SRS1+", "SRS1-")):
            _hash, first, rest = _split_srs1(local)
            return f"SRS1={self._hash('SRS1', stamp, first, rest)}{stamp}={first}=={rest}@{forwarder_domain}"
        return f"SRS0={self._hash('SRS0', stamp, domain, local)}={stamp}={domain}={local}@{forwarder_domain}"

    @staticmethod
    def parse(address: str) -> SrsAddress:
        """The fields of an address in our SRS format; raises InvalidSrs when it is not one.

        Only the form is checked (public knowledge): nothing here depends on the secret, so an
        answer based on it tells a sender nothing about which hashes are right.
        """
        local = address.strip().removeprefix("<").removesuffix(">").rpartition("@")[0]
        upper = local.upper()
        if upper.startswith("SRS0="):
            fields = local[5:].split("=", 3)
            if len(fields) != 4:
                raise InvalidSrs("malformed SRS0 address")
            hashed, stamp, domain, original = fields
        elif upper.startswith("SRS1="):
            field, domain, original = _split_srs1(local)
            hashed, stamp = field[:-_STAMP_LENGTH], field[-_STAMP_LENGTH:]
        else:
            raise InvalidSrs("not an SRS address")
        if len(hashed) != HASH_LENGTH or len(stamp) != _STAMP_LENGTH or not _is_base32(hashed + stamp):
            raise InvalidSrs("malformed SRS address")
        if not domain or not original:
            raise InvalidSrs("malformed SRS address")
        return SrsAddress(upper[:4], hashed, stamp, (domain, original))

    def check(self, parsed: SrsAddress, now: float | None = None) -> str:
        """The original address, if ``parsed`` carries our hash and is not past its age; raises InvalidSrs."""
        # Case-insensitive: some servers lower-case local parts on the way back (base32 loses nothing).
        expected = self._hash(parsed.kind, parsed.stamp, *parsed.fields)
        if not hmac.compare_digest(parsed.hashed.upper().encode(), expected.encode()):
            raise InvalidSrs("SRS hash does not match")
        if self._age_days(parsed.stamp, now) > self.max_age_days:
            raise InvalidSrs("SRS address has expired")
        return parsed.original()

    def reverse(self, address: str, now: float | None = None) -> str:
        """Where a bounce to one of our SRS addresses goes; raises InvalidSrs."""
        return self.check(self.parse(address), now)


def _split_srs1(local: str) -> tuple[str, str, str]:
    body = local[5:]
    hashed, sep, rest = body.partition("=")
    first, sep2, tail = rest.partition("==")
    if not sep or not sep2:
        raise InvalidSrs("malformed SRS1 address")
    return hashed, first, tail


def is_srs(local_part: str) -> bool:
    return local_part.upper().startswith(("SRS0=", "SRS1="))
