"""The key hierarchy and sealed boxes (DESIGN §4)."""

from __future__ import annotations

import os

import pytest

from sealmail.crypto import keys
from sealmail.crypto.sealed import SEGMENT, SealError, open_sealed, seal, seal_stream

FAST = keys.KdfParams(time_cost=1, memory_kib=8192, parallelism=1)


def test_password_wrap_round_trip() -> None:
    found, public = keys.new_secrets()
    assert len(found.mailbox_key) == 32
    assert len(public) == 32
    wrapped = keys.wrap_with_password(found, "correct horse", "alias-1", FAST)
    assert keys.unwrap_with_password(wrapped, "correct horse", "alias-1") == found
    assert found.mailbox_key not in wrapped.mailbox_key
    assert "<redacted>" in repr(found)


def test_wrong_password_is_refused() -> None:
    found, _ = keys.new_secrets()
    wrapped = keys.wrap_with_password(found, "correct horse", "alias-1", FAST)
    with pytest.raises(keys.WrongPassword):
        keys.unwrap_with_password(wrapped, "Correct horse", "alias-1")


def test_blobs_are_bound_to_their_alias_and_purpose() -> None:
    """A wrapped key moved to another alias, or swapped with the other key, does not open."""
    found, _ = keys.new_secrets()
    wrapped = keys.wrap_with_password(found, "pw", "alias-1", FAST)
    with pytest.raises(keys.WrongPassword):
        keys.unwrap_with_password(wrapped, "pw", "alias-2")
    swapped = keys.WrappedKeys(wrapped.salt, wrapped.kdf, wrapped.private_key, wrapped.mailbox_key)
    with pytest.raises(keys.WrongPassword):
        keys.unwrap_with_password(swapped, "pw", "alias-1")


def test_rewrapping_keeps_the_keys_and_retires_the_old_password() -> None:
    found, _ = keys.new_secrets()
    old = keys.wrap_with_password(found, "old", "a", FAST)
    opened = keys.unwrap_with_password(old, "old", "a")
    new = keys.wrap_with_password(opened, "new", "a", FAST)
    assert keys.unwrap_with_password(new, "new", "a") == found
    with pytest.raises(keys.WrongPassword):
        keys.unwrap_with_password(new, "old", "a")


def test_kdf_parameters_travel_with_the_blob() -> None:
    found, _ = keys.new_secrets()
    wrapped = keys.wrap_with_password(found, "pw", "a", keys.KdfParams(2, 9000, 1))
    assert wrapped.kdf == "argon2id:t=2,m=9000,p=1"
    assert keys.KdfParams.decode(wrapped.kdf) == keys.KdfParams(2, 9000, 1)


def test_recovery_key() -> None:
    found, _ = keys.new_secrets()
    recovery = keys.new_recovery_key()
    assert recovery.startswith("smrk1-")
    wrapped = keys.wrap_with_recovery_key(found, recovery, "a")
    assert keys.unwrap_with_recovery_key(wrapped, recovery.upper().replace("SMRK1-", "smrk1-"), "a") == found
    with pytest.raises(keys.WrongPassword):
        keys.unwrap_with_recovery_key(wrapped, keys.new_recovery_key(), "a")
    with pytest.raises(keys.WrongPassword):
        keys.unwrap_with_recovery_key(wrapped, "not a key", "a")


def test_damaged_blob() -> None:
    found, _ = keys.new_secrets()
    wrapped = keys.wrap_with_password(found, "pw", "a", FAST)
    for broken in (b"", wrapped.mailbox_key[:10], bytes([9]) + wrapped.mailbox_key[1:]):
        with pytest.raises(keys.WrongPassword):
            keys.unwrap(keys.derive_kek("pw", wrapped.salt, FAST), broken, "a", "mailbox-key")


def test_sealed_box_opens_only_with_the_private_key_and_context() -> None:
    found, public = keys.new_secrets()
    other, _ = keys.new_secrets()
    blob = seal(public, b"Subject: secret\r\n\r\nbody", b"mbox-1")
    assert open_sealed(found.private_key, blob, b"mbox-1") == b"Subject: secret\r\n\r\nbody"
    assert b"secret" not in blob
    with pytest.raises(SealError):
        open_sealed(other.private_key, blob, b"mbox-1")
    with pytest.raises(SealError):
        open_sealed(found.private_key, blob, b"mbox-2")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SealError):
        open_sealed(found.private_key, tampered, b"mbox-1")
    assert seal(public, b"same", b"c") != seal(public, b"same", b"c")  # fresh ephemeral key each time


# ---- sealed in segments (version 2) ------------------------------------------------------------


def _pair() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    key = X25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return private, public


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17])
def test_a_message_sealed_in_segments_opens_whole_whatever_its_pieces(size: int) -> None:
    """Sealing in segments (as the MX writes a large message into the spool) gives one blob whose
    length is known in advance, whatever pieces the message came in, and it opens to the message."""
    private, public = _pair()
    message = os.urandom(size)
    for pieces in ([message], [message[:5], bytearray(message[5:])], [b"", memoryview(message)[:7], message[7:]]):
        stream = seal_stream(public, pieces, b"ctx")
        blob = bytes(stream)
        assert len(blob) == len(stream)
        assert bytes(stream) == blob
        assert open_sealed(private, blob, b"ctx") == message
        with pytest.raises(SealError):
            open_sealed(private, blob, b"other mailbox")


def test_segments_cut_off_swapped_or_altered_do_not_open() -> None:
    """STREAM: the counter in each nonce stops reordering, the last-segment flag stops truncation."""
    private, public = _pair()
    blob = bytes(seal_stream(public, [os.urandom(3 * SEGMENT + 100)], b"ctx"))
    head, step = 1 + 32 + 7, SEGMENT + 16
    segments = [blob[head + i * step : head + (i + 1) * step] for i in range(4)]
    truncated = blob[: head + 3 * step]  # the last segment dropped at a segment boundary
    swapped = blob[:head] + segments[1] + segments[0] + segments[2] + segments[3]
    altered = bytearray(blob)
    altered[head + step + 5] ^= 1
    for bad in (truncated, swapped, bytes(altered), blob[:-1]):
        with pytest.raises(SealError):
            open_sealed(private, bad, b"ctx")


def test_version_1_blobs_still_open() -> None:
    """Spool records sealed whole before segments existed stay readable."""
    private, public = _pair()
    assert open_sealed(private, seal(public, b"old mail", b"ctx"), b"ctx") == b"old mail"
