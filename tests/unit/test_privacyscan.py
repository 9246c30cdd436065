"""The whole-directory privacy scan finds a secret at any offset of any file, in its common encodings."""

from __future__ import annotations

import base64
import os

import pytest

from privacyscan import Secrets, assert_no_secrets, leaks


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


def test_a_key_at_offset_5_of_a_5_kb_file_is_found(tmp_path, key) -> None:
    """The sampling scan this replaces missed exactly this: one offset in 97 in files over 4 KB."""
    (tmp_path / "blob.bin").write_bytes(os.urandom(5) + key + os.urandom(5 * 1024 - 37))
    (found,) = leaks(tmp_path, Secrets().key("private key", key))
    assert (found.path.name, found.offset, found.form) == ("blob.bin", 5, "raw")
    with pytest.raises(AssertionError, match=r"private key \(raw\) at offset 5 of .*blob\.bin"):
        assert_no_secrets(tmp_path, Secrets().key("private key", key))


@pytest.mark.parametrize(
    "encode",
    [
        lambda k: k.hex().encode(),
        lambda k: k.hex().upper().encode(),
        base64.b64encode,
        base64.urlsafe_b64encode,
        lambda k: base64.b32encode(k).lower(),
    ],
    ids=["hex", "HEX", "base64", "base64url", "base32"],
)
def test_encoded_keys_deep_in_big_sqlite_side_files_are_found(tmp_path, key, encode) -> None:
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    offset = 3_000_001
    (deep / "x.sqlite-wal").write_bytes(b"\0" * offset + encode(key) + b"\0" * 100)
    (found,) = leaks(tmp_path, Secrets().key("k", key))
    assert found.offset == offset
    assert found.path.name == "x.sqlite-wal"


def test_text_and_passwords_in_any_case_or_utf16(tmp_path) -> None:
    (tmp_path / "index").write_bytes(b"..." + "quokka-marker-77".upper().encode() + b"...")
    (tmp_path / "log-journal").write_bytes("pw: Secret-Pass-Word-1".encode("utf-16-le"))
    found = leaks(tmp_path, Secrets().text("marker", "Quokka-Marker-77").password("password", "Secret-Pass-Word-1"))
    assert sorted((f.label, f.form, f.path.name) for f in found) == [
        ("marker", "upper", "index"),
        ("password", "utf-16-le", "log-journal"),
    ]


def test_a_plaintext_sqlite_header_under_mailboxes_is_a_leak(tmp_path) -> None:
    (tmp_path / "mailboxes").mkdir()
    (tmp_path / "mailboxes" / "abc.sqlite").write_bytes(b"SQLite format 3\0" + b"\0" * 100)
    (tmp_path / "config.sqlite").write_bytes(b"SQLite format 3\0" + b"\0" * 100)
    (found,) = leaks(tmp_path, Secrets().password("p", "long enough password"))
    assert found.path.name == "abc.sqlite"


def test_clean_directory_passes_and_short_needles_are_refused(tmp_path, key) -> None:
    (tmp_path / "f").write_bytes(os.urandom(10_000))
    assert assert_no_secrets(tmp_path, Secrets().key("k", key)) == 1
    with pytest.raises(ValueError, match="too short"):
        Secrets().password("p", "short")
    with pytest.raises(AssertionError, match="expected at least 1 file"):
        assert_no_secrets(tmp_path / "missing", Secrets().key("k", key))
