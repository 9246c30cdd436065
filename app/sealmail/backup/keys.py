"""The operator backup key: X25519, sealed boxes (``crypto.sealed``) for the secrets in a backup,
and the manifest key derived from it (see ``manifest`` for why manifests carry a MAC).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealmail.backup.errors import BackupError
from sealmail.crypto.sealed import SealError, open_sealed, seal

_CONTEXT = b"sealmail backup v1:"
_MANIFEST_KEY_INFO = b"sealmail backup manifest key v1"


def new_key_pair() -> tuple[str, str]:
    """(private, public), both base64: the private one is shown once and never stored here."""
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw_private).decode(), base64.b64encode(raw_public).decode()


def _decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise BackupError(f"{what} is not a base64 X25519 key (32 bytes)")
    return raw


def public_key(text: str | None) -> bytes:
    if not text:
        raise BackupError("no operator backup key: run `sealmail backup init-key` and set SEALMAIL_BACKUP_PUBLIC_KEY")
    return _decode(text, "SEALMAIL_BACKUP_PUBLIC_KEY")


def derive_manifest_key(private: bytes) -> bytes:
    """The manifest MAC key: HKDF-SHA256 of the operator private key (one way: it reveals nothing
    of the private key). The host is given this key, never the private key; the restorer derives it
    again from the private key it is handed."""
    return HKDF(hashes.SHA256(), 32, salt=None, info=_MANIFEST_KEY_INFO).derive(private)


def manifest_key_text(private: bytes) -> str:
    return base64.b64encode(derive_manifest_key(private)).decode()


def manifest_key(text: str | None) -> bytes:
    """SEALMAIL_BACKUP_MANIFEST_KEY, decoded."""
    if not text:
        raise BackupError(
            "no manifest key: set SEALMAIL_BACKUP_MANIFEST_KEY (`sealmail backup init-key` prints it with the "
            "key pair; for an existing operator key, `sealmail backup manifest-key --key-file FILE`)"
        )
    return _decode(text, "SEALMAIL_BACKUP_MANIFEST_KEY")


def read_private_text(text: str) -> bytes:
    return _decode(text, "the operator private key")


def read_private_key(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise BackupError(f"cannot read the operator key file {path}: {exc.strerror}") from exc
    return _decode(text, f"the operator key in {path}")


def seal_secret(public: bytes, name: str, data: bytes) -> bytes:
    """Sealed to the operator key; the name is bound in, so objects cannot be swapped."""
    return seal(public, data, _CONTEXT + name.encode())


def open_secret(private: bytes, name: str, blob: bytes) -> bytes:
    try:
        return open_sealed(private, blob, _CONTEXT + name.encode())
    except SealError as exc:
        raise BackupError(
            f"{name}: does not open with this operator key (wrong key, or the object is damaged)"
        ) from exc
