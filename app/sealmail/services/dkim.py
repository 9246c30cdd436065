"""DKIM signing keys per domain: one RSA-2048 and one Ed25519 (RFC 6376, RFC 8463).

Kept as ``<dkim dir>/<ascii domain>/{rsa,ed25519}.key`` (PKCS#8 PEM, mode 0640) — the layout the
deployment's dkim role uses, so keys it made and keys made here for domains added later are one
set. Made once and never replaced: a new key breaks every signature until DNS follows.

With a config store, a domain's keys are also kept there (``ConfigStore.keep_dkim_key``: the first
stored stays), so every host sharing that config store signs with the same keys and gives the
same DNS records, whichever host added the domain — the web admin or the API on any front-end.
A host that lacks a key file takes the stored key (``fetch_keys``) before it signs or lists records.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from sealmail.addresses import normalize_domain
from sealmail.config.models import DkimKeyRecord, now

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.settings import Settings

log = logging.getLogger(__name__)

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


def _write_new(path: Path, pem: bytes) -> bool:
    """Write a key file that does not exist yet (False when another process made it meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    except FileExistsError:  # made by someone else meanwhile: keep theirs
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _new_pem(algorithm: Algorithm) -> bytes:
    private = rsa.generate_private_key(65537, 2048) if algorithm == "rsa" else ed25519.Ed25519PrivateKey.generate()
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_keys(settings: Settings, domain: str, store: ConfigStore | None = None) -> list[DkimKey]:
    """The domain's keys, made now if missing (existing keys are never touched).

    With ``store``: a key another host already stored is taken rather than made, and a key this
    host has (or makes) is stored for the others.
    """
    found = domain_keys(settings, domain)
    for key in found:
        stored = store.get_dkim_key(key.domain, key.algorithm) if store is not None else None
        if key.path.exists():
            pem = key.path.read_bytes()
        elif stored is not None:
            pem = stored.pem.encode()
            _write_new(key.path, pem)
        else:
            pem = _new_pem(key.algorithm)
            if not _write_new(key.path, pem):
                pem = key.path.read_bytes()
        if store is not None and stored is None:
            stored = store.keep_dkim_key(DkimKeyRecord(key.domain, key.algorithm, pem.decode(), now()))
        if stored is not None and stored.pem.encode() != key.path.read_bytes():
            log.warning(
                "DKIM %s key of %s on this host differs from the one the config store keeps: this host signs "
                "with its own, which DNS may not publish",
                key.algorithm,
                key.domain,
            )
    return found


def has_all_keys(settings: Settings, domain: str) -> bool:
    """Whether this host has every key file of the domain (then ``fetch_keys`` would ask nothing)."""
    return all(key.path.exists() for key in domain_keys(settings, domain))


def fetch_keys(settings: Settings, store: ConfigStore, domain: str) -> list[DkimKey]:
    """The domain's keys, with any key file this host lacks written from the config store."""
    found = domain_keys(settings, domain)
    for key in found:
        if not key.path.exists() and (stored := store.get_dkim_key(key.domain, key.algorithm)) is not None:
            _write_new(key.path, stored.pem.encode())
    return found


def share_keys(settings: Settings, store: ConfigStore) -> dict[str, int]:
    """Every hosted domain's keys on this host and in the config store: files this host lacks are
    written from the store, keys only this host has are stored (first stored stays). Returns
    how many key files were written here and how many keys were stored."""
    written = stored = 0
    kept = {(k.domain, k.algorithm): k for k in store.list_dkim_keys()}
    for domain in store.list_domains():
        for key in domain_keys(settings, domain.name):
            record = kept.get((key.domain, key.algorithm))
            if not key.path.exists() and record is not None:
                written += _write_new(key.path, record.pem.encode())
            elif key.path.exists() and record is None:
                store.keep_dkim_key(DkimKeyRecord(key.domain, key.algorithm, key.path.read_text(), now()))
                stored += 1
    return {"written": written, "stored": stored}
