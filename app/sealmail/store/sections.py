"""The content part of a mailbox: what FETCH reads (RFC 9051 §6.4.5): headers, ENVELOPE,
BODYSTRUCTURE, BODY[section], BINARY[part] and the raw message.

Mostly from what was computed at append time (``store.indexing``); the raw message is rebuilt from
its compressed skeleton and the shared attachment rows only when a section needs it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from typing import Any, Literal

from sealmail import mime
from sealmail.mime.preview import preview_text
from sealmail.mime.sections import header_fields
from sealmail.store import attachments, imapvalue
from sealmail.store.bodycache import PROCESS_BODIES, BodyCache
from sealmail.store.errors import UnknownEncoding
from sealmail.store.mailboxdb import MailboxDB, chunks

BodyColumn = Literal["header", "envelope", "bodystructure", "structure", "object_id"]
_BODY_TABLES: dict[BodyColumn, str] = {
    "object_id": "bodies",  # RFC 8474 EMAILID
    "header": "body_headers",
    "envelope": "body_envelopes",
    "bodystructure": "body_structures",
    "structure": "body_structures",
}
_PARSED_CACHE_SIZE = 256
# IMAP values as ``imapvalue.loads`` gives them: nested lists of str/bytes/int/None.
ImapValue = list[Any]


class Sections:
    def __init__(self, db: MailboxDB, bodies: BodyCache = PROCESS_BODIES) -> None:
        self._db = db
        self._parsed_cache: dict[int, mime.ParsedMessage] = {}  # bodies are immutable: safe to cache
        self._bodies = bodies
        self._owner = bodies.new_owner()

    def forget_bodies(self) -> None:
        """Drop this mailbox's messages from the process's memory (it closes)."""
        self._bodies.forget(self._owner)

    def forget_freed(self) -> None:
        """Drop the kept messages whose bodies are gone (after an expunge, a move, a folder deleted)."""
        held = self._bodies.held(self._owner)
        if not held:
            return
        alive: set[int] = set()
        with self._db.read() as db:
            for chunk in chunks(held, 500):
                marks = ",".join("?" * len(chunk))
                alive.update(b for (b,) in db.execute(f"SELECT id FROM bodies WHERE id IN ({marks})", chunk))
        self._bodies.forget(self._owner, [b for b in held if b not in alive])

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

    def _body_column(self, body_ids: Iterable[int], column: BodyColumn) -> dict[int, Any]:
        """``column`` of each body: str (JSON, or the EMAILID for ``object_id``), or bytes for ``header``."""
        table = _BODY_TABLES[column]
        wanted = sorted(set(body_ids))
        found: dict[int, Any] = {}
        with self._db.read() as db:
            for chunk in chunks(wanted, 500):
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT id, {column} FROM {table} WHERE id IN ({marks})", chunk).fetchall())
        return found

    # ---- FETCH content, from what was computed at append time ------------------------------------
    def envelope_values(self, body_ids: Iterable[int]) -> dict[int, ImapValue]:
        """IMAP ENVELOPE (RFC 9051 §7.5.2) per body, as nested values: list, str/bytes, int, None (NIL)."""
        return {k: imapvalue.loads(v) for k, v in self._body_column(body_ids, "envelope").items()}

    def bodystructure_values(self, body_ids: Iterable[int], *, extensible: bool = True) -> dict[int, ImapValue]:
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
                if spec.text == "HEADER":
                    out[body_id] = header
                else:
                    # The stored block alone is the top-level header: it starts at 0.
                    top = mime.Part(0, len(header), len(header), len(header))
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
            if len(self._parsed_cache) >= _PARSED_CACHE_SIZE:
                self._parsed_cache.pop(next(iter(self._parsed_cache)))
            self._parsed_cache[body_id] = cached
        return cached

    def email_ids(self, body_ids: Iterable[int]) -> dict[int, str]:
        """RFC 8474 EMAILID of each body (every copy of a message shares its body, hence its id)."""
        return self._body_column(body_ids, "object_id")

    def previews(self, body_ids: Iterable[int], lazy: bool = False) -> dict[int, str | None]:
        """RFC 8970 PREVIEW of each body. Made from the message the first time it is asked for and kept
        (in the encrypted file); ``lazy`` (PREVIEW (LAZY), §3.1) gives only those made already, None
        for the others."""
        wanted = sorted(set(body_ids))
        found: dict[int, str | None] = {}
        with self._db.read() as db:
            for chunk in chunks(wanted, 500):
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT id, preview FROM body_previews WHERE id IN ({marks})", chunk))
        missing = [b for b in wanted if b not in found]
        if lazy or not missing:
            return {b: found.get(b) for b in wanted}
        made = {}
        for body_id, text in self.structures(missing).items():
            made[body_id] = preview_text(self.raw(body_id), self._parsed(body_id, text))
        with self._db.write():
            self._db.conn.executemany(
                "INSERT OR IGNORE INTO body_previews (id, preview) VALUES (?, ?)", list(made.items())
            )
        found.update(made)
        return {b: found[b] for b in wanted if b in found}

    def raw(self, body_id: int) -> bytes:
        """The message exactly as it was stored."""
        return self.raws([body_id]).get(body_id, b"")

    def raws(self, body_ids: Iterable[int]) -> dict[int, bytes]:
        """Many messages exactly as stored (FETCH of many bodies): two queries for all of them.

        Every body asked for is in memory at once: callers bound the batch (FETCH by octets)."""
        out: dict[int, bytes] = {}
        wanted: list[int] = []
        for body_id in sorted(set(body_ids)):
            kept = self._bodies.get(self._owner, body_id)
            if kept is None:
                wanted.append(body_id)
            else:
                out[body_id] = kept
        if not wanted:
            return out
        rows: list[tuple[int, bytes, str]] = []
        with self._db.read() as db:
            for chunk in chunks(wanted, 500):
                marks = ",".join("?" * len(chunk))
                rows += db.execute(
                    "SELECT b.id, c.skeleton, b.splices FROM bodies b JOIN body_content c ON c.id = b.id"
                    f" WHERE b.id IN ({marks})",
                    chunk,
                ).fetchall()
            spliced = {b: json.loads(splices) for b, _, splices in rows if splices != "[]"}
            digests = sorted({bytes.fromhex(d) for splices in spliced.values() for _, _, d in splices})
            stored: dict[str, tuple[str, bytes]] = {}
            for some in chunks(digests, 500):
                marks = ",".join("?" * len(some))
                for digest, packing, data in db.execute(
                    f"SELECT digest, packing, data FROM attachments WHERE digest IN ({marks})", some
                ):
                    stored[digest.hex()] = (packing, data)
        unpacked: dict[str, bytes] = {}  # an attachment shared by several of these messages: once
        for body_id, compressed, _ in rows:
            skeleton = zlib.decompress(compressed)
            splices = spliced.get(body_id)
            if splices is None:
                out[body_id] = skeleton  # no attachment cut out: the skeleton is the message
                self._bodies.put(self._owner, body_id, skeleton)
                continue
            pieces, pos_skeleton, pos_raw = [], 0, 0
            for offset, length, digest_hex in splices:
                take = offset - pos_raw
                pieces.append(skeleton[pos_skeleton : pos_skeleton + take])
                pos_skeleton += take
                content = unpacked.get(digest_hex)
                if content is None:
                    content = unpacked[digest_hex] = attachments.unpack(*stored[digest_hex])
                pieces.append(content)
                pos_raw = offset + length
            pieces.append(skeleton[pos_skeleton:])
            out[body_id] = b"".join(pieces)
            self._bodies.put(self._owner, body_id, out[body_id])
        return out
