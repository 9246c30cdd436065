"""The key hierarchy of a mailbox (DESIGN §4).

    password --Argon2id--> KEK --AEAD wrap--> mailbox key (SQLCipher raw key, 32 bytes)
                                   '--------> X25519 private key (opens the sealed spool)

The config store keeps only the wrapped blobs, the KDF salt and parameters, and the public key.
Changing a password re-wraps the two blobs; the mailbox itself is never re-encrypted. A recovery
key (random, 256 bits, shown once) can wrap the same two keys a second time.

Wrapped blob format: ``version (1) || nonce (12) || ChaCha20-Poly1305 ciphertext+tag``, with the
alias id and the key's purpose as associated data so a blob cannot be moved to another alias or
swapped for the other key.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealmail.errors import SealmailError

KEY_BYTES = 32
SALT_BYTES = 16
NONCE_BYTES = 12
WRAP_VERSION = 1
RECOVERY_PREFIX = "smrk1-"


class WrongPassword(SealmailError):
    """The password (or recovery key) does not open these keys."""


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id parameters, stored beside the salt so a later change of settings keeps old passwords working."""

    time_cost: int
    memory_kib: int
    parallelism: int

    def encode(self) -> str:
        return f"argon2id:t={self.time_cost},m={self.memory_kib},p={self.parallelism}"

    @classmethod
    def decode(cls, text: str) -> KdfParams:
        kind, _, rest = text.partition(":")
        if kind != "argon2id":
            raise ValueError(f"unknown KDF {kind!r}")
        values = dict(item.split("=", 1) for item in rest.split(","))
        return cls(int(values["t"]), int(values["m"]), int(values["p"]))


@dataclass(frozen=True, slots=True, repr=False)
class MailboxSecrets:
    """Unwrapped keys: held in process memory for the life of a session, never written anywhere."""

    mailbox_key: bytes
    private_key: bytes

    def __repr__(self) -> str:
        return "MailboxSecrets(<redacted>)"


def derive_kek(password: str, salt: bytes, params: KdfParams) -> bytes:
    return hash_secret_raw(
        password.encode("utf-8"),
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )


def _aad(alias_id: str, purpose: str) -> bytes:
    return f"sealmail/v{WRAP_VERSION}/{purpose}/{alias_id}".encode()


def wrap(kek: bytes, secret: bytes, alias_id: str, purpose: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return bytes([WRAP_VERSION]) + nonce + ChaCha20Poly1305(kek).encrypt(nonce, secret, _aad(alias_id, purpose))


def unwrap(kek: bytes, blob: bytes, alias_id: str, purpose: str) -> bytes:
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[0] != WRAP_VERSION:
        raise WrongPassword("the stored key is damaged or of an unknown version")
    nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        return ChaCha20Poly1305(kek).decrypt(nonce, body, _aad(alias_id, purpose))
    except InvalidTag:
        raise WrongPassword("wrong password") from None


@dataclass(frozen=True, slots=True)
class WrappedKeys:
    """What the config store keeps for one mailbox's keys under one password (or recovery key)."""

    salt: bytes
    kdf: str  # KdfParams.encode(), or "recovery" for a recovery-key wrap
    mailbox_key: bytes
    private_key: bytes


def new_secrets() -> tuple[MailboxSecrets, bytes]:
    """A fresh mailbox key and X25519 key pair: (secrets, public key bytes)."""
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return MailboxSecrets(mailbox_key=secrets.token_bytes(KEY_BYTES), private_key=raw_private), public


def wrap_with_password(found: MailboxSecrets, password: str, alias_id: str, params: KdfParams) -> WrappedKeys:
    salt = os.urandom(SALT_BYTES)
    kek = derive_kek(password, salt, params)
    return WrappedKeys(
        salt=salt,
        kdf=params.encode(),
        mailbox_key=wrap(kek, found.mailbox_key, alias_id, "mailbox-key"),
        private_key=wrap(kek, found.private_key, alias_id, "spool-key"),
    )


def unwrap_with_password(wrapped: WrappedKeys, password: str, alias_id: str) -> MailboxSecrets:
    kek = derive_kek(password, wrapped.salt, KdfParams.decode(wrapped.kdf))
    return _unwrap_both(kek, wrapped, alias_id)


def _unwrap_both(kek: bytes, wrapped: WrappedKeys, alias_id: str) -> MailboxSecrets:
    return MailboxSecrets(
        mailbox_key=unwrap(kek, wrapped.mailbox_key, alias_id, "mailbox-key"),
        private_key=unwrap(kek, wrapped.private_key, alias_id, "spool-key"),
    )


def _mailbox_derived_key(mailbox_key: bytes, alias_id: str, purpose: str) -> bytes:
    info = f"sealmail/v{WRAP_VERSION}/from-mailbox-key/{purpose}/{alias_id}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(mailbox_key)


def seal_with_mailbox_key(mailbox_key: bytes, secret: bytes, alias_id: str, purpose: str) -> bytes:
    """A small secret kept beside the wrapped keys that only an unlocked mailbox opens (the
    self-service area's TOTP secret): wrapped with a key HKDF derives from the mailbox key, so a
    password change (which keeps the mailbox key) keeps it readable and nothing on disk opens it."""
    return wrap(_mailbox_derived_key(mailbox_key, alias_id, purpose), secret, alias_id, purpose)


def open_with_mailbox_key(mailbox_key: bytes, sealed: bytes, alias_id: str, purpose: str) -> bytes:
    """``seal_with_mailbox_key`` undone; ``WrongPassword`` for another mailbox's key or a damaged blob."""
    return unwrap(_mailbox_derived_key(mailbox_key, alias_id, purpose), sealed, alias_id, purpose)


def new_recovery_key() -> str:
    """256 random bits, shown once; high entropy, so HKDF (not Argon2id) turns it into a KEK."""
    return RECOVERY_PREFIX + base64.b32encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=").lower()


def _recovery_kek(recovery_key: str, salt: bytes) -> bytes:
    text = recovery_key.strip().lower().replace(" ", "")
    if not text.startswith(RECOVERY_PREFIX):
        raise WrongPassword("not a Sealmail recovery key")
    body = text.removeprefix(RECOVERY_PREFIX).upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        raise WrongPassword("not a Sealmail recovery key") from None
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=b"sealmail recovery kek").derive(raw)


def wrap_with_recovery_key(found: MailboxSecrets, recovery_key: str, alias_id: str) -> WrappedKeys:
    salt = os.urandom(SALT_BYTES)
    kek = _recovery_kek(recovery_key, salt)
    return WrappedKeys(
        salt=salt,
        kdf="recovery",
        mailbox_key=wrap(kek, found.mailbox_key, alias_id, "mailbox-key"),
        private_key=wrap(kek, found.private_key, alias_id, "spool-key"),
    )


def unwrap_with_recovery_key(wrapped: WrappedKeys, recovery_key: str, alias_id: str) -> MailboxSecrets:
    return _unwrap_both(_recovery_kek(recovery_key, wrapped.salt), wrapped, alias_id)
