"""The message part of a mailbox: append and drain, listings and changes, flags, copy/move, expunge,
search and the POP3 maildrop view."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import cast

from sealmail.crypto.sealed import SealError
from sealmail.store import events as ev
from sealmail.store import textindex
from sealmail.store.errors import FolderExists, InvalidFolderName
from sealmail.store.folders import Folders
from sealmail.store.indexing import Indexed, index_message
from sealmail.store.learnjobs import LearnJobs
from sealmail.store.mailboxdb import MailboxDB, as_int, chunks
from sealmail.store.model import (
    INBOX,
    INFO_COLUMNS,
    SYSTEM_FLAGS,
    AppendResult,
    CopyResult,
    DrainResult,
    Filing,
    InfoRow,
    Maildrop,
    MaildropEntry,
    MessageInfo,
    StoreMode,
    StoreResult,
    flags_to_columns,
    info_from_row,
    line_sizes,
    normalize_folder_name,
)
from sealmail.store.rows import MessageRows
from sealmail.store.search import Compiler, SearchKey
from sealmail.store.sections import Sections
from sealmail.store.spool import Spool, open_message
from sealmail.store.textindex import TextIndex

# Spool records drained in one transaction: at most this many, or this many octets of mail.
DRAIN_BATCH = 32
DRAIN_BATCH_OCTETS = 4 << 20
# (seq, received at, where it is filed, message, what was computed from it), opened and parsed outside the lock.
_Drained = tuple[int, datetime, Filing, bytes, Indexed]
# (uid, body_id, crlf_size, ascii_size, utf8_header): sizes are NULL for mail stored before they were kept.
_DropRow = tuple[int, int, int | None, int | None, int | None]


class Messages:
    def __init__(
        self,
        db: MailboxDB,
        rows: MessageRows,
        sections: Sections,
        text: TextIndex,
        learning: LearnJobs,
        folders: Folders,
    ) -> None:
        self._db = db
        self._rows = rows
        self._folders = folders  # the drain creates the folders a Sieve script's ``:create`` names
        self._sections = sections
        self._text = text
        self._learning = learning

    # ---- adding ---------------------------------------------------------------------------------
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
        indexed = index_message(raw, text=False)  # parsing happens outside the lock; text: textindex
        when = (internal_date or datetime.now(UTC)).astimezone(UTC)
        with self._db.write() as events:
            return self._rows.append(folder, raw, indexed, flags, when, enforce_quota, events)

    def append_many(
        self, folder: str, items: Iterable[tuple[bytes, Iterable[str], datetime | None]], *, enforce_quota: bool = True
    ) -> list[AppendResult]:
        """Append several messages in one transaction (imports, batched delivery); all or none.

        Their texts go into the search index in the same transaction (one index segment for them all).
        """
        prepared = [
            (raw, index_message(raw), flags, (when or datetime.now(UTC)).astimezone(UTC)) for raw, flags, when in items
        ]
        with self._db.write() as events:
            caught_up = textindex.caught_up(self._db)
            results = [
                self._rows.append(folder, raw, indexed, flags, when, enforce_quota, events)
                for raw, indexed, flags, when in prepared
            ]
            if caught_up:  # nothing waited before these, and these are indexed: the mark moves past them
                textindex.mark_all_indexed(self._db)
            return results

    def drain(self, spool: Spool, private_key: bytes) -> DrainResult:
        """Move sealed mail from the spool into its folders in arrival order, exactly once.

        Each message is appended in the same transaction that records its spool sequence number as
        drained, so a crash at any point either keeps both or neither; records are deleted from the
        spool only afterwards. Records that wait together are appended together, up to
        ``DRAIN_BATCH`` messages or ``DRAIN_BATCH_OCTETS`` per transaction (one commit and fsync for
        them). Drained mail bypasses the quota: it was accepted already.
        """
        db = self._db
        drained, failed = self._retry_failed(spool, private_key)
        last = as_int(db.meta_read("spool_seq", 0))
        batch: list[_Drained] = []
        octets = 0
        for seq, sealed in spool.pending(last):
            try:
                received_at, filing, raw = open_message(private_key, db.mailbox_id, sealed)
            except SealError:
                drained += self._drain_batch(batch)
                batch, octets = [], 0
                failed.append(seq)
                with db.write():
                    db.set_meta("spool_seq", seq)
                    db.set_meta("spool_failed", json.dumps(failed))
                continue
            batch.append((seq, received_at, filing, raw, index_message(raw, text=False)))
            octets += len(raw)
            if len(batch) >= DRAIN_BATCH or octets >= DRAIN_BATCH_OCTETS:
                drained += self._drain_batch(batch)
                batch, octets = [], 0
        drained += self._drain_batch(batch)
        last = as_int(db.meta_read("spool_seq", 0))
        if last:
            spool.delete_through(last, keep=frozenset(failed))
        return DrainResult(drained, tuple(failed))

    def _retry_failed(self, spool: Spool, private_key: bytes) -> tuple[int, list[int]]:
        """Records an earlier drain could not open, tried again; returns (filed now, still failing).

        A drainer older than a record's payload leaves it so (a Sieve filing, version 2, sealed by an
        upgraded MX while this host still ran the version before). Each one that opens now is filed
        in the transaction that takes it off the list, so it lands once whoever retries it."""
        db, done = self._db, 0
        failed: list[int] = list(json.loads(str(db.meta_read("spool_failed", "[]"))))
        for seq, sealed in spool.records(failed):
            try:
                received_at, filing, raw = open_message(private_key, db.mailbox_id, sealed)
            except SealError:
                continue  # still unreadable: it stays for inspection
            indexed = index_message(raw, text=False)
            with db.write() as events:
                current: list[int] = list(json.loads(str(db.meta("spool_failed", "[]"))))
                if seq not in current:  # another process filed it meanwhile
                    continue
                for folder, flags in self._placements(filing).items():
                    self._rows.append(folder, raw, indexed, flags, received_at, False, events)
                current.remove(seq)
                db.set_meta("spool_failed", json.dumps(current))
            done += 1
        if done:
            failed = list(json.loads(str(db.meta_read("spool_failed", "[]"))))
        return done, failed

    def _drain_batch(self, batch: list[_Drained]) -> int:
        if not batch:
            return 0
        db, done = self._db, 0
        with db.write() as events:
            for seq, received_at, filing, raw, indexed in batch:
                if as_int(db.meta("spool_seq", 0)) >= seq:  # another process drained it meanwhile
                    continue
                # Every copy in the transaction that marks the record drained: each lands exactly once.
                for folder, flags in self._placements(filing).items():
                    self._rows.append(folder, raw, indexed, flags, received_at, False, events)
                db.set_meta("spool_seq", seq)
                done += 1
        return done

    def _placements(self, filing: Filing) -> dict[str, tuple[str, ...]]:
        """Folder -> flags for each copy, once per folder (RFC 5228 §2.10.3: flags of both).

        A folder that is missing is created when the script said ``:create`` (RFC 5490 §3.2); else
        the copy goes to the fallback (RFC 5228 §4.1: keep), and to INBOX when that is missing too."""
        found: dict[str, tuple[str, ...]] = {}
        for copy in filing.copies:
            folder = self._usable(copy.folder, copy.create) or self._usable(filing.fallback, False) or INBOX
            earlier = found.get(folder, ())
            seen = {f.lower() for f in earlier}
            found[folder] = earlier + tuple(f for f in copy.flags if f.lower() not in seen)
        return found

    def _usable(self, name: str, create: bool) -> str | None:
        """The folder's normal name if it takes mail now (made first when ``create``), else None."""
        try:
            name = normalize_folder_name(name)
        except InvalidFolderName:
            return None
        if self._db.exists("SELECT 1 FROM folders WHERE name = ? AND noselect = 0", (name,)):
            return name
        if not create:
            return None
        try:
            return self._folders.create_folder(name).name  # nested in the drain's transaction
        except (InvalidFolderName, FolderExists):
            return None

    # ---- reading --------------------------------------------------------------------------------
    def uids(self, folder: str) -> list[int]:
        with self._db.read() as db:
            f = self._rows.folder_row(folder)
            return [r[0] for r in db.execute("SELECT uid FROM messages WHERE folder_id = ? ORDER BY uid", (f.id,))]

    def messages(
        self, folder: str, uids: Iterable[int] | None = None, *, changed_since: int | None = None
    ) -> list[MessageInfo]:
        """Metadata of the given UIDs (all when None), ascending by UID; missing UIDs are skipped."""
        with self._db.read() as db:
            f = self._rows.folder_row(folder)
            sql = f"SELECT {INFO_COLUMNS} FROM messages WHERE folder_id = ?"
            params: list[object] = [f.id]
            if changed_since is not None:
                sql += " AND modseq > ?"
                params.append(changed_since)
            rows: list[InfoRow]
            if uids is None:
                rows = db.execute(sql + " ORDER BY uid", params).fetchall()
            else:
                wanted = sorted(set(uids))
                rows = []
                for chunk in chunks(wanted, 500):
                    marks = ",".join("?" * len(chunk))
                    rows += db.execute(sql + f" AND uid IN ({marks})", [*params, *chunk]).fetchall()
                rows.sort(key=lambda r: r[0])
        return [info_from_row(r) for r in rows]

    def maildrop(self, folder: str = INBOX) -> Maildrop:
        """The folder as a POP3 maildrop (RFC 1939 §5): UIDVALIDITY and every message's wire sizes.

        One indexed read of the small message rows, without opening any message. Messages stored
        before the sizes were recorded get them computed once here.
        """
        with self._db.read() as db:
            f = self._rows.folder_row(folder)
            rows: list[_DropRow] = db.execute(
                "SELECT uid, body_id, crlf_size, ascii_size, utf8_header FROM messages WHERE folder_id = ? ORDER BY uid",
                (f.id,),
            ).fetchall()
        missing = sorted({r[1] for r in rows if r[2] is None or r[3] is None or r[4] is None})
        if missing:
            filled = self._fill_line_sizes(missing)
            rows = [(r[0], r[1], *filled[r[1]]) if r[1] in filled else r for r in rows]
        complete = cast("list[tuple[int, int, int, int, int]]", rows)  # filled above: no NULL size remains
        return Maildrop(
            f.uidvalidity,
            tuple(MaildropEntry(uid, body, crlf, ascii, utf8 == 1) for uid, body, crlf, ascii, utf8 in complete),
        )

    def _fill_line_sizes(self, body_ids: list[int]) -> dict[int, tuple[int, int, int]]:
        found = {}
        for body_id in body_ids:
            crlf, utf8, ascii = line_sizes(self._sections.raw(body_id))
            found[body_id] = (crlf, ascii, utf8)
        with self._db.write():
            self._db.conn.executemany(
                "UPDATE messages SET crlf_size = ?, ascii_size = ?, utf8_header = ? WHERE body_id = ?",
                [(*sizes, body_id) for body_id, sizes in found.items()],
            )
        return found

    def expunged_since(self, folder: str, modseq: int) -> list[int]:
        """UIDs expunged after ``modseq`` (QRESYNC VANISHED, RFC 7162 §3.2.10)."""
        with self._db.read() as db:
            f = self._rows.folder_row(folder)
            return [
                r[0]
                for r in db.execute(
                    "SELECT uid FROM expunged WHERE folder_id = ? AND modseq > ? ORDER BY uid", (f.id, modseq)
                )
            ]

    def search(self, folder: str, key: SearchKey) -> list[int]:
        """UIDs of the folder's messages matching ``key``, ascending."""
        self._text.before_search(key)
        compiler = Compiler()
        condition = compiler.compile(key)
        with self._db.read() as db:
            f = self._rows.folder_row(folder)
            rows: list[tuple[int]] = db.execute(
                f"SELECT m.uid FROM messages m JOIN bodies b ON b.id = m.body_id WHERE m.folder_id = ? AND ({condition}) ORDER BY m.uid",
                [f.id, *compiler.params],
            ).fetchall()
        return [r[0] for r in rows]

    # ---- changing -------------------------------------------------------------------------------
    def claim_recent(self, folder: str) -> set[int]:
        """The first session to select a folder sees its \\Recent messages; later ones do not (RFC 3501 §2.3.2)."""
        db = self._db.conn
        with self._db.writer_lock():
            f = self._rows.folder_row(folder)
            rows: list[tuple[int]] = db.execute(
                "SELECT uid FROM messages WHERE folder_id = ? AND recent = 1", (f.id,)
            ).fetchall()
            if rows:
                db.execute("BEGIN IMMEDIATE")
                db.execute("UPDATE messages SET recent = 0 WHERE folder_id = ? AND recent = 1", (f.id,))
                self._db.bump_generation()
                db.execute("COMMIT")
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
        bits, keywords = flags_to_columns(flags)
        changed: list[MessageInfo] = []
        unchanged: list[MessageInfo] = []
        conflicts: list[int] = []
        with self._db.write() as events:
            f = self._rows.folder_row(folder)
            keywords = self._rows.register_keywords(keywords)
            lowered = {k.lower() for k in keywords}
            modseq = f.highestmodseq + 1
            for info in self._rows.infos(f.id, uids):
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
                self._db.conn.execute(
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
                self._db.conn.execute("UPDATE folders SET highestmodseq = ? WHERE id = ?", (modseq, f.id))
                events.append(ev.FlagsChanged(self._db.mailbox_id, f.id, tuple(i.uid for i in changed), modseq))
        return StoreResult(tuple(changed), tuple(unchanged), tuple(conflicts))

    def copy(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult:
        """COPY (RFC 9051 §6.4.7): new UIDs in the target, in source UID order; the bodies are shared.

        ``learn`` ("spam" or "ham"): the copies are also queued to be taught to the spam filter, in
        this transaction (``store.learnjobs``)."""
        with self._db.write() as events:
            src, dst = self._rows.folder_row(source), self._rows.folder_row(target)
            wanted = sorted(set(uids))
            size = (
                self._db.scalar_int(
                    f"SELECT coalesce(sum(size), 0) FROM messages WHERE folder_id = ? AND uid IN ({','.join('?' * len(wanted))})",
                    [src.id, *wanted],
                )
                if wanted
                else 0
            )
            self._db.check_quota(size)
            result = self._rows.copy(src, wanted, dst, move=False, events=events)
            if learn is not None:
                self._learning.queue(dst.id, [new for _, new in result.pairs], learn)
            return result

    def move(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult:
        """MOVE (RFC 6851): copy and expunge atomically; the quota does not change. ``learn``: as ``copy``."""
        with self._db.write() as events:
            src, dst = self._rows.folder_row(source), self._rows.folder_row(target)
            if src.id == dst.id:
                raise InvalidFolderName("source and target are the same folder")
            result = self._rows.copy(src, sorted(set(uids)), dst, move=True, events=events)
            if learn is not None:
                self._learning.queue(dst.id, [new for _, new in result.pairs], learn)
            return result

    def expunge(self, folder: str, uids: Iterable[int] | None = None) -> list[int]:
        """Remove messages flagged \\Deleted (only those in ``uids`` when given: UID EXPUNGE, RFC 4315)."""
        with self._db.write() as events:
            f = self._rows.folder_row(folder)
            rows: list[tuple[int]] = self._db.conn.execute(
                "SELECT uid FROM messages WHERE folder_id = ? AND (flags & 8) != 0", (f.id,)
            ).fetchall()
            doomed = [r[0] for r in rows]
            if uids is not None:
                allowed = set(uids)
                doomed = [u for u in doomed if u in allowed]
            self._rows.remove(f.id, doomed, events=events)
        return sorted(doomed)

    def remove(self, folder: str, uids: Iterable[int]) -> list[int]:
        """Remove exactly these messages, whatever their flags, in one transaction (POP3 UPDATE, RFC 1939 §6).

        UIDs that are gone already (another session expunged them) are skipped; returns those removed.
        """
        with self._db.write() as events:
            f = self._rows.folder_row(folder)
            present = [info.uid for info in self._rows.infos(f.id, uids)]
            self._rows.remove(f.id, present, events=events)
        return present
