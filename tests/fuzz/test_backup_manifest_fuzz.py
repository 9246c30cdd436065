"""Fuzz target: backup manifests read back from the bucket (backup/manifest.py).

A manifest comes from storage that others can write to; ``BackupError`` ("the manifest is damaged",
"not authentic") is what restore and retention report and stop on. Anything else would be a crash
with a traceback in the middle of a restore or of the retention job.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from sealmail.backup.errors import BackupError
from sealmail.backup.manifest import Entry, Manifest, open_manifest, read_unverified, seal_manifest

from .fuzzkit import fuzz

KEY = b"k" * 32
RUN = "20260101T000000.000000Z"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
ENTRY_KEYS = ["name", "secret", "id", "size", "object", "stored_sha256", "stored_size", "etag"]
entry_like = st.dictionaries(st.sampled_from(ENTRY_KEYS), json_values, max_size=8)
manifest_like = st.fixed_dictionaries(
    {},
    optional={
        "run": st.one_of(st.just(RUN), json_values),
        "host": json_values,
        "entries": st.one_of(st.lists(entry_like, max_size=3), json_values),
        "uploaded": json_values,
        "version": json_values,
    },
)


def _document(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def _check(manifest: Manifest) -> None:
    """What restore and retention rely on: the documented types, or a BackupError before."""
    assert isinstance(manifest.run, str)
    assert isinstance(manifest.host, str)
    assert isinstance(manifest.version, int)
    assert all(isinstance(name, str) for name in manifest.uploaded)
    for entry in manifest.entries:
        assert isinstance(entry, Entry)
        assert isinstance(entry.name, str)
        assert isinstance(entry.object, str)
        assert isinstance(entry.id, str)
        assert isinstance(entry.secret, bool)
        assert isinstance(entry.size, int)
        assert isinstance(entry.stored_size, int)
        assert isinstance(entry.stored_sha256, str)
        assert isinstance(entry.etag, str)


@fuzz()
@given(
    st.one_of(
        st.binary(max_size=300),
        json_values.map(_document),
        manifest_like.map(_document),
        st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(1, 3000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    )
)
def test_unverified_manifests_parse_or_backup_error(data: bytes) -> None:
    """Retention reads manifests without their MAC: damage of any shape is a BackupError."""
    try:
        manifest = read_unverified(data)
    except BackupError:
        return
    _check(manifest)


@fuzz()
@given(manifest_like)
def test_authentic_but_malformed_manifests_parse_or_backup_error(value: dict) -> None:
    """A sealed (MAC-valid) manifest whose inner JSON is malformed still gives BackupError, not a crash."""
    text = _document(value)
    wrapper = {
        "format": "sealmail-backup-manifest",
        "version": 2,
        "mac": "",
        "manifest": text.decode(),
    }
    # Build the MAC the way seal_manifest does, over this exact text.
    from sealmail.backup.manifest import _mac

    wrapper["mac"] = _mac(KEY, "prefix", RUN, text)
    try:
        manifest = open_manifest(json.dumps(wrapper).encode(), KEY, "prefix", RUN)
    except BackupError:
        return
    _check(manifest)


@fuzz()
@given(st.binary(max_size=300))
def test_sealed_manifests_refuse_tampering(junk: bytes) -> None:
    sealed = seal_manifest(Manifest(RUN, "host", [Entry("a", False, "i", 1, "o", "s", 1)]), KEY, "prefix")
    assert open_manifest(sealed, KEY, "prefix", RUN).entries[0].name == "a"
    for tampered in (junk, sealed[: len(junk)] + junk, sealed.replace(b'"host', junk.hex().encode()[:12] or b"x")):
        try:
            open_manifest(tampered, KEY, "prefix", RUN)
        except BackupError:
            continue
        assert tampered == sealed
