"""Damaged manifests from the bucket are BackupError, whatever their shape (found by tests/fuzz)."""

from __future__ import annotations

import json

import pytest

from sealmail.backup.errors import BackupError
from sealmail.backup.manifest import _mac, open_manifest, read_unverified

RUN = "20260101T000000.000000Z"
KEY = b"k" * 32


def _sealed(inner: bytes) -> bytes:
    return json.dumps(
        {
            "format": "sealmail-backup-manifest",
            "version": 2,
            "mac": _mac(KEY, "p", RUN, inner),
            "manifest": inner.decode(),
        }
    ).encode()


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_deeply_nested_json_is_a_damaged_manifest(depth: int) -> None:
    """RFC 8259 §9: "An implementation may set limits on the maximum depth of nesting." Past the
    decoder's limit the manifest is damaged (BackupError), not a RecursionError out of retention."""
    nested = b"[" * depth + b"]" * depth
    with pytest.raises(BackupError, match="nested too deeply"):
        read_unverified(nested)
    with pytest.raises(BackupError, match="nested too deeply"):
        open_manifest(nested, KEY, "p", RUN)
    with pytest.raises(BackupError, match="nested too deeply"):
        open_manifest(_sealed(b'{"run": ' * depth + b"1" + b"}" * depth), KEY, "p", RUN)


@pytest.mark.parametrize(
    "document",
    [
        # RFC 8259 §6 has no Infinity; Python's decoder takes it, and int() of it is OverflowError.
        {"run": RUN, "host": "h", "entries": [], "version": float("inf")},
        {"run": 1, "host": "h", "entries": []},
        {"run": RUN, "host": "h", "entries": [], "uploaded": "abc"},
        {"run": RUN, "host": "h", "entries": [], "version": True},
        {"run": RUN, "host": "h", "entries": {}},
        {"run": RUN, "host": "h", "entries": [["not", "an", "object"]]},
        # An object key that is a list would make retention's set of wanted keys raise TypeError.
        {"run": RUN, "host": "h", "entries": [{key: [] for key in ("name", "id", "object", "stored_sha256")} | {"secret": False, "size": 1, "stored_size": 1}]},
        {"run": RUN, "host": "h", "entries": [{"name": "a", "secret": 1, "id": "i", "size": 1, "object": "o", "stored_sha256": "s", "stored_size": 1}]},
        {"run": RUN, "host": "h", "entries": [{"name": "a", "secret": False, "id": "i", "size": "1", "object": "o", "stored_sha256": "s", "stored_size": 1}]},
    ],
)  # fmt: skip
def test_manifest_fields_must_have_their_json_types(document: dict) -> None:
    """RFC 8259 §4 objects with the members the manifest format names, each of its type: a wrong
    one is a damaged manifest, in retention (no MAC) and in restore (a valid MAC) alike."""
    text = json.dumps(document).encode()
    with pytest.raises(BackupError, match="damaged"):
        read_unverified(text)
    with pytest.raises(BackupError, match="damaged"):
        open_manifest(_sealed(text), KEY, "p", RUN)


def test_a_well_formed_manifest_still_reads() -> None:
    entry = {"name": "a", "secret": False, "id": "i", "size": 1, "object": "o", "stored_sha256": "s", "stored_size": 1}
    text = json.dumps({"run": RUN, "host": "h", "entries": [entry], "uploaded": ["a"], "version": 1}).encode()
    assert read_unverified(text).entries[0].etag == ""
    assert open_manifest(_sealed(text), KEY, "p", RUN).uploaded == ["a"]
