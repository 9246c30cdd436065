"""DKIM signing of outgoing mail with the domain's RSA-2048 and Ed25519 keys (RFC 6376, RFC 8463).

Two signatures per message: receivers that know Ed25519 check the small one, the rest the RSA one.
dkimpy's RSA is pure Python (~11 ms a signature); ``mailauth.dkimsigner`` has OpenSSL compute the
same signature (~1 ms). Callers still run ``sign`` off the event loop.

Fields holding a vertical tab or form feed are left out of the signature (From excepted, which
RFC 6376 §5.4 requires): verifiers disagree about them at a value's ends. RFC 6376 §3.4.2 keeps
them (we canonicalize so, ``mailauth.dkimcanon``); OpenDKIM 2.11 deletes them at both ends;
Mail::DKIM deletes them after the colon but keeps them at the end; and OpenDKIM's milter interface
loses one at the start even under simple canonicalization. No signature over such a field passes
everywhere, so none is made; the rest of the message stays signed. The message must already have
CRLF line endings (``smtp.lineends``), as it will be sent.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from sealmail.mailauth import dkimsigner
from sealmail.mime.headers import top_fields
from sealmail.services.dkim import DkimKey, domain_keys

if TYPE_CHECKING:
    from sealmail.settings import Settings

# RFC 6376 §5.4.1 recommends these; signing absent ones too (oversigning) blocks later additions.
SIGNED_HEADERS = [
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"list-unsubscribe",
]


def _private_key(key: DkimKey) -> bytes:
    if key.algorithm == "rsa":
        return key.private_pem()
    loaded = serialization.load_pem_private_key(key.private_pem(), password=None)
    raw = loaded.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw)  # dkimpy takes the RFC 8463 seed, base64


def unambiguous(message: bytes, names: list[bytes]) -> list[bytes]:
    """``names`` without those of fields that hold VT or FF (``from`` always kept)."""
    ambiguous = set()
    for f in top_fields(message):
        field = message[f.start : f.end]
        if b"\x0b" in field or b"\x0c" in field:
            ambiguous.add(f.name.lower())
    return [name for name in names if name == b"from" or name not in ambiguous]


def sign(settings: Settings, domain: str, message: bytes) -> bytes:
    """The message with DKIM-Signature headers prepended (none when the domain has no keys)."""
    headers = b""
    present = {f.name.lower() for f in top_fields(message)}
    include = unambiguous(message, [h for h in SIGNED_HEADERS if h in present] + [b"from"])
    for key in domain_keys(settings, domain):
        if not key.path.exists():
            continue
        algorithm = b"rsa-sha256" if key.algorithm == "rsa" else b"ed25519-sha256"
        headers += dkimsigner.sign(
            message,
            key.selector.encode(),
            key.domain.encode(),
            _private_key(key),
            include_headers=include,
            signature_algorithm=algorithm,
            canonicalize=(b"relaxed", b"relaxed"),
        )
    return headers + message
