"""Redirect loops (RFC 5228 §4.2: an implementation takes measures against them, e.g. a header field).

Every copy a Sieve ``redirect`` sends carries ``Sealmail-Redirected: <token>``, the token an HMAC of
the alias's id (no address in clear). A message that comes back to the same alias with its token --
out through other servers and back, or redirected between our own aliases -- is not redirected
again: the loop ends with a keep, and the log says so. The header field travels with the message,
so the check needs no memory and holds across every MX host (they share the key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from sealmail.mime.headers import top_values

FIELD = "Sealmail-Redirected"


def token(key: bytes, alias_id: str) -> str:
    digest = hmac.new(key, alias_id.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower()


def field(key: bytes, alias_id: str) -> bytes:
    """The header field to put before a redirected copy."""
    return f"{FIELD}: {token(key, alias_id)}\r\n".encode("ascii")


def looped(head: bytes, key: bytes, alias_id: str) -> bool:
    """Whether the message (its header, ``head``) went out through this alias's redirect before."""
    mine = token(key, alias_id).encode("ascii")
    return any(value.strip().lower() == mine for value in top_values(head, FIELD))
