"""FETCH (RFC 9051 §6.4.5) over many messages: bulk store reads per chunk, streamed out.

Messages are read in chunks of at most ``FETCH_CHUNK`` messages (and ``FETCH_CHUNK_BYTES`` of content),
one worker-thread hop each, and written out between hops so memory stays bounded however slowly the
client reads. The hot path — clients listing a folder with FETCH 1:* (FLAGS ENVELOPE ...) — builds
one text per chunk, reuses the ENVELOPE/BODYSTRUCTURE answers and folder metadata the process
remembers (``caches``), and reads the next chunk while this one goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sealmail.imap import envelopes, wire
from sealmail.imap import parser as p
from sealmail.imap.caches import TEXT_CACHE_ENTRIES, folder_infos
from sealmail.store.mailbox import MessageInfo

if TYPE_CHECKING:
    from sealmail.imap.selection import Selected
    from sealmail.imap.session import Session
    from sealmail.store.contract import MailboxOps as Mailbox

FETCH_CHUNK = 1000
FETCH_CHUNK_BYTES = 4 * 1024 * 1024
_CACHEABLE = ("ENVELOPE", "BODYSTRUCTURE")
_SEEN_SETTING = frozenset(("BODY[", "BINARY[", "RFC822", "RFC822.TEXT"))
# What one chunk's store reads give: item name -> {body id -> value}; the values differ per item
# (envelope and body structure trees, header and section octets), so they are Any here.
ChunkData = dict[str, Any]


class Fetcher:
    """FETCH over many messages: bulk store reads per chunk, one worker-thread hop each, streamed out."""

    def __init__(self, session: Session, sel: Selected, atts: list[p.FetchAtt], changed_since: int | None) -> None:
        self.s = session
        self.sel = sel
        self.atts = list(dict.fromkeys(atts))
        self.changed_since = changed_since
        kinds = {a.kind for a in self.atts}
        self.kinds = kinds
        self.sets_seen = not sel.readonly and any(a.kind in _SEEN_SETTING and not a.peek for a in self.atts)
        self.contents = [a for a in self.atts if a.kind in ("BODY[", "BINARY[", "BINARY.SIZE")]
        self.whole = "RFC822" in kinds or any(a.kind == "BODY[" and a.section == "" for a in self.atts)
        self.text_path = not self.contents and not kinds & {"RFC822", "RFC822.HEADER", "RFC822.TEXT"}
        self.cache: dict[tuple[str, int, bool], str] | None = None
        if self.text_path and not self.sets_seen and session.mbox is not None and kinds & set(_CACHEABLE):
            self.cache = session.caches.of(session.mbox).texts

    async def run(self, targets: list[tuple[int, int]]) -> None:
        s, sel = self.s, self.sel
        assert s.mbox is not None
        mailbox = s.mbox.mailbox
        everything = len(targets) == len(sel.uids)
        name = sel.name
        changed_since = self.changed_since
        uids = [u for _, u in targets]

        folders = s.caches.of(s.mbox).folders

        def load_infos() -> list[MessageInfo]:
            if everything and changed_since is None:
                return folder_infos(mailbox, name, folders)
            return mailbox.messages(name, None if everything else uids, changed_since=changed_since)

        infos = [i for i in await s.mbox.run(load_infos) if sel.seq_of(i.uid) and i.uid not in sel.ghosts]
        if not self.sets_seen:
            await self._stream(mailbox, list(self._chunks(infos)))
            return
        seen_changed: set[int] = set()
        for batch in self._chunks(infos):
            chunk = batch
            if self.sets_seen:
                unseen = [i.uid for i in chunk if "\\Seen" not in i.flags]
                if unseen:
                    # RFC 9051 §6.4.5: BODY[...] (not PEEK) sets \Seen; the new flags are reported
                    result = await s.mbox.store_flags(name, unseen, "add", ["\\Seen"])
                    if result.changed:
                        sel.note_own(result.changed[0].modseq)
                    updated = {i.uid: i for i in result.changed}
                    seen_changed.update(updated)
                    chunk = [updated.get(i.uid, i) for i in chunk]
            data = await s.mbox.run(self._load, mailbox, chunk)
            self._write(chunk, data, seen_changed)
            await s.conn.flush()

    async def _stream(self, mailbox: Mailbox, batches: list[list[MessageInfo]]) -> None:
        """Read-only FETCH: the store loads the next batch while this one is written out (two at most)."""
        s = self.s
        assert s.mbox is not None
        pending: asyncio.Future[ChunkData] | None = None
        try:
            known = [self._cached(batch) for batch in batches]
            for k, batch in enumerate(batches):
                if pending is None:
                    pending = asyncio.ensure_future(s.mbox.run(self._load, mailbox, batch, known[k]))
                data = await pending
                pending = None
                if k + 1 < len(batches):
                    pending = asyncio.ensure_future(s.mbox.run(self._load, mailbox, batches[k + 1], known[k + 1]))
                if self.text_path:
                    self._write_text(batch, data, known[k])
                else:
                    self._write(batch, data, set())
                await s.conn.flush()
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending

    def _chunks(self, infos: list[MessageInfo]) -> Iterable[list[MessageInfo]]:
        """Batches for one store hop each: up to FETCH_CHUNK messages, and when message content is
        asked for, up to FETCH_CHUNK_BYTES of it (one large message alone), so memory stays bounded
        whatever the client asks and however slowly it reads (output is flushed between batches)."""
        with_content = bool(self.contents) or bool(self.kinds & {"RFC822", "RFC822.TEXT"})
        chunk: list[MessageInfo] = []
        size = 0
        for info in infos:
            if chunk and (len(chunk) >= FETCH_CHUNK or (with_content and size + info.size > FETCH_CHUNK_BYTES)):
                yield chunk
                chunk, size = [], 0
            chunk.append(info)
            size += info.size
        if chunk:
            yield chunk

    def _cached(self, batch: list[MessageInfo]) -> dict[str, dict[int, str]]:
        """The batch's answers already in the text cache, per item (looked up on the event loop)."""
        found: dict[str, dict[int, str]] = {kind: {} for kind in _CACHEABLE}
        cache = self.cache
        if cache is None:
            return found
        utf8 = self.s.utf8
        for kind in _CACHEABLE:
            if kind in self.kinds:
                hits = found[kind]
                for info in batch:
                    text = cache.get((kind, info.body_id, utf8))
                    if text is not None:
                        hits[info.body_id] = text
        return found

    def _load(
        self, mailbox: Mailbox, chunk: list[MessageInfo], known: dict[str, dict[int, str]] | None = None
    ) -> ChunkData:
        """Runs on the mailbox's worker thread: every store read for one chunk."""
        body_ids = [i.body_id for i in chunk]
        kinds = self.kinds
        known = known or {}
        data: ChunkData = {}
        if "ENVELOPE" in kinds:
            skip = known.get("ENVELOPE", {})
            # the stored JSON: most envelopes become their answer without being parsed (imap.envelopes)
            data["ENVELOPE"] = mailbox.envelopes([b for b in body_ids if b not in skip])
        if "BODYSTRUCTURE" in kinds:
            skip = known.get("BODYSTRUCTURE", {})
            data["BODYSTRUCTURE"] = mailbox.bodystructure_values(
                [b for b in body_ids if b not in skip], extensible=True
            )
        if "BODY" in kinds:
            data["BODY"] = mailbox.bodystructure_values(body_ids, extensible=False)
        if "EMAILID" in kinds:
            data["EMAILID"] = mailbox.email_ids(body_ids)
        if "PREVIEW" in kinds:
            lazy = all(a.lazy for a in self.atts if a.kind == "PREVIEW")
            data["PREVIEW"] = mailbox.previews(body_ids, lazy)
        if "RFC822.HEADER" in kinds or any(a.kind == "BODY[" and a.section == "HEADER" for a in self.contents):
            data["HEADER"] = mailbox.headers(body_ids)
        raw: dict[int, bytes] = {}
        if self.whole:
            stored = mailbox.raws(body_ids)  # one call for the chunk (one round trip to a remote store)
            # A body another process freed since the chunk's rows were read: empty, as raw() gave.
            raw = {b: stored.get(b, b"") for b in body_ids}
            data["RAW"] = raw
        if "RFC822.TEXT" in kinds:
            data["TEXT"] = {b: mailbox.section(b, "TEXT") for b in dict.fromkeys(body_ids)}
        for index, att in enumerate(self.contents):
            if att.kind == "BODY[" and att.section in ("", "HEADER"):
                continue
            found: dict[int, bytes | None] = {}
            for b in dict.fromkeys(body_ids):
                if att.kind == "BODY[":
                    found[b] = mailbox.section(b, att.section)
                else:
                    found[b] = mailbox.binary_section(b, att.section)
            data[f"C{index}"] = found
        return data

    def _write(self, chunk: list[MessageInfo], data: ChunkData, seen_changed: set[int]) -> None:
        if not self.contents and not self.kinds & {"RFC822", "RFC822.HEADER", "RFC822.TEXT"} and not seen_changed:
            self._write_text(chunk, data)
            return
        s, sel = self.s, self.sel
        utf8 = s.utf8
        out = s.conn.write
        atts = self.atts
        kinds = self.kinds
        add_flags = "FLAGS" not in kinds
        condstore = s.condstore
        lines: list[bytes] = []
        for info in chunk:
            seq = sel.seq_of(info.uid)
            if not seq:
                continue
            parts: list[bytes] = []
            for att in atts:
                kind = att.kind
                bid = info.body_id
                if kind == "UID":
                    parts.append(b"UID %d" % info.uid)
                elif kind == "FLAGS":
                    parts.append(b"FLAGS " + s.flag_list(info.flags, info.uid in sel.recent))
                elif kind == "INTERNALDATE":
                    parts.append(b"INTERNALDATE " + wire.date_time(info.internal_date))
                elif kind == "RFC822.SIZE":
                    parts.append(b"RFC822.SIZE %d" % info.size)
                elif kind == "MODSEQ":
                    parts.append(b"MODSEQ (%d)" % info.modseq)
                elif kind == "EMAILID":
                    parts.append(b"EMAILID (%s)" % data["EMAILID"].get(bid, "").encode())
                elif kind == "THREADID":
                    parts.append(b"THREADID NIL")  # RFC 8474 §5.2: no threads computed
                elif kind == "PREVIEW":
                    parts.append(b"PREVIEW " + wire.nstring(data["PREVIEW"].get(bid), utf8))
                elif kind == "ENVELOPE":
                    text = envelopes.envelope_text(data[kind].get(bid), utf8)
                    parts.append(b"ENVELOPE " + text.encode("utf-8", "surrogateescape"))
                elif kind in ("BODYSTRUCTURE", "BODY"):
                    parts.append(kind.encode() + b" " + wire.serialize(data[kind].get(bid), utf8))
                elif kind == "RFC822":
                    parts.append(b"RFC822 " + wire.literal(data["RAW"][bid]))
                elif kind == "RFC822.HEADER":
                    parts.append(b"RFC822.HEADER " + wire.literal(data["HEADER"].get(bid, b"")))
                elif kind == "RFC822.TEXT":
                    parts.append(b"RFC822.TEXT " + wire.literal(data["TEXT"].get(bid) or b""))
                else:
                    parts.append(self._content(att, info, data))
            if info.uid in seen_changed and s.qresync and "UID" not in kinds:
                parts.insert(0, b"UID %d" % info.uid)  # RFC 7162 §3.2.4
            if add_flags and info.uid in seen_changed:
                parts.append(b"FLAGS " + s.flag_list(info.flags, info.uid in sel.recent))
            if condstore and "MODSEQ" not in kinds and info.uid in seen_changed:
                parts.append(b"MODSEQ (%d)" % info.modseq)
            lines.append(b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n")
        out(b"".join(lines))

    def _write_text(
        self, chunk: list[MessageInfo], data: ChunkData, known: dict[str, dict[int, str]] | None = None
    ) -> None:
        """Metadata only (FLAGS, dates, sizes, ENVELOPE, BODYSTRUCTURE...): one text, encoded once per chunk.

        The hot path of clients that list a folder: FETCH 1:* over thousands of messages.
        """
        s, sel = self.s, self.sel
        utf8 = s.utf8
        recent = sel.recent
        flag_text = s.caches.flag_text
        with_recent = not s.rev2  # IMAP4rev2 has no \Recent
        serialize = wire.serialize_text
        date_text = wire.date_time_text
        makers: list[Callable[[MessageInfo], str]] = []
        for att in self.atts:
            kind = att.kind
            if kind == "UID":
                makers.append(lambda i: f"UID {i.uid}")
            elif kind == "FLAGS":
                makers.append(lambda i: "FLAGS " + flag_text(i.flags, with_recent and i.uid in recent))
            elif kind == "INTERNALDATE":
                makers.append(lambda i: "INTERNALDATE " + date_text(i.internal_date))
            elif kind == "RFC822.SIZE":
                makers.append(lambda i: f"RFC822.SIZE {i.size}")
            elif kind == "MODSEQ":
                makers.append(lambda i: f"MODSEQ ({i.modseq})")
            elif kind == "EMAILID":
                ids: dict[int, str] = data["EMAILID"]

                def email_id(i: MessageInfo, ids: dict[int, str] = ids) -> str:
                    return f"EMAILID ({ids.get(i.body_id, '')})"

                makers.append(email_id)
            elif kind == "THREADID":
                makers.append(lambda i: "THREADID NIL")  # RFC 8474 §5.2: no threads computed
            elif kind in _CACHEABLE:
                makers.append(self._cacheable_maker(kind, data[kind], (known or {}).get(kind, {})))
            else:
                values: dict[int, Any] = data[kind]

                def make(i: MessageInfo, k: str = kind, v: dict[int, Any] = values) -> str:
                    return k + " " + serialize(v.get(i.body_id), utf8)

                makers.append(make)
        uids = sel.uids
        position = uids.bisect_left(chunk[0].uid) if chunk else 0
        walk = uids.between(position, len(uids) - 1)
        current = next(walk, None)
        seq = position + 1
        lines: list[str] = []
        for info in chunk:
            # infos ascend like the UID map: walk both instead of searching the map for every message
            while current is not None and current < info.uid:
                current = next(walk, None)
                seq += 1
            if current != info.uid:
                continue
            lines.append(f"* {seq} FETCH ({' '.join([m(info) for m in makers])})\r\n")
        s.conn.write("".join(lines).encode("utf-8", "surrogateescape"))

    def _cacheable_maker(
        self, kind: str, values: dict[int, Any], known: dict[int, str]
    ) -> Callable[[MessageInfo], str]:
        utf8 = self.s.utf8
        cache = self.cache
        render = envelopes.envelope_text if kind == "ENVELOPE" else wire.serialize_text
        prefix = kind + " "

        def make(info: MessageInfo) -> str:
            text = known.get(info.body_id)
            if text is None:
                text = render(values.get(info.body_id), utf8)
                if cache is not None:
                    if len(cache) >= TEXT_CACHE_ENTRIES:
                        cache.clear()
                    cache[(kind, info.body_id, utf8)] = text
            return prefix + text

        return make

    def _content(self, att: p.FetchAtt, info: MessageInfo, data: ChunkData) -> bytes:
        bid = info.body_id
        content_index = self.contents.index(att)
        if att.kind == "BODY[" and att.section == "":
            value: bytes | None = data["RAW"][bid]
        elif att.kind == "BODY[" and att.section == "HEADER":
            value = data["HEADER"].get(bid, b"")
        else:
            value = data[f"C{content_index}"].get(bid)
        if att.kind == "BINARY.SIZE":
            return b"BINARY.SIZE[%s] %d" % (att.echo.encode(), len(value or b""))
        name = b"BINARY[" if att.kind == "BINARY[" else b"BODY["
        head = name + att.echo.encode() + b"]"
        if att.partial is not None and value is not None:
            start, length = att.partial
            value = value[start : start + length]
            head += b"<%d>" % start
        if value is None:
            return head + b" NIL"
        if att.kind == "BINARY[":
            return head + b" " + wire.literal(value, binary=b"\x00" in value)
        return head + b" " + wire.literal(value)
