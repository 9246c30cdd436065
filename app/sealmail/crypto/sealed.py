"""Sealed boxes: anyone with a mailbox's public key can write, only its password holder can read.

The MX holds public keys only. Each message is sealed with a fresh ephemeral X25519 key:

    shared = X25519(ephemeral, recipient public)
    key    = HKDF-SHA256(shared, salt = ephemeral public || recipient public, info = "sealmail sealed v1")
    blob   = version (1) || ephemeral public (32) || nonce (12) || ChaCha20-Poly1305(key, nonce, message, aad)

The associated data names the mailbox, so a blob copied into another mailbox's spool does not open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealmail.errors import SealmailError

VERSION = 1
_INFO = b"sealmail sealed v1"
_HEADER = 1 + 32 + 12


class SealError(SealmailError):
    """A sealed blob does not open with this key (wrong key, wrong mailbox, or damaged)."""


def _key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_public + recipient_public, info=_INFO)
    return hkdf.derive(shared)


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal(recipient_public: bytes, message: bytes, context: bytes) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = _raw_public(ephemeral.public_key())
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    nonce = os.urandom(12)
    sealed = ChaCha20Poly1305(_key(shared, ephemeral_public, recipient_public)).encrypt(nonce, message, context)
    return bytes([VERSION]) + ephemeral_public + nonce + sealed


def open_sealed(private_key: bytes, blob: bytes, context: bytes) -> bytes:
    if len(blob) < _HEADER + 16 or blob[0] != VERSION:
        raise SealError("sealed message is damaged or of an unknown version")
    ephemeral_public, nonce, sealed = blob[1:33], blob[33:45], blob[45:]
    private = X25519PrivateKey.from_private_bytes(private_key)
    recipient_public = _raw_public(private.public_key())
    shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    try:
        return ChaCha20Poly1305(_key(shared, ephemeral_public, recipient_public)).decrypt(nonce, sealed, context)
    except InvalidTag:
        raise SealError("sealed message does not open with this key") from None
