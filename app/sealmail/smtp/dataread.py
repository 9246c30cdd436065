"""DATA as a byte stream: end-of-data, dot-unstuffing and the size limit, in bounded memory.

aiosmtpd keeps every DATA line as its own ``bytearray`` (about 60 bytes of object per line), so a
message of empty lines costs ~80 times its size. This reads DATA in the chunks the socket gives
and keeps the message as a list of those chunks (of 64 KiB and more), whatever its lines look
like. The MX never joins them: its checks, trace headers and sealing take the message as pieces
(``Pieces``), so a message is held once, plus bounded buffers.

The rules (RFC 5321 §4.5.2, §2.3.8):

* Lines end in CRLF only. The data ends at the first line that is a single ``.``, that is at
  ``<CRLF>.<CRLF>`` (the DATA command's own CRLF counts as the one before the first line). A bare
  ``\\n.\\n``, ``\\r.\\r`` or ``\\n.\\r\\n`` is message content, never the end (SMTP smuggling).
* A line that starts with ``.`` and has more on it loses that first ``.`` (transparency).
* Bare CR and bare LF are passed through as content here; what a listener does with them is its
  own decision (the MX and submission normalise them to CRLF with ``smtp.lineends.to_wire``).
* Line length is not limited: Postfix takes long lines too, and the size limit bounds memory.

The size counted is the unstuffed message, CRLFs included (RFC 1870 §3). Once it passes the limit
the bytes are discarded as they arrive, but reading goes on to the end of data so the session
stays in step with the client (the reply then is ``552 5.3.4``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sealmail.crypto.sealed import Buffer

Pieces = Sequence[Buffer]  # a message as consecutive pieces, never joined

_SEP = b"\r\n."
_SMALL = 65536  # pieces below this are gathered first: a client sending a byte per segment costs no more


class DotReader:
    """Feed it the DATA bytes in any pieces; it says where the data ended and what came after."""

    __slots__ = ("_emitted", "_small", "_tail", "chunks", "limit", "over", "size")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.size = 0  # unstuffed message bytes seen, kept or not
        self.over = False  # the limit was passed: nothing more is kept
        self.chunks: list[bytes] = []
        self._small = bytearray()
        # Bytes at the end of what was fed that may begin <CRLF>.<CRLF> or <CRLF>.x; the first
        # ``_emitted`` of them are already in ``chunks``. At the start: the DATA command's CRLF.
        self._tail = b"\r\n"
        self._emitted = 2

    def feed(self, data: bytes) -> bytes | None:
        """Take the next bytes. Returns ``None`` while the data goes on; at its end, what follows it."""
        data = self._tail + data
        emit = self._emitted
        at = 0
        while True:
            k = data.find(_SEP, at)
            if k < 0:
                self._keep(data, emit, len(data))
                # A trailing CR or CRLF may begin the next separator.
                cut = len(data) - (2 if data.endswith(b"\r\n") else 1 if data.endswith(b"\r") else 0)
                self._tail, self._emitted = data[cut:], len(data) - cut
                return None
            dot = k + 2
            after = data[dot + 1 : dot + 3]
            if after == b"\r\n":  # a line that is just ".": the end
                self._keep(data, emit, dot)
                self._tail, self._emitted = b"", 0
                return data[dot + 3 :]
            if after[:1] not in (b"", b"\r") or len(after) == 2:
                # The line goes on after the dot: drop the dot (transparency).
                self._keep(data, emit, dot)
                emit = at = dot + 1
                continue
            # ".", or ".\r" at the end of what arrived: the next bytes decide.
            self._keep(data, emit, dot)
            self._tail, self._emitted = data[k:], 2
            return None

    def _keep(self, data: bytes, start: int, end: int) -> None:
        if end <= start:
            return
        self.size += end - start
        if self.over:
            return
        if self.limit is not None and self.size > self.limit:
            self.drop()  # what was kept goes at once
            return
        if end - start < _SMALL:
            self._small += memoryview(data)[start:end]
            if len(self._small) >= _SMALL:
                self._flush()
            return
        self._flush()
        self.chunks.append(data[start:end] if start or end != len(data) else data)

    def _flush(self) -> None:
        if self._small:
            self.chunks.append(bytes(self._small))
            self._small = bytearray()

    @property
    def kept(self) -> int:
        """Message bytes held now."""
        return 0 if self.over else self.size

    def drop(self) -> None:
        """Keep nothing more (the bytes still count towards ``size``)."""
        self.over = True
        self.chunks, self._small = [], bytearray()

    def take(self) -> list[bytes]:
        """The unstuffed message (once) as the chunks it was read in; the reader lets go of them."""
        self._flush()
        chunks, self.chunks = self.chunks, []
        return chunks

    def message(self) -> bytes:
        """The unstuffed message (once), joined."""
        return b"".join(self.take())


def as_pieces(message: Buffer | Pieces) -> list[Buffer]:
    """A message given whole or in pieces, as a list of pieces."""
    if isinstance(message, (bytes, bytearray, memoryview)):
        return [message]
    return list(message)


def head(pieces: Pieces, limit: int) -> bytes:
    """The first ``limit`` bytes of a message in pieces (a small copy)."""
    out = bytearray()
    for piece in pieces:
        if len(out) >= limit:
            break
        out += memoryview(piece)[: limit - len(out)]
    return bytes(out)


def after(pieces: Pieces, offset: int) -> list[Buffer]:
    """The pieces from ``offset`` on (views, no copy)."""
    out: list[Buffer] = []
    for piece in pieces:
        view = memoryview(piece).cast("B")
        if offset >= view.nbytes:
            offset -= view.nbytes
            continue
        out.append(view[offset:] if offset else piece)
        offset = 0
    return out
