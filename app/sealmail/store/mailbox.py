"""One encrypted mailbox: folders, messages, flags, search, spool drain and snapshots.

Synchronous and thread-safe; the async wrapper (``sealmail.store.aio``) runs it on a per-mailbox
worker thread so no SQLite work happens on an event loop. Writers take an exclusive ``flock`` on the
mailbox's lock file for the whole transaction: one writer per mailbox across processes, released
by the kernel if the holder dies. Readers use WAL snapshots and never wait for the writer.

Protocol code never sees SQL: it calls these methods with folder names and UIDs and gets typed
results. Every mutation commits first and then reports its change events to ``notify``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple

import sqlcipher3

from sealmail import mime
from sealmail.crypto.sealed import SealError
from sealmail.mime.sections import header_fields
from sealmail.store import attachments, imapvalue
from sealmail.store import events as ev
from sealmail.store.dav import DavStoreMixin
from sealmail.store.db import open_encrypted
from sealmail.store.errors import (
    FolderExists,
    FolderNotFound,
    InvalidFolderName,
    QuotaExceeded,
    UnknownEncoding,
)
from sealmail.store.indexing import Indexed, index_message
from sealmail.store.schema import migrate
from sealmail.store.search import Compiler, SearchKey, header_contains
from sealmail.store.spool import Spool, open_message
from sealmail.store.wireform import ascii_size, crlf_size, split_header
from sealmail.timecodec import format_time, parse_time

INBOX = "INBOX"
DELIMITER = "/"
SYSTEM_FLAGS: dict[str, int] = {"\\Seen": 1, "\\Answered": 2, "\\Flagged": 4, "\\Deleted": 8, "\\Draft": 16}
_FLAG_BY_LOWER = {name.lower(): name for name in SYSTEM_FLAGS}
SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
DEFAULT_FOLDERS: tuple[tuple[str, str | None], ...] = (
    (INBOX, None),
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Junk", "\\Junk"),
    ("Trash", "\\Trash"),
    ("Archive", "\\Archive"),
)
MAX_FOLDER_NAME = 500
MAX_KEYWORDS = 200
ATTACHMENT_MIN = 4096
_COMPRESS_LEVEL = 6

StoreMode = Literal["add", "remove", "replace"]
_BODY_COLUMNS = {
    "header": "body_headers",
    "envelope": "body_envelopes",
    "bodystructure": "body_structures",
    "structure": "body_structures",
}
Notify = Callable[[list[ev.ChangeEvent]], None]


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    subscribed: bool
    noselect: bool


@dataclass(frozen=True, slots=True)
class FolderStatus:
    messages: int
    unseen: int
    recent: int
    deleted: int
    size: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int


@dataclass(frozen=True, slots=True)
class MessageInfo:
    uid: int
    modseq: int
    flags: frozenset[str]  # system flags in canonical case, then keywords as first spelled
    internal_date: datetime
    size: int
    body_id: int
    recent: bool


class MaildropEntry(NamedTuple):
    """One message as POP3 lists it (RFC 1939 §5): CRLF size, and whether its header needs downgrading.

    A named tuple: a listing makes one per message, and tuples are several times cheaper to build.
    """

    uid: int
    body_id: int
    crlf_size: int  # octets with every line ending as CRLF and a final CRLF: what POP3 sends
    ascii_size: int  # the same with the header downgraded to ASCII (RFC 6858), for clients without UTF-8
    utf8_header: bool  # 8-bit octets in the header block (RFC 6856 §2: UTF-8 mode matters)


@dataclass(frozen=True, slots=True)
class Maildrop:
    """A folder listed for POP3 in one read: its UIDVALIDITY and its messages in UID order."""

    uidvalidity: int
    messages: tuple[MaildropEntry, ...]


@dataclass(frozen=True, slots=True)
class AppendResult:
    uidvalidity: int
    uid: int
    modseq: int


@dataclass(frozen=True, slots=True)
class CopyResult:
    """UIDPLUS (RFC 4315): the destination's UIDVALIDITY and (source UID, new UID) pairs, in order."""

    uidvalidity: int
    pairs: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class StoreResult:
    changed: tuple[MessageInfo, ...]  # messages whose flags changed (new MODSEQ)
    unchanged: tuple[MessageInfo, ...]  # addressed but already as asked
    conflicts: tuple[int, ...]  # UNCHANGEDSINCE failures (RFC 7162 §3.1.3): not modified


@dataclass(frozen=True, slots=True)
class DrainResult:
    drained: int
    failed: tuple[int, ...]  # spool sequence numbers that did not open (kept in the spool)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    path: Path
    sha256: str
    size: int
    changed: bool  # differs from the previous snapshot at the same path


def _line_sizes(raw: bytes) -> tuple[int, int, int]:
    """(crlf_size, utf8_header, ascii_size) as the messages table keeps them (see ``store.wireform``)."""
    eight_bit = not split_header(raw).isascii()
    return crlf_size(raw), int(eight_bit), ascii_size(raw) if eight_bit else crlf_size(raw)


def normalize_folder_name(name: str) -> str:
    """NFC, ``INBOX`` case-insensitive (RFC 9051 §5.1), no empty levels or list wildcards."""
    if not isinstance(name, str) or not name:
        raise InvalidFolderName("folder name is empty")
    name = unicodedata.normalize("NFC", name)
    parts = name.split(DELIMITER)
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    if any(p == "" for p in parts):
        raise InvalidFolderName(f"folder name {name!r} has an empty level")
    if len(name.encode()) > MAX_FOLDER_NAME:
        raise InvalidFolderName(f"folder name longer than {MAX_FOLDER_NAME} octets")
    for ch in name:
        if ch in "%*" or unicodedata.category(ch)[0] == "C":
            raise InvalidFolderName(f"folder name {name!r}: character U+{ord(ch):04X} is not allowed")
    return DELIMITER.join(parts)


def _parents(name: str) -> list[str]:
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:i]) for i in range(1, len(parts))]


def _flags_to_columns(flags: Iterable[str]) -> tuple[int, list[str]]:
    bits, keywords = 0, []
    for flag in flags:
        canonical = _FLAG_BY_LOWER.get(flag.lower())
        if canonical is not None:
            bits |= SYSTEM_FLAGS[canonical]
        elif flag.lower() == "\\recent" or flag.startswith("\\"):
            continue  # \Recent is not settable; unknown system flags are ignored (RFC 9051 §6.4.6)
        elif flag.lower() not in {k.lower() for k in keywords}:
            keywords.append(flag)
    return bits, keywords


class Mailbox(DavStoreMixin):
    def __init__(
        self,
        mailbox_id: str,
        path: Path,
        key: bytes,
        *,
        quota: int | None = None,
        notify: Notify | None = None,
    ) -> None:
        self.mailbox_id = mailbox_id
        self.path = path
        self.quota = quota
        self.notify = notify
        self._key = key  # process memory only, for the life of this handle (snapshots reopen with it)
        self._parsed_cache: dict[int, mime.ParsedMessage] = {}  # bodies are immutable: safe to cache
        self._lock = threading.RLock()
        self._tx_events: list[ev.ChangeEvent] | None = None  # set while this handle's write is open
        self._tx_depth = 0
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        self.db = open_encrypted(path, key)
        self.db.create_function("header_contains", 3, header_contains, deterministic=True)
        with self._writer_lock():
            migrate(self.db)
        self._ensure_default_folders()

    # ---- plumbing -------------------------------------------------------------------------------
    def close(self) -> None:
        # The checkpoint rewrites the database file: like every write, under the writer lock, so a
        # backup copying the files under that lock always sees one consistent state.
        with self._writer_lock():
            with contextlib.suppress(sqlcipher3.Error):
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.close()
        os.close(self._lock_fd)

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        with self._lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _write(self) -> Iterator[list[ev.ChangeEvent]]:
        """One write transaction; its events are delivered after COMMIT, outside the locks.

        Inside an open write of the same thread (a DAV request holds one around its check-then-write),
        a nested ``_write`` is a savepoint: its failure undoes only its own part, and its events wait
        for the outer COMMIT.
        """
        with self._lock:
            if self._tx_events is not None:
                yield from self._nested_write(self._tx_events)
                return
        events: list[ev.ChangeEvent] = []
        with self._writer_lock():
            self.db.execute("BEGIN IMMEDIATE")
            self._tx_events = events
            try:
                yield events
                self._bump_generation()
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            finally:
                self._tx_events = None
        if events and self.notify is not None:
            self.notify(events)

    def _nested_write(self, events: list[ev.ChangeEvent]) -> Iterator[list[ev.ChangeEvent]]:
        self._tx_depth += 1
        name = f"nested_{self._tx_depth}"
        mark = len(events)
        self.db.execute(f"SAVEPOINT {name}")
        try:
            yield events
            self.db.execute(f"RELEASE {name}")
        except BaseException:
            self.db.execute(f"ROLLBACK TO {name}")
            self.db.execute(f"RELEASE {name}")
            del events[mark:]
            raise
        finally:
            self._tx_depth -= 1

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlcipher3.Connection]:
        with self._lock:
            yield self.db

    def _bump_generation(self) -> None:
        # Counts committed writes: an unchanged generation means an unchanged mailbox (snapshots).
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', 1) ON CONFLICT(key) DO UPDATE SET value = value + 1"
        )

    def _meta(self, key: str, default: object = None) -> object:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value: object) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ---- folders --------------------------------------------------------------------------------
    def _ensure_default_folders(self) -> None:
        with self._read() as db:
            if db.execute("SELECT 1 FROM folders WHERE name = ?", (INBOX,)).fetchone():
                return
        with self._write() as events:
            for name, special in DEFAULT_FOLDERS:
                if not self.db.execute("SELECT 1 FROM folders WHERE name = ?", (name,)).fetchone():
                    self._insert_folder(name, special)
            events.append(ev.FoldersChanged(self.mailbox_id))

    def _new_uidvalidity(self) -> int:
        # Never repeats, even when a folder is deleted and made again in the same second.
        last = int(self._meta("uidvalidity_last", 0))
        value = max(int(time.time()), last + 1)
        self._set_meta("uidvalidity_last", value)
        return value

    def _insert_folder(self, name: str, special_use: str | None) -> int:
        cur = self.db.execute(
            "INSERT INTO folders (name, special_use, uidvalidity) VALUES (?, ?, ?)",
            (name, special_use, self._new_uidvalidity()),
        )
        return cur.lastrowid

    @staticmethod
    def _folder(row: tuple) -> Folder:
        return Folder(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), bool(row[7]))

    _FOLDER_COLUMNS = "id, name, special_use, uidvalidity, uidnext, highestmodseq, subscribed, noselect"

    def _folder_row(self, name: str, *, selectable: bool = True) -> Folder:
        row = self.db.execute(
            f"SELECT {self._FOLDER_COLUMNS} FROM folders WHERE name = ?", (normalize_folder_name(name),)
        ).fetchone()
        if row is None or (selectable and row[7]):
            raise FolderNotFound(f"folder {name!r} does not exist")
        return self._folder(row)

    def list_folders(self) -> list[Folder]:
        with self._read() as db:
            rows = db.execute(f"SELECT {self._FOLDER_COLUMNS} FROM folders ORDER BY name").fetchall()
        return [self._folder(r) for r in rows]

    def folder(self, name: str) -> Folder:
        with self._read():
            return self._folder_row(name)

    def create_folder(self, name: str, special_use: str | None = None) -> Folder:
        """Create a folder and any missing parents (RFC 9051 §6.3.4)."""
        name = normalize_folder_name(name)
        if special_use is not None and special_use not in SPECIAL_USES:
            raise InvalidFolderName(f"unknown special use {special_use!r}")
        with self._write() as events:
            existing = self.db.execute("SELECT noselect FROM folders WHERE name = ?", (name,)).fetchone()
            if existing is not None and not existing[0]:
                raise FolderExists(f"folder {name!r} exists already")
            for parent in _parents(name):
                if not self.db.execute("SELECT 1 FROM folders WHERE name = ?", (parent,)).fetchone():
                    self._insert_folder(parent, None)
            if existing is not None:  # a \Noselect placeholder becomes a real folder again
                self.db.execute(
                    "UPDATE folders SET noselect = 0, special_use = ?, uidvalidity = ? WHERE name = ?",
                    (special_use, self._new_uidvalidity(), name),
                )
            else:
                self._insert_folder(name, special_use)
            events.append(ev.FoldersChanged(self.mailbox_id))
        return self.folder(name)

    def delete_folder(self, name: str) -> None:
        """RFC 9051 §6.3.5: messages go; a folder with children stays as a \\Noselect placeholder."""
        name = normalize_folder_name(name)
        if name == INBOX:
            raise InvalidFolderName("INBOX cannot be deleted")
        with self._write() as events:
            folder = self._folder_row(name, selectable=False)
            if folder.noselect and not self._has_children(name):
                self.db.execute("DELETE FROM folders WHERE id = ?", (folder.id,))
            elif folder.noselect:
                raise FolderNotFound(f"folder {name!r} does not exist")
            else:
                self._remove_messages(folder.id, None)
                self.db.execute("DELETE FROM expunged WHERE folder_id = ?", (folder.id,))
                if self._has_children(name):
                    self.db.execute("UPDATE folders SET noselect = 1 WHERE id = ?", (folder.id,))
                else:
                    self.db.execute("DELETE FROM folders WHERE id = ?", (folder.id,))
            self._prune_placeholders(name)
            events.append(ev.FoldersChanged(self.mailbox_id))

    def _has_children(self, name: str) -> bool:
        prefix = name + DELIMITER
        return bool(
            self.db.execute(
                "SELECT 1 FROM folders WHERE substr(name, 1, ?) = ? LIMIT 1", (len(prefix), prefix)
            ).fetchone()
        )

    def _prune_placeholders(self, name: str) -> None:
        for parent in reversed(_parents(name)):
            row = self.db.execute("SELECT id, noselect FROM folders WHERE name = ?", (parent,)).fetchone()
            if row is None or not row[1] or self._has_children(parent):
                return
            self.db.execute("DELETE FROM folders WHERE id = ?", (row[0],))

    def rename_folder(self, old: str, new: str) -> None:
        """Rename with every child (RFC 9051 §6.3.6); renaming INBOX moves its messages to a new folder."""
        old, new = normalize_folder_name(old), normalize_folder_name(new)
        if new == INBOX:
            raise InvalidFolderName("cannot rename to INBOX")
        if old != INBOX and (new == old or new.startswith(old + DELIMITER)):
            raise InvalidFolderName("cannot rename a folder into itself")
        with self._write() as events:
            source = self._folder_row(old, selectable=old == INBOX)
            if self.db.execute("SELECT 1 FROM folders WHERE name = ? AND noselect = 0", (new,)).fetchone():
                raise FolderExists(f"folder {new!r} exists already")
            self.db.execute("DELETE FROM folders WHERE name = ? AND noselect = 1", (new,))
            for parent in _parents(new):
                if not self.db.execute("SELECT 1 FROM folders WHERE name = ?", (parent,)).fetchone():
                    self._insert_folder(parent, None)
            if old == INBOX:
                target = self._insert_folder(new, None)
                uids = [
                    r[0]
                    for r in self.db.execute("SELECT uid FROM messages WHERE folder_id = ? ORDER BY uid", (source.id,))
                ]
                self._copy_rows(source, uids, self._folder_by_id(target), move=True, events=events)
            else:
                prefix = old + DELIMITER
                self.db.execute("UPDATE folders SET name = ? WHERE id = ?", (new, source.id))
                self.db.execute(
                    "UPDATE folders SET name = ? || substr(name, ?) WHERE substr(name, 1, ?) = ?",
                    (new + DELIMITER, len(prefix) + 1, len(prefix), prefix),
                )
                self._prune_placeholders(old)
            events.append(ev.FoldersChanged(self.mailbox_id))

    def _folder_by_id(self, folder_id: int) -> Folder:
        row = self.db.execute(f"SELECT {self._FOLDER_COLUMNS} FROM folders WHERE id = ?", (folder_id,)).fetchone()
        return self._folder(row)

    def set_subscribed(self, name: str, subscribed: bool) -> None:
        name = normalize_folder_name(name)
        with self._write() as events:
            cur = self.db.execute("UPDATE folders SET subscribed = ? WHERE name = ?", (int(subscribed), name))
            if cur.rowcount == 0:
                if subscribed:
                    raise FolderNotFound(f"folder {name!r} does not exist")
                return
            events.append(ev.FoldersChanged(self.mailbox_id))

    def status(self, name: str) -> FolderStatus:
        with self._read() as db:
            folder = self._folder_row(name)
            row = db.execute(
                "SELECT count(*), coalesce(sum((flags & 1) = 0), 0), coalesce(sum(recent), 0), "
                "coalesce(sum((flags & 8) != 0), 0), coalesce(sum(size), 0) FROM messages WHERE folder_id = ?",
                (folder.id,),
            ).fetchone()
        return FolderStatus(
            row[0], row[1], row[2], row[3], row[4], folder.uidnext, folder.uidvalidity, folder.highestmodseq
        )

    def usage(self) -> int:
        """Octets of every message in every folder, calendars and contacts included (QUOTA STORAGE)."""
        with self._read():
            return self._used_octets()

    def _used_octets(self) -> int:
        return self.db.execute(
            "SELECT (SELECT coalesce(sum(size), 0) FROM messages) + (SELECT coalesce(sum(size), 0) FROM dav_items)"
        ).fetchone()[0]

    def keywords(self) -> list[str]:
        with self._read() as db:
            return [r[0] for r in db.execute("SELECT name FROM keyword_names ORDER BY name")]

    # ---- messages -------------------------------------------------------------------------------
    def append(
        self,
        folder: str,
        raw: bytes,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        *,
        enforce_quota: bool = True,
    ) -> AppendResult:
        """Store a message byte for byte; returns its UID (RFC 4315 APPENDUID)."""
        indexed = index_message(raw)  # parsing happens outside the lock
        when = (internal_date or datetime.now(UTC)).astimezone(UTC)
        with self._write() as events:
            return self._append_locked(folder, raw, indexed, flags, when, enforce_quota, events)

    def append_many(
        self, folder: str, items: Iterable[tuple[bytes, Iterable[str], datetime | None]], *, enforce_quota: bool = True
    ) -> list[AppendResult]:
        """Append several messages in one transaction (imports, batched delivery); all or none."""
        prepared = [
            (raw, index_message(raw), flags, (when or datetime.now(UTC)).astimezone(UTC)) for raw, flags, when in items
        ]
        with self._write() as events:
            return [
                self._append_locked(folder, raw, indexed, flags, when, enforce_quota, events)
                for raw, indexed, flags, when in prepared
            ]

    def _append_locked(
        self,
        folder_name: str,
        raw: bytes,
        indexed: Indexed,
        flags: Iterable[str],
        when: datetime,
        enforce_quota: bool,
        events: list[ev.ChangeEvent],
    ) -> AppendResult:
        folder = self._folder_row(folder_name)
        if enforce_quota:
            self._check_quota(len(raw))
        body_id = self._store_body(raw, indexed)
        bits, keywords = _flags_to_columns(flags)
        keywords = self._register_keywords(keywords)
        uid, modseq = folder.uidnext, folder.highestmodseq + 1
        self.db.execute(
            "INSERT INTO messages (folder_id, uid, modseq, flags, keywords, recent, internal_date, size, body_id, "
            "crlf_size, utf8_header, ascii_size) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
            (
                folder.id,
                uid,
                modseq,
                bits,
                json.dumps(keywords) if keywords else None,
                format_time(when),
                len(raw),
                body_id,
                *_line_sizes(raw),
            ),
        )
        self.db.execute("UPDATE folders SET uidnext = ?, highestmodseq = ? WHERE id = ?", (uid + 1, modseq, folder.id))
        events.append(ev.MessagesAdded(self.mailbox_id, folder.id, (uid,), modseq))
        return AppendResult(folder.uidvalidity, uid, modseq)

    def _check_quota(self, extra: int) -> None:
        if self.quota is None:
            return
        used = self._used_octets()
        if used + extra > self.quota:
            raise QuotaExceeded(f"mailbox is over its quota ({used + extra} of {self.quota} octets)")

    def _register_keywords(self, keywords: list[str]) -> list[str]:
        """Keep the first spelling of each keyword; refuse a flood of new ones."""
        result = []
        for word in keywords:
            row = self.db.execute("SELECT name FROM keyword_names WHERE name = ?", (word,)).fetchone()
            if row is None:
                count = self.db.execute("SELECT count(*) FROM keyword_names").fetchone()[0]
                if count >= MAX_KEYWORDS:
                    continue
                self.db.execute("INSERT INTO keyword_names (name) VALUES (?)", (word,))
                result.append(word)
            else:
                result.append(row[0])
        return result

    def _store_body(self, raw: bytes, indexed: Indexed) -> int:
        digest = hashlib.sha256(raw).digest()
        row = self.db.execute("SELECT id FROM bodies WHERE digest = ?", (digest,)).fetchone()
        if row is not None:
            self.db.execute("UPDATE bodies SET refcount = refcount + 1 WHERE id = ?", (row[0],))
            return row[0]
        skeleton, splices = self._cut_attachments(raw, indexed.attachments)
        cur = self.db.execute(
            "INSERT INTO bodies (digest, size, sent_date, refcount, splices) VALUES (?, ?, ?, 1, ?)",
            (digest, len(raw), format_time(indexed.sent_date) if indexed.sent_date else None, json.dumps(splices)),
        )
        body_id = cur.lastrowid
        self.db.execute("INSERT INTO body_envelopes (id, envelope) VALUES (?, ?)", (body_id, indexed.envelope))
        self.db.execute("INSERT INTO body_headers (id, header) VALUES (?, ?)", (body_id, indexed.header))
        self.db.execute(
            "INSERT INTO body_structures (id, bodystructure, structure) VALUES (?, ?, ?)",
            (body_id, indexed.bodystructure, indexed.structure),
        )
        self.db.execute(
            "INSERT INTO body_content (id, skeleton) VALUES (?, ?)", (body_id, zlib.compress(skeleton, _COMPRESS_LEVEL))
        )
        self.db.execute(
            "INSERT INTO body_text (rowid, subject, from_, to_, cc, bcc, headers, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                body_id,
                indexed.subject,
                indexed.from_,
                indexed.to,
                indexed.cc,
                indexed.bcc,
                indexed.headers,
                indexed.body,
            ),
        )
        return body_id

    def _cut_attachments(self, raw: bytes, ranges: list[tuple[int, int]]) -> tuple[bytes, list[list]]:
        """Move large attachment bodies into the shared, deduplicated attachments table."""
        skeleton, splices, pos = bytearray(), [], 0
        for start, end in sorted(ranges):
            if start < pos or end > len(raw) or end - start < ATTACHMENT_MIN:
                continue
            data = raw[start:end]
            digest = hashlib.sha256(data).digest()
            cur = self.db.execute("UPDATE attachments SET refcount = refcount + 1 WHERE digest = ?", (digest,))
            if cur.rowcount == 0:
                packing, stored = attachments.pack(data)
                self.db.execute(
                    "INSERT INTO attachments (digest, size, packing, data, refcount) VALUES (?, ?, ?, ?, 1)",
                    (digest, len(data), packing, stored),
                )
            skeleton += raw[pos:start]
            splices.append([start, end - start, digest.hex()])
            pos = end
        skeleton += raw[pos:]
        return bytes(skeleton), splices

    def _release_body(self, body_id: int) -> None:
        self.db.execute("UPDATE bodies SET refcount = refcount - 1 WHERE id = ?", (body_id,))
        row = self.db.execute("SELECT refcount, splices FROM bodies WHERE id = ?", (body_id,)).fetchone()
        if row is None or row[0] > 0:
            return
        for _offset, _length, digest_hex in json.loads(row[1]):
            digest = bytes.fromhex(digest_hex)
            self.db.execute("UPDATE attachments SET refcount = refcount - 1 WHERE digest = ?", (digest,))
            self.db.execute("DELETE FROM attachments WHERE digest = ? AND refcount <= 0", (digest,))
        self.db.execute("DELETE FROM body_text WHERE rowid = ?", (body_id,))
        for table in ("body_content", "body_envelopes", "body_headers", "body_structures", "bodies"):
            self.db.execute(f"DELETE FROM {table} WHERE id = ?", (body_id,))

    def uids(self, folder: str) -> list[int]:
        with self._read() as db:
            f = self._folder_row(folder)
            return [r[0] for r in db.execute("SELECT uid FROM messages WHERE folder_id = ? ORDER BY uid", (f.id,))]

    def messages(
        self, folder: str, uids: Iterable[int] | None = None, *, changed_since: int | None = None
    ) -> list[MessageInfo]:
        """Metadata of the given UIDs (all when None), ascending by UID; missing UIDs are skipped."""
        with self._read() as db:
            f = self._folder_row(folder)
            sql = "SELECT uid, modseq, flags, keywords, internal_date, size, body_id, recent FROM messages WHERE folder_id = ?"
            params: list[object] = [f.id]
            if changed_since is not None:
                sql += " AND modseq > ?"
                params.append(changed_since)
            if uids is None:
                rows = db.execute(sql + " ORDER BY uid", params).fetchall()
            else:
                wanted = sorted(set(uids))
                rows = []
                for chunk in _chunks(wanted, 500):
                    marks = ",".join("?" * len(chunk))
                    rows += db.execute(sql + f" AND uid IN ({marks})", [*params, *chunk]).fetchall()
                rows.sort(key=lambda r: r[0])
        return [self._info(r) for r in rows]

    def maildrop(self, folder: str = INBOX) -> Maildrop:
        """The folder as a POP3 maildrop (RFC 1939 §5): UIDVALIDITY and every message's wire sizes.

        One indexed read of the small message rows, without opening any message. Messages stored
        before the sizes were recorded get them computed once here.
        """
        with self._read() as db:
            f = self._folder_row(folder)
            rows = db.execute(
                "SELECT uid, body_id, crlf_size, ascii_size, utf8_header FROM messages WHERE folder_id = ? ORDER BY uid",
                (f.id,),
            ).fetchall()
        missing = sorted({r[1] for r in rows if r[2] is None or r[3] is None or r[4] is None})
        if missing:
            filled = self._fill_line_sizes(missing)
            rows = [(r[0], r[1], *filled[r[1]]) if r[1] in filled else r for r in rows]
        return Maildrop(
            f.uidvalidity,
            tuple(MaildropEntry(uid, body, crlf, ascii, utf8 == 1) for uid, body, crlf, ascii, utf8 in rows),
        )

    def _fill_line_sizes(self, body_ids: list[int]) -> dict[int, tuple[int, int, int]]:
        found = {}
        for body_id in body_ids:
            crlf, utf8, ascii = _line_sizes(self.raw(body_id))
            found[body_id] = (crlf, ascii, utf8)
        with self._write():
            self.db.executemany(
                "UPDATE messages SET crlf_size = ?, ascii_size = ?, utf8_header = ? WHERE body_id = ?",
                [(*sizes, body_id) for body_id, sizes in found.items()],
            )
        return found

    @staticmethod
    def _info(row: tuple) -> MessageInfo:
        uid, modseq, bits, keywords, internal_date, size, body_id, recent = row
        flags = [name for name, bit in SYSTEM_FLAGS.items() if bits & bit]
        if keywords:
            flags += json.loads(keywords)
        return MessageInfo(uid, modseq, frozenset(flags), parse_time(internal_date), size, body_id, bool(recent))

    def claim_recent(self, folder: str) -> set[int]:
        """The first session to select a folder sees its \\Recent messages; later ones do not (RFC 3501 §2.3.2)."""
        with self._writer_lock():
            f = self._folder_row(folder)
            rows = self.db.execute("SELECT uid FROM messages WHERE folder_id = ? AND recent = 1", (f.id,)).fetchall()
            if rows:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute("UPDATE messages SET recent = 0 WHERE folder_id = ? AND recent = 1", (f.id,))
                self._bump_generation()
                self.db.execute("COMMIT")
        return {r[0] for r in rows}

    def store_flags(
        self,
        folder: str,
        uids: Iterable[int],
        mode: StoreMode,
        flags: Iterable[str],
        *,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        """Add, remove or replace flags (RFC 9051 §6.4.6) with CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3)."""
        bits, keywords = _flags_to_columns(flags)
        changed, unchanged, conflicts = [], [], []
        with self._write() as events:
            f = self._folder_row(folder)
            keywords = self._register_keywords(keywords)
            lowered = {k.lower() for k in keywords}
            modseq = f.highestmodseq + 1
            for info in self._infos_locked(f.id, uids):
                if unchanged_since is not None and info.modseq > unchanged_since:
                    conflicts.append(info.uid)
                    continue
                old_bits = sum(SYSTEM_FLAGS[n] for n in info.flags if n in SYSTEM_FLAGS)
                old_keywords = [k for k in info.flags if k not in SYSTEM_FLAGS]
                if mode == "add":
                    new_bits = old_bits | bits
                    new_keywords = old_keywords + [
                        k for k in keywords if k.lower() not in {o.lower() for o in old_keywords}
                    ]
                elif mode == "remove":
                    new_bits = old_bits & ~bits
                    new_keywords = [k for k in old_keywords if k.lower() not in lowered]
                else:
                    new_bits, new_keywords = bits, list(keywords)
                if new_bits == old_bits and {k.lower() for k in new_keywords} == {k.lower() for k in old_keywords}:
                    unchanged.append(info)
                    continue
                self.db.execute(
                    "UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE folder_id = ? AND uid = ?",
                    (new_bits, json.dumps(new_keywords) if new_keywords else None, modseq, f.id, info.uid),
                )
                flag_names = [n for n, b in SYSTEM_FLAGS.items() if new_bits & b] + new_keywords
                changed.append(
                    MessageInfo(
                        info.uid,
                        modseq,
                        frozenset(flag_names),
                        info.internal_date,
                        info.size,
                        info.body_id,
                        info.recent,
                    )
                )
            if changed:
                self.db.execute("UPDATE folders SET highestmodseq = ? WHERE id = ?", (modseq, f.id))
                events.append(ev.FlagsChanged(self.mailbox_id, f.id, tuple(i.uid for i in changed), modseq))
        return StoreResult(tuple(changed), tuple(unchanged), tuple(conflicts))

    def _infos_locked(self, folder_id: int, uids: Iterable[int]) -> list[MessageInfo]:
        wanted = sorted(set(uids))
        rows = []
        for chunk in _chunks(wanted, 500):
            marks = ",".join("?" * len(chunk))
            rows += self.db.execute(
                "SELECT uid, modseq, flags, keywords, internal_date, size, body_id, recent FROM messages "
                f"WHERE folder_id = ? AND uid IN ({marks})",
                [folder_id, *chunk],
            ).fetchall()
        rows.sort(key=lambda r: r[0])
        return [self._info(r) for r in rows]

    def copy(self, source: str, uids: Iterable[int], target: str) -> CopyResult:
        """COPY (RFC 9051 §6.4.7): new UIDs in the target, in source UID order; the bodies are shared."""
        with self._write() as events:
            src, dst = self._folder_row(source), self._folder_row(target)
            wanted = sorted(set(uids))
            size = (
                self.db.execute(
                    f"SELECT coalesce(sum(size), 0) FROM messages WHERE folder_id = ? AND uid IN ({','.join('?' * len(wanted))})",
                    [src.id, *wanted],
                ).fetchone()[0]
                if wanted
                else 0
            )
            self._check_quota(size)
            return self._copy_rows(src, wanted, dst, move=False, events=events)

    def move(self, source: str, uids: Iterable[int], target: str) -> CopyResult:
        """MOVE (RFC 6851): copy and expunge atomically; the quota does not change."""
        with self._write() as events:
            src, dst = self._folder_row(source), self._folder_row(target)
            if src.id == dst.id:
                raise InvalidFolderName("source and target are the same folder")
            return self._copy_rows(src, sorted(set(uids)), dst, move=True, events=events)

    def _copy_rows(
        self, src: Folder, uids: list[int], dst: Folder, *, move: bool, events: list[ev.ChangeEvent]
    ) -> CopyResult:
        infos = self._infos_locked(src.id, uids)
        if not infos:
            return CopyResult(dst.uidvalidity, ())
        dst = self._folder_by_id(dst.id)
        uid, modseq = dst.uidnext, dst.highestmodseq + 1
        pairs = []
        for info in infos:
            row = self.db.execute(
                "SELECT flags, keywords, crlf_size, utf8_header, ascii_size FROM messages WHERE folder_id = ? AND uid = ?",
                (src.id, info.uid),
            ).fetchone()
            self.db.execute(
                "INSERT INTO messages (folder_id, uid, modseq, flags, keywords, recent, internal_date, size, body_id, "
                "crlf_size, utf8_header, ascii_size) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                (
                    dst.id,
                    uid,
                    modseq,
                    row[0],
                    row[1],
                    format_time(info.internal_date),
                    info.size,
                    info.body_id,
                    row[2],
                    row[3],
                    row[4],
                ),
            )
            self.db.execute("UPDATE bodies SET refcount = refcount + 1 WHERE id = ?", (info.body_id,))
            pairs.append((info.uid, uid))
            uid += 1
        self.db.execute("UPDATE folders SET uidnext = ?, highestmodseq = ? WHERE id = ?", (uid, modseq, dst.id))
        events.append(ev.MessagesAdded(self.mailbox_id, dst.id, tuple(p[1] for p in pairs), modseq))
        if move:
            self._remove_messages(src.id, [p[0] for p in pairs], events=events)
        return CopyResult(dst.uidvalidity, tuple(pairs))

    def expunge(self, folder: str, uids: Iterable[int] | None = None) -> list[int]:
        """Remove messages flagged \\Deleted (only those in ``uids`` when given: UID EXPUNGE, RFC 4315)."""
        with self._write() as events:
            f = self._folder_row(folder)
            rows = self.db.execute(
                "SELECT uid FROM messages WHERE folder_id = ? AND (flags & 8) != 0", (f.id,)
            ).fetchall()
            doomed = [r[0] for r in rows]
            if uids is not None:
                allowed = set(uids)
                doomed = [u for u in doomed if u in allowed]
            self._remove_messages(f.id, doomed, events=events)
        return sorted(doomed)

    def remove(self, folder: str, uids: Iterable[int]) -> list[int]:
        """Remove exactly these messages, whatever their flags, in one transaction (POP3 UPDATE, RFC 1939 §6).

        UIDs that are gone already (another session expunged them) are skipped; returns those removed.
        """
        with self._write() as events:
            f = self._folder_row(folder)
            present = [info.uid for info in self._infos_locked(f.id, uids)]
            self._remove_messages(f.id, present, events=events)
        return present

    def _remove_messages(
        self, folder_id: int, uids: list[int] | None, events: list[ev.ChangeEvent] | None = None
    ) -> None:
        if uids is None:
            uids = [r[0] for r in self.db.execute("SELECT uid FROM messages WHERE folder_id = ?", (folder_id,))]
        if not uids:
            return
        folder = self._folder_by_id(folder_id)
        modseq = folder.highestmodseq + 1
        for chunk in _chunks(sorted(uids), 500):
            marks = ",".join("?" * len(chunk))
            bodies = self.db.execute(
                f"SELECT body_id FROM messages WHERE folder_id = ? AND uid IN ({marks})", [folder_id, *chunk]
            ).fetchall()
            self.db.execute(f"DELETE FROM messages WHERE folder_id = ? AND uid IN ({marks})", [folder_id, *chunk])
            self.db.executemany(
                "INSERT OR REPLACE INTO expunged (folder_id, uid, modseq) VALUES (?, ?, ?)",
                [(folder_id, u, modseq) for u in chunk],
            )
            for (body_id,) in bodies:
                self._release_body(body_id)
        self.db.execute("UPDATE folders SET highestmodseq = ? WHERE id = ?", (modseq, folder_id))
        if events is not None:
            events.append(ev.MessagesExpunged(self.mailbox_id, folder_id, tuple(sorted(uids)), modseq))

    def expunged_since(self, folder: str, modseq: int) -> list[int]:
        """UIDs expunged after ``modseq`` (QRESYNC VANISHED, RFC 7162 §3.2.10)."""
        with self._read() as db:
            f = self._folder_row(folder)
            return [
                r[0]
                for r in db.execute(
                    "SELECT uid FROM expunged WHERE folder_id = ? AND modseq > ? ORDER BY uid", (f.id, modseq)
                )
            ]

    def search(self, folder: str, key: SearchKey) -> list[int]:
        """UIDs of the folder's messages matching ``key``, ascending."""
        compiler = Compiler()
        condition = compiler.compile(key)
        with self._read() as db:
            f = self._folder_row(folder)
            rows = db.execute(
                f"SELECT m.uid FROM messages m JOIN bodies b ON b.id = m.body_id WHERE m.folder_id = ? AND ({condition}) ORDER BY m.uid",
                [f.id, *compiler.params],
            ).fetchall()
        return [r[0] for r in rows]

    # ---- message content ------------------------------------------------------------------------
    def header(self, body_id: int) -> bytes:
        """The raw header block, including the blank line that ends it."""
        return self.headers([body_id]).get(body_id, b"")

    def headers(self, body_ids: Iterable[int]) -> dict[int, bytes]:
        return {k: bytes(v) for k, v in self._body_column(body_ids, "header").items()}

    def envelopes(self, body_ids: Iterable[int]) -> dict[int, str]:
        """ENVELOPE data computed at append time (JSON), for many messages in one query."""
        return self._body_column(body_ids, "envelope")

    def structures(self, body_ids: Iterable[int]) -> dict[int, str]:
        """The MIME structure computed at append time (JSON), for many messages in one query."""
        return self._body_column(body_ids, "structure")

    def structure(self, body_id: int) -> str:
        return self.structures([body_id]).get(body_id, "{}")

    def _body_column(
        self, body_ids: Iterable[int], column: Literal["header", "envelope", "bodystructure", "structure"]
    ) -> dict:
        table = _BODY_COLUMNS[column]
        wanted = sorted(set(body_ids))
        found: dict[int, object] = {}
        with self._read() as db:
            for chunk in _chunks(wanted, 500):
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT id, {column} FROM {table} WHERE id IN ({marks})", chunk).fetchall())
        return found

    # ---- FETCH content, from what was computed at append time ------------------------------------
    def envelope_values(self, body_ids: Iterable[int]) -> dict[int, list]:
        """IMAP ENVELOPE (RFC 9051 §7.5.2) per body, as nested values: list, str/bytes, int, None (NIL)."""
        return {k: imapvalue.loads(v) for k, v in self._body_column(body_ids, "envelope").items()}

    def bodystructure_values(self, body_ids: Iterable[int], *, extensible: bool = True) -> dict[int, list]:
        """IMAP BODYSTRUCTURE (``extensible``) or BODY per body, as nested values."""
        if extensible:
            return {k: imapvalue.loads(v) for k, v in self._body_column(body_ids, "bodystructure").items()}
        return {k: mime.body(self._parsed(k, v)) for k, v in self._body_column(body_ids, "structure").items()}

    def section(self, body_id: int, section: str) -> bytes | None:
        """BODY[section] octets (RFC 9051 §6.4.5): "", "HEADER", "HEADER.FIELDS (A B)", "HEADER.FIELDS.NOT (A)",
        "TEXT", "1.2", "1.2.MIME", "3.HEADER"...; None when the message has no such part. Partial ranges are
        the caller's. Raises ``InvalidSection`` (IMAP BAD) for bad syntax."""
        return self.sections([body_id], section).get(body_id)

    def sections(self, body_ids: Iterable[int], section: str) -> dict[int, bytes | None]:
        """``section`` of many messages; top-level header fetches read only the stored header blocks."""
        spec = mime.parse_section(section)
        wanted = sorted(set(body_ids))
        if not spec.parts and spec.text.startswith("HEADER"):
            out: dict[int, bytes | None] = {}
            for body_id, header in self.headers(wanted).items():
                top = _HeaderBlock(0, len(header))
                if spec.text == "HEADER":
                    out[body_id] = header
                else:
                    out[body_id] = header_fields(header, top, spec.fields, exclude=spec.text == "HEADER.FIELDS.NOT")
            return out
        structures = self._body_column(wanted, "structure")
        return {
            body_id: mime.section_bytes(self.raw(body_id), self._parsed(body_id, text), spec)
            for body_id, text in structures.items()
        }

    def binary_section(self, body_id: int, part: str) -> bytes | None:
        """BINARY[part] (RFC 3516 / RFC 9051 §6.4.5): the decoded content of a part; None when absent.
        Raises ``UnknownEncoding`` (IMAP NO [UNKNOWN-CTE]) for a transfer encoding it cannot decode."""
        text = self._body_column([body_id], "structure").get(body_id)
        if text is None:
            return None
        try:
            return mime.binary_bytes(self.raw(body_id), self._parsed(body_id, text), part)
        except mime.UnknownTransferEncoding as exc:
            raise UnknownEncoding(str(exc)) from None

    def binary_size(self, body_id: int, part: str) -> int | None:
        text = self._body_column([body_id], "structure").get(body_id)
        if text is None:
            return None
        try:
            return mime.binary_size(self.raw(body_id), self._parsed(body_id, text), part)
        except mime.UnknownTransferEncoding as exc:
            raise UnknownEncoding(str(exc)) from None

    def _parsed(self, body_id: int, text: str) -> mime.ParsedMessage:
        cached = self._parsed_cache.get(body_id)
        if cached is None:
            cached = mime.ParsedMessage.from_json(text)
            if len(self._parsed_cache) >= 256:
                self._parsed_cache.pop(next(iter(self._parsed_cache)))
            self._parsed_cache[body_id] = cached
        return cached

    def raw(self, body_id: int) -> bytes:
        """The message exactly as it was stored."""
        with self._read() as db:
            row = db.execute(
                "SELECT c.skeleton, b.splices FROM bodies b JOIN body_content c ON c.id = b.id WHERE b.id = ?",
                (body_id,),
            ).fetchone()
            if row is None:
                return b""
            skeleton = zlib.decompress(row[0])
            out, pos_skeleton, pos_raw = bytearray(), 0, 0
            for offset, length, digest_hex in json.loads(row[1]):
                take = offset - pos_raw
                out += skeleton[pos_skeleton : pos_skeleton + take]
                pos_skeleton += take
                packing, stored = db.execute(
                    "SELECT packing, data FROM attachments WHERE digest = ?", (bytes.fromhex(digest_hex),)
                ).fetchone()
                out += attachments.unpack(packing, stored)
                pos_raw = offset + length
            out += skeleton[pos_skeleton:]
        return bytes(out)

    # ---- the sealed spool -----------------------------------------------------------------------
    def drain(self, spool: Spool, private_key: bytes) -> DrainResult:
        """Move sealed mail from the spool into INBOX in arrival order, exactly once.

        Each message is appended in the same transaction that records its spool sequence number as
        drained, so a crash at any point either keeps both or neither; records are deleted from the
        spool only afterwards. Drained mail bypasses the quota: it was accepted already.
        """
        drained, failed = 0, list(json.loads(str(self._meta_read("spool_failed", "[]"))))
        last = int(self._meta_read("spool_seq", 0))
        for seq, sealed in spool.pending(last):
            try:
                received_at, folder, raw = open_message(private_key, self.mailbox_id, sealed)
            except SealError:
                failed.append(seq)
                with self._write():
                    self._set_meta("spool_seq", seq)
                    self._set_meta("spool_failed", json.dumps(failed))
                continue
            indexed = index_message(raw)
            with self._write() as events:
                if int(self._meta("spool_seq", 0)) >= seq:  # another process drained it meanwhile
                    continue
                target = (
                    folder
                    if self.db.execute("SELECT 1 FROM folders WHERE name = ? AND noselect = 0", (folder,)).fetchone()
                    else INBOX
                )
                self._append_locked(target, raw, indexed, (), received_at, False, events)
                self._set_meta("spool_seq", seq)
            drained += 1
            last = seq
        last = int(self._meta_read("spool_seq", 0))
        if last:
            spool.delete_through(last, keep=frozenset(failed))
        return DrainResult(drained, tuple(failed))

    def _meta_read(self, key: str, default: object) -> object:
        with self._read():
            return self._meta(key, default)

    # ---- integrity and snapshots ----------------------------------------------------------------
    def integrity_check(self) -> str:
        with self._read() as db:
            return db.execute("PRAGMA integrity_check").fetchone()[0]

    def snapshot(self, dest: Path) -> SnapshotInfo:
        """VACUUM INTO ``dest``: a compact copy encrypted with the same key, verified and hashed.

        SQLCipher writes fresh random IVs, so two snapshots of the same data never hash alike; the
        mailbox's write generation tells instead whether anything changed since the snapshot at
        ``dest`` (then it is kept as it is and reported unchanged).
        """
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker = dest.with_name(dest.name + ".json")
        previous = json.loads(marker.read_text()) if marker.exists() else {}
        generation = int(self._meta_read("generation", 0))
        if previous.get("generation") == generation and dest.exists() and _sha256_file(dest) == previous.get("sha256"):
            return SnapshotInfo(dest, previous["sha256"], dest.stat().st_size, changed=False)
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.unlink(missing_ok=True)
        with self._read() as db:
            db.execute("VACUUM INTO ?", (str(tmp),))
        check = open_encrypted(tmp, self._key)
        try:
            result = check.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            check.close()
        if result != "ok":
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"snapshot failed its integrity check: {result}")
        digest = _sha256_file(tmp)
        os.replace(tmp, dest)
        marker.write_text(json.dumps({"generation": generation, "sha256": digest}) + "\n")
        return SnapshotInfo(dest, digest, dest.stat().st_size, changed=previous.get("sha256") != digest)


@dataclass(frozen=True, slots=True)
class _HeaderBlock:
    """Offsets of a top-level header inside its stored header block (it starts at 0)."""

    header_start: int
    header_end: int


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
