"""The Sender Rewriting Scheme, so forwarded mail passes SPF at its destination.

A forwarded copy leaves with an envelope sender in the forwarding domain that encodes the
original one, authenticated by an HMAC and dated (days, modulo 1024), e.g.

    alice@a.example -> SRS0=HHHH=TT=a.example=alice@forwarder.example

Bounces to that address come back to us; ``reverse`` checks the hash and the age and gives the
original address back, so forged bounces (backscatter) are refused. An address that is already
SRS0 becomes SRS1 (it keeps the first forwarder, so the chain does not grow). No maintained Python
library implements this today; it is small and fully tested here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from sealmail.errors import InvalidInput

_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_DAY = 86400


class InvalidSrs(InvalidInput):
    """Not an SRS address we made, or one past its age."""


class Srs:
    def __init__(self, secret: bytes, max_age_days: int = 21) -> None:
        self.secret = secret
        self.max_age_days = max_age_days

    def _hash(self, *parts: str) -> str:
        digest = hmac.new(self.secret, "".join(parts).lower().encode("utf-8"), hashlib.sha1).digest()
        return base64.b64encode(digest).decode()[:4]

    @staticmethod
    def _timestamp(now: float | None = None) -> str:
        day = int((now if now is not None else time.time()) // _DAY) % 1024
        return _BASE32[day >> 5] + _BASE32[day & 31]

    def _age_days(self, stamp: str, now: float | None = None) -> int:
        if len(stamp) != 2 or any(c not in _BASE32 for c in stamp.upper()):  # the stamp survives lower-casing
            raise InvalidSrs("bad SRS timestamp")
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
        upper = local.upper()
        if upper.startswith(("SRS0=", "SRS0+", "SRS0-")):
            # SRS1=HHHH=first-forwarder==<the SRS0 address without its prefix>
            rest = local[5:]
            hashed = self._hash(domain, rest)
            return f"SRS1={hashed}={domain}=={rest}@{forwarder_domain}"
        if upper.startswith(("SRS1=", "SRS1+", "SRS1-")):
            _hash, first, rest = _split_srs1(local)
            hashed = self._hash(first, rest)
            return f"SRS1={hashed}={first}=={rest}@{forwarder_domain}"
        stamp = self._timestamp(now)
        hashed = self._hash(stamp, domain, local)
        return f"SRS0={hashed}={stamp}={domain}={local}@{forwarder_domain}"

    def reverse(self, address: str, now: float | None = None) -> str:
        """Where a bounce to one of our SRS addresses goes; raises InvalidSrs."""
        local = address.rpartition("@")[0]
        upper = local.upper()
        if upper.startswith("SRS0="):
            fields = local[5:].split("=", 3)
            if len(fields) != 4:
                raise InvalidSrs("malformed SRS0 address")
            hashed, stamp, domain, original = fields
            # Case-insensitive: some servers lower-case local parts on the way back (as libsrs2 allows).
            if not hmac.compare_digest(hashed.lower().encode(), self._hash(stamp, domain, original).lower().encode()):
                raise InvalidSrs("SRS hash does not match")
            if self._age_days(stamp, now) > self.max_age_days:
                raise InvalidSrs("SRS address has expired")
            return f"{original}@{domain}"
        if upper.startswith("SRS1="):
            hashed, first, rest = _split_srs1(local)
            if not hmac.compare_digest(hashed.lower().encode(), self._hash(first, rest).lower().encode()):
                raise InvalidSrs("SRS hash does not match")
            return f"SRS0{rest}@{first}" if rest[:1] in "=+-" else f"SRS0={rest}@{first}"
        raise InvalidSrs("not an SRS address")


def _split_srs1(local: str) -> tuple[str, str, str]:
    body = local[5:]
    hashed, sep, rest = body.partition("=")
    first, sep2, tail = rest.partition("==")
    if not sep or not sep2:
        raise InvalidSrs("malformed SRS1 address")
    return hashed, first, tail


def is_srs(local_part: str) -> bool:
    return local_part.upper().startswith(("SRS0=", "SRS1="))
