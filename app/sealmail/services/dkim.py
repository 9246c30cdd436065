"""DKIM signing keys per domain: one RSA-2048 and one Ed25519 (RFC 6376, RFC 8463).

Kept as ``<dkim dir>/<ascii domain>/{rsa,ed25519}.key`` (PKCS#8 PEM, mode 0640) — the layout the
deployment's dkim role uses, so keys it made and keys made here for domains added later are one
set. Made once and never replaced: a new key breaks every signature until DNS follows.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from sealmail.addresses import normalize_domain

if TYPE_CHECKING:
    from sealmail.settings import Settings

Algorithm = Literal["rsa", "ed25519"]


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str  # ASCII form
    algorithm: Algorithm
    selector: str
    path: Path

    def private_pem(self) -> bytes:
        return self.path.read_bytes()

    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def dns_value(self) -> str:
        """The TXT record value (RFC 6376 §3.6.1; RFC 8463 §4 for Ed25519: the raw 32-byte key)."""
        key = serialization.load_pem_private_key(self.private_pem(), password=None)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"


def domain_keys(settings: Settings, domain: str) -> list[DkimKey]:
    ascii_name = normalize_domain(domain).ascii
    base = settings.dkim_path / ascii_name
    return [
        DkimKey(ascii_name, "rsa", settings.dkim_selector_rsa, base / "rsa.key"),
        DkimKey(ascii_name, "ed25519", settings.dkim_selector_ed25519, base / "ed25519.key"),
    ]


def ensure_keys(settings: Settings, domain: str) -> list[DkimKey]:
    """The domain's keys, made now if missing (existing keys are never touched)."""
    found = domain_keys(settings, domain)
    for key in found:
        if key.path.exists():
            continue
        key.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        private = (
            rsa.generate_private_key(65537, 2048) if key.algorithm == "rsa" else ed25519.Ed25519PrivateKey.generate()
        )
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(key.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:  # made by someone else meanwhile: keep theirs
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
    return found
