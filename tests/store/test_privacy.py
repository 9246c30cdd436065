"""What a seized server gives up: nothing readable (DESIGN §4)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from sealmail.crypto.keys import KdfParams, derive_kek
from sealmail.crypto.sealed import SealError
from sealmail.services import credentials
from sealmail.services.credentials import AuthenticationFailed
from sealmail.store.mailstore import MailStore
from sealmail.store.spool import open_message

from privacyscan import Secrets, assert_no_secrets

SECRET_SUBJECT = "Subject-Zebra-Quokka-7731"
SECRET_BODY = "Body-Marmalade-Xylophone-4412"
SECRET_HEADER = "X-Private-Header-Narwhal"
SECRET_FLAG = "$Flag-Pangolin-9090"


def _files_of(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.rglob("*") if p.is_file()]


def _secrets(address: str, password: str, unlocked) -> Secrets:
    found = Secrets().password(f"password of {address}", password).unlocked(address, unlocked)
    for marker in (SECRET_SUBJECT, SECRET_BODY, SECRET_HEADER, SECRET_FLAG, "Folder-Ocelot-5150"):
        found.text("message text", marker)
    return found


def test_mailbox_files_hold_no_plaintext(config, settings, account) -> None:
    """Neither the database nor its -wal/-shm holds the SQLite header or any stored text."""
    address, password = account
    unlocked = credentials.unlock(config, settings, address, password)
    store = MailStore(settings.data_dir)
    box = store.open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
    raw = (
        f"From: a@example.org\r\nSubject: {SECRET_SUBJECT}\r\n{SECRET_HEADER}: yes\r\n\r\n{SECRET_BODY}\r\n"
    ).encode()
    uid = box.append("INBOX", raw, [SECRET_FLAG]).uid
    box.create_folder("Folder-Ocelot-5150")
    box.store_flags("INBOX", [uid], "add", ["\\Seen"])
    # RFC 8970 PREVIEW: the preview made from the message is kept, and must be as unreadable as the rest
    body_id = box.messages("INBOX", [uid])[0].body_id
    assert box.previews([body_id]) == {body_id: SECRET_BODY}
    # Inspect while the connection is open, so the -wal and -shm files exist with recent pages.
    path = store.mailbox_path(unlocked.mailbox_id)
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert all(f.exists() for f in files)
    needles = [b"SQLite format 3", SECRET_SUBJECT.encode(), SECRET_BODY.encode(), SECRET_HEADER.encode()]
    needles += [SECRET_FLAG.encode(), b"Folder-Ocelot", b"\\Seen", b"INBOX", address.encode()]
    for f in files:
        content = f.read_bytes()
        for needle in needles:
            assert needle not in content, f"{needle!r} found in {f.name}"
    # Every other file under the data directory too, at every offset: text, keys and the password.
    secrets = _secrets(address, password, unlocked)
    assert_no_secrets(settings.data_dir, secrets, min_files=4)
    box.close()
    assert_no_secrets(settings.data_dir, secrets, min_files=2)
    # No file name anywhere under the data directory names the alias.
    for f in _files_of(settings.data_dir):
        assert "rémi" not in str(f)
        assert "example.test" not in str(f)


def test_wrong_password_opens_nothing(config, settings, account) -> None:
    address, password = account
    with pytest.raises(AuthenticationFailed):
        credentials.unlock(config, settings, address, password + "x")
    with pytest.raises(AuthenticationFailed):
        credentials.unlock(config, settings, "nobody@example.test", password)


def test_no_server_side_material_opens_a_sealed_message(config, settings, account) -> None:
    """The MX seals with the public key; every byte string the server keeps fails as a key."""
    address, password = account
    alias = config.find_alias("example.test", "exact", "rémi")
    credential = config.get_credential(alias.id)
    store = MailStore(settings.data_dir)
    store.deliver(credential.mailbox_id, credential.public_key, b"Subject: sealed secret\r\n\r\nhush\r\n")
    ((_, sealed),) = list(store.spool(credential.mailbox_id).pending(0))
    assert b"sealed secret" not in store.spool_path(credential.mailbox_id).read_bytes()

    # Everything the server holds about this alias, and everything it could compute without the password.
    material: list[bytes] = []
    for value in (
        credential.public_key,
        credential.key_salt,
        credential.key_mailbox,
        credential.key_private,
        credential.password_hash.encode(),
        credential.mailbox_id.encode(),
        alias.id.encode(),
    ):
        material.append(value)
    for f in _files_of(settings.data_dir):
        material.append(f.read_bytes())
    # Argon2 outputs from the verifier's and the key's own salts, without the password.
    params = KdfParams.decode(credential.key_kdf)
    material += [derive_kek("", credential.key_salt, params), derive_kek(alias.id, credential.key_salt, params)]
    candidates = set()
    for blob in material:
        if blob is None:
            continue
        for start in range(0, max(1, len(blob) - 31), 1 if len(blob) < 4096 else 97):
            window = blob[start : start + 32]
            if len(window) == 32:
                candidates.add(window)
    assert len(candidates) > 100
    for candidate in itertools.islice(candidates, 20_000):
        with pytest.raises(SealError):
            open_message(candidate, credential.mailbox_id, sealed)

    # With the password, it opens.
    unlocked = credentials.unlock(config, settings, address, password)
    _, _, raw = open_message(unlocked.secrets.private_key, credential.mailbox_id, sealed)
    assert raw == b"Subject: sealed secret\r\n\r\nhush\r\n"
    # The windows above are a sample; the keys themselves, looked for at every offset of every file
    # (raw, hex, base64...), are nowhere under the data directory.
    assert_no_secrets(settings.data_dir, _secrets(address, password, unlocked).text("sealed", "sealed secret"))
