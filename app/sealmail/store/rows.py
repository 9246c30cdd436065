"""Row-level steps shared by the folder and message parts, always inside an open transaction.

Nothing here takes a lock or opens a transaction: the public methods of ``Folders`` and
``Messages`` do, then combine these steps (a rename of INBOX moves its messages; a drain appends).
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Iterable
from datetime import datetime

from sealmail.store import attachments, sortkeys, textindex
from sealmail.store import events as ev
from sealmail.store.errors import FolderNotFound
from sealmail.store.indexing import Indexed
from sealmail.store.mailboxdb import Events, MailboxDB, as_int, chunks
from sealmail.store.model import (
    FOLDER_COLUMNS,
    INFO_COLUMNS,
    MAX_KEYWORDS,
    AppendResult,
    CopyResult,
    Folder,
    FolderRow,
    InfoRow,
    MessageInfo,
    flags_to_columns,
    folder_from_row,
    info_from_row,
    line_sizes,
    new_object_id,
    normalize_folder_name,
)
from sealmail.timecodec import format_time

ATTACHMENT_MIN = 4096  # octets: smaller attachment bodies stay inline in the message skeleton
_COMPRESS_LEVEL = 6


class MessageRows:
    """Folder lookups and message/body rows on the mailbox's one connection."""

    def __init__(self, db: MailboxDB) -> None:
        self._db = db

    # ---- folders --------------------------------------------------------------------------------
    def folder_row(self, name: str, *, selectable: bool = True) -> Folder:
        row: FolderRow | None = self._db.conn.execute(
            f"SELECT {FOLDER_COLUMNS} FROM folders WHERE name = ?", (normalize_folder_name(name),)
        ).fetchone()
        if row is None or (selectable and row[7]):
            raise FolderNotFound(f"folder {name!r} does not exist")
        return folder_from_row(row)

    def folder_by_id(self, folder_id: int) -> Folder:
        row: FolderRow = self._db.conn.execute(
            f"SELECT {FOLDER_COLUMNS} FROM folders WHERE id = ?", (folder_id,)
        ).fetchone()
        return folder_from_row(row)

    def new_uidvalidity(self) -> int:
        # Never repeats, even when a folder is deleted and made again in the same second.
        last = as_int(self._db.meta("uidvalidity_last", 0))
        value = max(int(time.time()), last + 1)
        self._db.set_meta("uidvalidity_last", value)
        return value

    def insert_folder(self, name: str, special_use: str | None) -> int:
        cur = self._db.conn.execute(
            "INSERT INTO folders (name, special_use, uidvalidity, object_id) VALUES (?, ?, ?, ?)",
            (name, special_use, self.new_uidvalidity(), new_object_id("F")),
        )
        return as_int(cur.lastrowid)

    # ---- messages -------------------------------------------------------------------------------
    def infos(self, folder_id: int, uids: Iterable[int]) -> list[MessageInfo]:
        wanted = sorted(set(uids))
        rows: list[InfoRow] = []
        for chunk in chunks(wanted, 500):
            marks = ",".join("?" * len(chunk))
            rows += self._db.conn.execute(
                f"SELECT {INFO_COLUMNS} FROM messages WHERE folder_id = ? AND uid IN ({marks})",
                [folder_id, *chunk],
            ).fetchall()
        rows.sort(key=lambda r: r[0])
        return [info_from_row(r) for r in rows]

    def append(
        self,
        folder_name: str,
        raw: bytes,
        indexed: Indexed,
        flags: Iterable[str],
        when: datetime,
        enforce_quota: bool,
        events: Events,
    ) -> AppendResult:
        folder = self.folder_row(folder_name)
        if enforce_quota:
            self._db.check_quota(len(raw))
        body_id = self.store_body(raw, indexed)
        bits, keywords = flags_to_columns(flags)
        keywords = self.register_keywords(keywords)
        uid, modseq = folder.uidnext, folder.highestmodseq + 1
        self._db.conn.execute(
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
                *line_sizes(raw),
            ),
        )
        self._db.conn.execute(
            "UPDATE folders SET uidnext = ?, highestmodseq = ? WHERE id = ?", (uid + 1, modseq, folder.id)
        )
        events.append(ev.MessagesAdded(self._db.mailbox_id, folder.id, (uid,), modseq))
        return AppendResult(folder.uidvalidity, uid, modseq)

    def register_keywords(self, keywords: list[str]) -> list[str]:
        """Keep the first spelling of each keyword; refuse a flood of new ones."""
        db = self._db.conn
        result = []
        for word in keywords:
            row: tuple[str] | None = db.execute("SELECT name FROM keyword_names WHERE name = ?", (word,)).fetchone()
            if row is None:
                count = self._db.scalar_int("SELECT count(*) FROM keyword_names")
                if count >= MAX_KEYWORDS:
                    continue
                db.execute("INSERT INTO keyword_names (name) VALUES (?)", (word,))
                result.append(word)
            else:
                result.append(row[0])
        return result

    def copy(self, src: Folder, uids: list[int], dst: Folder, *, move: bool, events: Events) -> CopyResult:
        db = self._db.conn
        infos = self.infos(src.id, uids)
        if not infos:
            return CopyResult(dst.uidvalidity, ())
        dst = self.folder_by_id(dst.id)
        uid, modseq = dst.uidnext, dst.highestmodseq + 1
        pairs = []
        for info in infos:
            row = db.execute(
                "SELECT flags, keywords, crlf_size, utf8_header, ascii_size FROM messages WHERE folder_id = ? AND uid = ?",
                (src.id, info.uid),
            ).fetchone()
            db.execute(
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
            db.execute("UPDATE bodies SET refcount = refcount + 1 WHERE id = ?", (info.body_id,))
            pairs.append((info.uid, uid))
            uid += 1
        db.execute("UPDATE folders SET uidnext = ?, highestmodseq = ? WHERE id = ?", (uid, modseq, dst.id))
        events.append(ev.MessagesAdded(self._db.mailbox_id, dst.id, tuple(p[1] for p in pairs), modseq))
        if move:
            self.remove(src.id, [p[0] for p in pairs], events=events)
        return CopyResult(dst.uidvalidity, tuple(pairs))

    def remove(self, folder_id: int, uids: list[int] | None, events: Events | None = None) -> None:
        db = self._db.conn
        if uids is None:
            uids = [r[0] for r in db.execute("SELECT uid FROM messages WHERE folder_id = ?", (folder_id,))]
        if not uids:
            return
        folder = self.folder_by_id(folder_id)
        modseq = folder.highestmodseq + 1
        for chunk in chunks(sorted(uids), 500):
            marks = ",".join("?" * len(chunk))
            bodies: list[tuple[int]] = db.execute(
                f"SELECT body_id FROM messages WHERE folder_id = ? AND uid IN ({marks})", [folder_id, *chunk]
            ).fetchall()
            db.execute(f"DELETE FROM messages WHERE folder_id = ? AND uid IN ({marks})", [folder_id, *chunk])
            db.executemany(
                "INSERT OR REPLACE INTO expunged (folder_id, uid, modseq) VALUES (?, ?, ?)",
                [(folder_id, u, modseq) for u in chunk],
            )
            for (body_id,) in bodies:
                self.release_body(body_id)
        db.execute("UPDATE folders SET highestmodseq = ? WHERE id = ?", (modseq, folder_id))
        if events is not None:
            events.append(ev.MessagesExpunged(self._db.mailbox_id, folder_id, tuple(sorted(uids)), modseq))

    # ---- bodies ---------------------------------------------------------------------------------
    def store_body(self, raw: bytes, indexed: Indexed) -> int:
        db = self._db.conn
        digest = hashlib.sha256(raw).digest()
        row: tuple[int] | None = db.execute("SELECT id FROM bodies WHERE digest = ?", (digest,)).fetchone()
        if row is not None:
            db.execute("UPDATE bodies SET refcount = refcount + 1 WHERE id = ?", (row[0],))
            return row[0]
        skeleton, splices = self._cut_attachments(raw, indexed.attachments)
        cur = db.execute(
            "INSERT INTO bodies (digest, size, sent_date, sent_day, refcount, splices, object_id) "
            "VALUES (?, ?, ?, ?, 1, ?, ?)",
            (
                digest,
                len(raw),
                format_time(indexed.sent_date) if indexed.sent_date else None,
                indexed.sent_day.isoformat() if indexed.sent_day else None,
                json.dumps(splices),
                new_object_id("M"),
            ),
        )
        body_id = as_int(cur.lastrowid)
        db.execute("INSERT INTO body_envelopes (id, envelope) VALUES (?, ?)", (body_id, indexed.envelope))
        db.execute("INSERT INTO body_headers (id, header) VALUES (?, ?)", (body_id, indexed.header))
        db.execute(
            "INSERT INTO body_structures (id, bodystructure, structure) VALUES (?, ?, ?)",
            (body_id, indexed.bodystructure, indexed.structure),
        )
        db.execute(
            "INSERT INTO body_content (id, skeleton) VALUES (?, ?)", (body_id, zlib.compress(skeleton, _COMPRESS_LEVEL))
        )
        if indexed.text is not None:  # else store.textindex extracts and indexes it later, in batches
            textindex.write_now(self._db, body_id, indexed.text)
        if indexed.sortkeys is not None:
            sortkeys.save(self._db, body_id, indexed.sortkeys)
        return body_id

    def _cut_attachments(self, raw: bytes, ranges: list[tuple[int, int]]) -> tuple[bytes, list[tuple[int, int, str]]]:
        """Move large attachment bodies into the shared, deduplicated attachments table."""
        db = self._db.conn
        skeleton, splices, pos = bytearray(), [], 0
        for start, end in sorted(ranges):
            if start < pos or end > len(raw) or end - start < ATTACHMENT_MIN:
                continue
            data = raw[start:end]
            digest = hashlib.sha256(data).digest()
            cur = db.execute("UPDATE attachments SET refcount = refcount + 1 WHERE digest = ?", (digest,))
            if cur.rowcount == 0:
                packing, stored = attachments.pack(data)
                db.execute(
                    "INSERT INTO attachments (digest, size, packing, data, refcount) VALUES (?, ?, ?, ?, 1)",
                    (digest, len(data), packing, stored),
                )
            skeleton += raw[pos:start]
            splices.append((start, end - start, digest.hex()))
            pos = end
        skeleton += raw[pos:]
        return bytes(skeleton), splices

    def release_body(self, body_id: int) -> None:
        db = self._db.conn
        db.execute("UPDATE bodies SET refcount = refcount - 1 WHERE id = ?", (body_id,))
        row: tuple[int, str] | None = db.execute(
            "SELECT refcount, splices FROM bodies WHERE id = ?", (body_id,)
        ).fetchone()
        if row is None or row[0] > 0:
            return
        for _offset, _length, digest_hex in json.loads(row[1]):
            digest = bytes.fromhex(digest_hex)
            db.execute("UPDATE attachments SET refcount = refcount - 1 WHERE digest = ?", (digest,))
            db.execute("DELETE FROM attachments WHERE digest = ? AND refcount <= 0", (digest,))
        textindex.forget(self._db, body_id)
        for table in (
            "body_content",
            "body_envelopes",
            "body_headers",
            "body_structures",
            "body_previews",
            "body_sortkeys",
            "learn_jobs",
            "bodies",
        ):
            db.execute(f"DELETE FROM {table} WHERE id = ?", (body_id,))
