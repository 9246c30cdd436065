"""Sealed boxes: anyone with a mailbox's public key can write, only its password holder can read.

The MX holds public keys only. Each message is sealed with a fresh ephemeral X25519 key:

    shared = X25519(ephemeral, recipient public)
    key    = HKDF-SHA256(shared, salt = ephemeral public || recipient public, info = "sealmail sealed v1")
    blob   = version (1) || ephemeral public (32) || nonce (12) || ChaCha20-Poly1305(key, nonce, message, aad)

The associated data names the mailbox, so a blob copied into another mailbox's spool does not open.

Version 2 seals a message in segments, so a large one is never held twice (plaintext and
ciphertext) in memory: the MX writes each sealed segment into the spool as it is made. Its layout
follows the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption
and its Nonce-Reuse Misuse-Resistance", 2015), as age and Tink's streaming AEAD do:

    key    = HKDF-SHA256(shared, salt = ephemeral public || recipient public, info = "sealmail sealed v2")
    blob   = version (2) || ephemeral public (32) || nonce prefix (7) || segment 0 || segment 1 || ...
    segment i = ChaCha20Poly1305(key, prefix || i (4, big endian) || last (1), plaintext i, aad)

Every plaintext segment is ``SEGMENT`` bytes but the last (1 to ``SEGMENT`` bytes; 0 only for an
empty message). The counter in the nonce stops reordering, the last-segment flag stops truncation.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from typing import Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealmail.errors import SealmailError

VERSION = 1
_INFO = b"sealmail sealed v1"
_HEADER = 1 + 32 + 12

STREAM_VERSION = 2
_STREAM_INFO = b"sealmail sealed v2"
_PREFIX = 7
_STREAM_HEADER = 1 + 32 + _PREFIX
_TAG = 16
SEGMENT = 64 * 1024  # plaintext bytes per sealed segment
_COUNTER = struct.Struct(">IB")

Buffer = Union[bytes, bytearray, memoryview]  # noqa: UP007 - a runtime alias


class SealError(SealmailError):
    """A sealed blob does not open with this key (wrong key, wrong mailbox, or damaged)."""


def _key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes, info: bytes = _INFO) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_public + recipient_public, info=info)
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


class SealedStream:
    """A message sealed in segments (version 2), made as it is read: ``len()`` is known at once.

    Iterating gives the blob's bytes in pieces of about ``SEGMENT``; iterating again gives the same
    bytes (the ephemeral key and nonce prefix are fixed when it is made), so a writer that has to
    start over can. Only one segment of ciphertext exists at a time.
    """

    __slots__ = ("_aead", "_context", "_head", "_length", "_pieces", "_prefix")

    def __init__(self, recipient_public: bytes, pieces: Sequence[Buffer], context: bytes) -> None:
        ephemeral = X25519PrivateKey.generate()
        ephemeral_public = _raw_public(ephemeral.public_key())
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
        self._aead = ChaCha20Poly1305(_key(shared, ephemeral_public, recipient_public, _STREAM_INFO))
        self._prefix = os.urandom(_PREFIX)
        self._head = bytes([STREAM_VERSION]) + ephemeral_public + self._prefix
        self._pieces = [memoryview(p).cast("B") for p in pieces]
        self._length = sum(p.nbytes for p in self._pieces)
        self._context = context

    def __len__(self) -> int:
        segments = max(1, -(-self._length // SEGMENT))
        return _STREAM_HEADER + self._length + segments * _TAG

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        segments = max(1, -(-self._length // SEGMENT))
        for index, plain in enumerate(_segments(self._pieces, SEGMENT)):
            nonce = self._prefix + _COUNTER.pack(index, index == segments - 1)
            yield self._aead.encrypt(nonce, plain, self._context)

    def __bytes__(self) -> bytes:
        return b"".join(self)


def _segments(pieces: Sequence[memoryview], size: int) -> Iterator[Buffer]:
    """The concatenation of ``pieces`` in slices of ``size`` (the last shorter; one empty if none)."""
    out = bytearray()
    sent = False
    for piece in pieces:
        at = 0
        while at < piece.nbytes:
            if not out and piece.nbytes - at >= size:
                yield piece[at : at + size]  # a whole segment inside one piece: no copy
                sent = True
                at += size
                continue
            take = min(size - len(out), piece.nbytes - at)
            out += piece[at : at + take]
            at += take
            if len(out) == size:
                yield bytes(out)
                sent = True
                out = bytearray()
    if out or not sent:
        yield bytes(out)


def seal_stream(recipient_public: bytes, pieces: Sequence[Buffer], context: bytes) -> SealedStream:
    """Seal the concatenation of ``pieces`` (version 2), segment by segment as it is read."""
    return SealedStream(recipient_public, pieces, context)


def _open_stream(private_key: bytes, blob: Buffer, context: bytes) -> bytes:
    view = memoryview(blob).cast("B")
    if view.nbytes < _STREAM_HEADER + _TAG:
        raise SealError("sealed message is damaged or of an unknown version")
    ephemeral_public, prefix = bytes(view[1:33]), bytes(view[33:_STREAM_HEADER])
    private = X25519PrivateKey.from_private_bytes(private_key)
    recipient_public = _raw_public(private.public_key())
    shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    aead = ChaCha20Poly1305(_key(shared, ephemeral_public, recipient_public, _STREAM_INFO))
    body = view[_STREAM_HEADER:]
    step = SEGMENT + _TAG
    segments = max(1, -(-body.nbytes // step))
    out = bytearray()
    try:
        for index in range(segments):
            nonce = prefix + _COUNTER.pack(index, index == segments - 1)
            out += aead.decrypt(nonce, body[index * step : (index + 1) * step], context)
    except InvalidTag:
        raise SealError("sealed message does not open with this key") from None
    return bytes(out)


def open_sealed(private_key: bytes, blob: bytes, context: bytes) -> bytes:
    if blob[:1] == bytes([STREAM_VERSION]):
        return _open_stream(private_key, blob, context)
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
