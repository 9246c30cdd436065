"""The export's formats, read back by Python's ``mailbox``: mboxrd entries (RFC 4155), the zip
archive made as a stream, and the folder paths inside it."""

from __future__ import annotations

import io
import mailbox
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sealmail.crypto import keys
from sealmail.mime import mbox
from sealmail.services import takeout
from sealmail.store import events as ev
from sealmail.store.mailstore import MailStore
from sealmail.zipstream import ZipStream

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def unquote(text: bytes) -> bytes:
    """What a mboxrd reader does: one ``>`` less on every ``>+From `` line (Python's reads mboxo)."""
    return re.sub(rb"^>(>*From )", rb"\1", text, flags=re.M)


def read_mbox(data: bytes, tmp_path: Path) -> list[mailbox.mboxMessage]:
    path = tmp_path / "read.mbox"
    path.write_bytes(data)
    box = mailbox.mbox(path, create=False)
    try:
        return [box.get_message(key) for key in box.iterkeys()]
    finally:
        box.close()


def test_rfc4155_from_line_is_the_asctime_of_the_internal_date_in_utc() -> None:
    assert mbox.from_line(WHEN) == b"From MAILER-DAEMON Wed Mar  4 05:06:07 2026\n"


def test_rfc4155_mboxrd_quotes_from_lines_reversibly(tmp_path: Path) -> None:
    raw = b"Subject: quoting\r\n\r\nFrom here on\r\n>From a quote\r\n>>From deeper\r\n From not at the start\r\nend\r\n"
    text = mbox.entry(raw, (), WHEN)
    body = text.split(b"\n", 1)[1]
    assert b"\n>From here on\n>>From a quote\n>>>From deeper\n From not at the start\n" in body
    (found,) = read_mbox(text, tmp_path)
    assert unquote(found.as_bytes()).replace(b"\n", b"\r\n") == raw


def test_flags_ride_in_the_fields_dovecot_and_mutt_read(tmp_path: Path) -> None:
    raw = b"Subject: flags\r\nFrom: a@example.test\r\n\r\nbody\r\n"
    text = mbox.entry(raw, ("\\Seen", "\\Answered", "\\Flagged", "$Forwarded", "work"), WHEN)
    assert text.startswith(b"From MAILER-DAEMON ")
    (found,) = read_mbox(text, tmp_path)
    assert set(found.get_flags()) == {"R", "O", "A", "F"}  # Python's reading of Status and X-Status
    assert found["X-Keywords"] == "$Forwarded work"
    header, _, body = text.partition(b"\n\n")
    assert header.endswith(b"From: a@example.test\nStatus: RO\nX-Status: AF\nX-Keywords: $Forwarded work")
    assert body == b"body\n\n"
    # Without flags the message is exported as it is (line endings aside).
    plain = mbox.entry(raw, (), WHEN)
    assert plain.split(b"\n", 1)[1] == raw.replace(b"\r\n", b"\n") + b"\n"


@pytest.mark.parametrize(
    "raw",
    [b"Subject: only a header\r\n", b"Subject: no final newline", b"\r\nbody without header\r\n", b""],
    ids=["header-only", "no-newline", "no-header", "empty"],
)
def test_odd_messages_still_make_one_entry_each(raw: bytes, tmp_path: Path) -> None:
    text = mbox.entry(raw, ("\\Draft",), WHEN) + mbox.entry(b"Subject: next\r\n\r\nx\r\n", (), WHEN)
    first, second = read_mbox(text, tmp_path)
    assert first["X-Status"] == "T"
    assert second["Subject"] == "next"


def test_zip_stream_is_a_valid_archive_made_in_pieces() -> None:
    archive = ZipStream()
    pieces = []
    with archive.open("big.txt", modified=WHEN) as entry:
        for i in range(50):
            entry.write(f"line {i}\n".encode() * 1000)
            pieces.append(archive.take())
    archive.add("dir/é.bin", b"\x00\xff" * 10, compress=False)
    archive.directory("empty")
    pieces.append(archive.close())
    assert archive.take() == b""
    assert all(len(p) < 200_000 for p in pieces)  # nothing piles up between takes
    found = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert found.testzip() is None
    assert found.namelist() == ["big.txt", "dir/é.bin", "empty/"]
    assert found.getinfo("big.txt").date_time == (2026, 3, 4, 5, 6, 6)  # zip keeps even seconds
    assert found.read("big.txt").count(b"\n") == 50_000


def test_folder_paths_are_safe_and_unique() -> None:
    paths = takeout.folder_paths(["INBOX", "Archive/2024", "a:b", "a_b", "..", "Work", "work", "x\x7fy", "Réunions."])
    assert paths == {
        "INBOX": "INBOX",
        "Archive/2024": "Archive/2024",
        "a:b": "a_b",
        "a_b": "a_b (2)",
        "..": "_",
        "Work": "Work",
        "work": "work (2)",
        "x\x7fy": "x_y",
        "Réunions.": "Réunions",
    }


@pytest.fixture
async def handle(tmp_path):
    found, _ = keys.new_secrets()
    store = MailStore(tmp_path, ev.InProcessBus())
    store.create("e" * 24, found.mailbox_key)
    opened = await store.open("e" * 24, found)
    yield opened
    await opened.release()
    await store.close()


async def _archive(handle, fmt) -> zipfile.ZipFile:
    chunks = [chunk async for chunk in takeout.mailbox_zip(handle, fmt)]
    return zipfile.ZipFile(io.BytesIO(b"".join(chunks)))


async def test_both_forms_hold_every_folder_and_message(handle, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(takeout, "BATCH_MESSAGES", 3)  # several batches per folder
    await handle.create_folder("Archive/2024")
    await handle.create_folder("Empty")
    sent = {}
    for i in range(7):
        raw = f"Subject: n°{i}\r\nFrom: x@example.test\r\n\r\nFrom the body {i}\r\n".encode()
        result = await handle.append("INBOX" if i % 2 else "Archive/2024", raw, ["\\Seen"] if i == 3 else [])
        sent[raw] = result.uid
    archive = await _archive(handle, "mbox")
    names = archive.namelist()
    assert names[0] == "INBOX.mbox"
    assert {"Archive.mbox", "Archive/2024.mbox", "Empty.mbox", "README.txt"} <= set(names)
    assert archive.read("Empty.mbox") == b""
    back = []
    for name in ("INBOX.mbox", "Archive/2024.mbox"):
        for message in read_mbox(archive.read(name), tmp_path):
            text = unquote(message.as_bytes())
            for field in (b"Status: RO\n",):
                text = text.replace(field, b"")
            back.append(text.replace(b"\n", b"\r\n"))
    assert sorted(back) == sorted(sent)

    eml = await _archive(handle, "eml")
    assert "Empty/" in eml.namelist()
    found = {eml.read(n) for n in eml.namelist() if n.endswith(".eml")}
    assert found == set(sent)
    assert eml.read(f"Archive/2024/{sent[next(iter(sent))]}.eml") == next(iter(sent))


async def test_an_unknown_format_is_refused(handle) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        await _archive(handle, "pst")


def test_an_abandoned_archive_leaves_nothing_to_finish() -> None:
    """A reader that leaves half-way: the unfinished archive is dropped, and nothing is left for the
    garbage collector to finish (pytest turns a failing finalizer into an error)."""
    import gc

    archive = ZipStream()
    entry = archive.open("half.mbox")
    entry.write(b"x" * 100_000)
    assert archive.take()
    archive.abandon()
    assert archive.take() == b""
    archive.abandon()  # twice is fine
    del archive, entry
    gc.collect()
