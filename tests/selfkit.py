"""Helpers for the self-service area's tests: an alias with a mailbox, IMAP clients, mail that
tests 8-bit bodies and UTF-8 header fields (RFC 6532), and reading an export back."""

from __future__ import annotations

import contextlib
import imaplib
import io
import mailbox
import re
import ssl
import zipfile
from pathlib import Path

import httpx

from sealmail.errors import AlreadyExists
from sealmail.services import aliases, credentials, domains, selfservice
from sealmail.services.eventlog import Actor

ADDRESS = "rémi@universitéxyz.fr"  # an EAI local part at an IDN domain
OTHER = "bob@universitéxyz.fr"
ACTOR = Actor("test", "test", "127.0.0.1")


def own_token(store, address: str, name: str = "script") -> str:
    """A token the alias's user made for their own alias (the secret, shown once)."""
    me = selfservice.member(store, aliases.get_alias(store, address).id)
    return selfservice.create_token(store, me, name, ACTOR)[1]


def auth(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def problem(r: httpx.Response, status: int) -> dict:
    """The RFC 9457 problem document of a refused API request (admin or self-service)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    return body


def make_alias(store, settings, address: str = ADDRESS) -> str:
    """The alias with a mailbox; returns its (generated) password."""
    with contextlib.suppress(AlreadyExists):
        domains.add_domain(store, address.split("@")[1])
    aliases.add_alias(store, address)
    return credentials.set_password(store, settings, address)


def imap_client(port: int, ca: Path, address: str, password: str) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ssl.create_default_context(cafile=str(ca)))
    client._encoding = "utf-8"  # the name as it is, quoted, as mail clients send an EAI address
    try:
        client.login(f'"{address}"', password)
    except BaseException:
        client.shutdown()
        raise
    return client


def messages() -> list[tuple[str, bytes, str | None]]:
    """(folder, message, flags) as a mail program would APPEND them: 8-bit text, UTF-8 header
    fields, a line that looks like an mbox separator, an attachment."""
    return [
        (
            "INBOX",
            "From: Zoé <zoe@exemple.fr>\r\nTo: rémi@universitéxyz.fr\r\nSubject: Café à 10 h ?\r\n"
            "Message-ID: <1@exemple.fr>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\nÀ tout à l'heure, près du kiosque.\r\n"
            "From the station, walk north.\r\n".encode(),
            None,
        ),
        (
            "INBOX",
            b"From: a@example.test\r\nSubject: =?utf-8?q?encod=C3=A9?=\r\nMessage-ID: <2@example.test>\r\n\r\n"
            b">From an old quote\r\nplain body\r\n",
            "(\\Seen \\Flagged)",
        ),
        (
            "Archive/2026",
            b"From: b@example.test\r\nSubject: with an attachment\r\nMessage-ID: <3@example.test>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=xyz\r\n\r\n--xyz\r\n"
            b"Content-Type: text/plain\r\n\r\nsee attached\r\n--xyz\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--xyz--\r\n",
            "(\\Answered)",
        ),
    ]


def append_all(client: imaplib.IMAP4_SSL, mails) -> None:
    for folder, raw, flags in mails:
        if folder != "INBOX":
            client.create(f'"{folder}"')
        typ, data = client.append(f'"{folder}"', flags, None, raw)
        assert typ == "OK", data


def read_zip(data: bytes) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive


def unquote(text: bytes) -> bytes:
    """mboxrd (RFC 4155 variant): one ``>`` less on every ``>+From `` line."""
    return re.sub(rb"^>(>*From )", rb"\1", text, flags=re.M)


def mbox_messages(archive: zipfile.ZipFile, name: str, tmp_path: Path) -> list[tuple[bytes, set[str]]]:
    """The messages of one mbox file, read by Python's ``mailbox``: (the message as it was stored,
    the mbox flags Python reads from Status and X-Status)."""
    path = tmp_path / "read.mbox"
    path.write_bytes(archive.read(name))
    box = mailbox.mbox(path, create=False)
    try:
        found = []
        for key in box.iterkeys():
            message = box.get_message(key)
            text = box.get_bytes(key)
            text = re.sub(rb"^(Status|X-Status|X-Keywords): [^\n]*\n", b"", text, flags=re.M)
            found.append((unquote(text).replace(b"\n", b"\r\n"), set(message.get_flags())))
        return found
    finally:
        box.close()
        path.unlink()
