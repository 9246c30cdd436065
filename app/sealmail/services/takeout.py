"""Take your mail with you: every folder of a mailbox as one zip archive, made while it is sent.

Two forms, both a zip because a browser downloads one file:

* ``mbox``: one mbox file per folder (``sealmail.mime.mbox``: mboxrd, flags in ``Status``/
  ``X-Status``/``X-Keywords``), at the folder's path: ``INBOX.mbox``, ``Archive.mbox``,
  ``Archive/2024.mbox``. One file per folder because that is what mail programs import: Thunderbird
  (ImportExportTools NG: "import all mbox files from a directory"), Apple Mail ("Import Mailboxes",
  files in mbox format), mutt and Dovecot open them as they are, each becoming a folder of its own
  name. A single mbox with the folder in a header field would come back as one folder everywhere
  except in tools written for Gmail's Takeout.
* ``eml``: every message verbatim (the octets that were delivered or APPENDed) as
  ``<folder path>/<UID>.eml``; an empty folder is an empty directory. For programs that take
  single messages, and for the exact bytes.

The mailbox is read through its handle (``store.contract``: the files on this host or a data
host's store, the same calls), a folder's messages in batches of at most ``BATCH_MESSAGES``
messages or ``BATCH_OCTETS`` (one larger message alone); each batch is formatted and compressed
on a worker thread and handed to the caller before the next is read. Nothing is written to disk,
and memory holds one batch and what the caller has not sent yet (an HTTP response waits for the
client's TCP window, so a slow client slows the reading, it does not fill memory).
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Literal

from sealmail.mime import mbox
from sealmail.store.model import DELIMITER, INBOX
from sealmail.zipstream import ZipStream

if TYPE_CHECKING:
    from sealmail.store.contract import MailboxHandle
    from sealmail.store.model import Folder, MessageInfo

Format = Literal["mbox", "eml"]
FORMATS: tuple[Format, ...] = ("mbox", "eml")
BATCH_MESSAGES = 64
BATCH_OCTETS = 4 << 20
UIDS_PER_LISTING = 1024  # message metadata is read this many UIDs at a time
_UNSAFE = set('\\:*?"<>|')  # characters some file systems refuse in a name

README = {
    "mbox": """Your mail, one mbox file per folder (a folder inside another is in a directory of that name).

Thunderbird: install the ImportExportTools NG add-on, then right-click a folder, ImportExportTools NG,
  "Import mbox file" (choose the files) or "Import all mbox files from directory".
Apple Mail: File > Import Mailboxes..., "Files in mbox format", choose the unpacked directory.
mutt, neomutt, Dovecot: open or copy the files as they are.

Read, answered, flagged and draft marks are kept in Status and X-Status header fields, keywords in
X-Keywords, where Dovecot and mutt look for them.
""",
    "eml": """Your mail, one .eml file per message, in one directory per folder, exactly as it was
delivered. Most mail programs open an .eml file, or import it when it is dragged onto a folder.
""",
}


def folder_paths(names: Iterable[str]) -> dict[str, str]:
    """A relative path inside the archive for each folder name, safe on any file system and unique.

    Levels of the folder hierarchy become directories; characters file systems refuse, control
    characters and the names ``.`` and ``..`` become ``_``; two folders that come out alike get
    `` (2)``, `` (3)``... after the second's last level.
    """
    taken: set[str] = set()
    paths: dict[str, str] = {}
    for name in names:
        parts = []
        for level in name.split(DELIMITER):
            clean = "".join("_" if ch in _UNSAFE or unicodedata.category(ch)[0] == "C" else ch for ch in level)
            clean = clean.strip().rstrip(".") or "_"
            parts.append("_" if clean in (".", "..") else clean)
        path = "/".join(parts)
        candidate, n = path, 1
        while candidate.casefold() in taken:  # one folder per name also on case-insensitive systems
            n += 1
            candidate = f"{path} ({n})"
        taken.add(candidate.casefold())
        paths[name] = candidate
    return paths


def _ordered(folders: Sequence[Folder]) -> list[Folder]:
    """Folders that hold messages, INBOX first, then by name."""
    found = [f for f in folders if not f.noselect]
    return sorted(found, key=lambda f: (f.name != INBOX, f.name))


def _batches(infos: Sequence[MessageInfo]) -> Iterable[list[MessageInfo]]:
    batch: list[MessageInfo] = []
    octets = 0
    for info in infos:
        if batch and (len(batch) >= BATCH_MESSAGES or octets + info.size > BATCH_OCTETS):
            yield batch
            batch, octets = [], 0
        batch.append(info)
        octets += info.size
    if batch:
        yield batch


async def mailbox_zip(handle: MailboxHandle, fmt: Format) -> AsyncIterator[bytes]:
    """The archive of every folder of the mailbox behind ``handle``, chunk by chunk."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    archive = ZipStream()
    try:
        async for chunk in _folders(handle, fmt, archive):
            yield chunk
    finally:
        archive.abandon()  # a finished archive is closed already: this only drops an unfinished one


async def _folders(handle: MailboxHandle, fmt: Format, archive: ZipStream) -> AsyncIterator[bytes]:
    folders = _ordered(await handle.list_folders())
    paths = folder_paths(f.name for f in folders)
    for folder in folders:
        path = paths[folder.name]
        uids = await handle.uids(folder.name)
        entry: IO[bytes] | None = None
        if fmt == "mbox":
            size = (await handle.status(folder.name)).size
            entry = await asyncio.to_thread(archive.open, f"{path}.mbox", size_hint=size + size // 8)
        elif not uids:
            await asyncio.to_thread(archive.directory, path)
        for start in range(0, len(uids), UIDS_PER_LISTING):
            infos = await handle.messages(folder.name, uids[start : start + UIDS_PER_LISTING])
            for batch in _batches(infos):
                raws = await handle.raws([info.body_id for info in batch])
                await asyncio.to_thread(_write, archive, entry, path, batch, raws)
                chunk = archive.take()
                if chunk:
                    yield chunk
        if entry is not None:
            await asyncio.to_thread(entry.close)
    archive.add("README.txt", README[fmt].encode())
    yield await asyncio.to_thread(archive.close)


def _write(
    archive: ZipStream, entry: IO[bytes] | None, path: str, batch: list[MessageInfo], raws: dict[int, bytes]
) -> None:
    for info in batch:
        raw = raws.get(info.body_id)
        if raw is None:  # expunged since the listing: it is no longer part of the mailbox
            continue
        if entry is not None:
            entry.write(mbox.entry(raw, info.flags, info.internal_date))
        else:
            archive.add(f"{path}/{info.uid}.eml", raw, modified=info.internal_date)
