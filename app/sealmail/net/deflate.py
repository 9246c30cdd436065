"""COMPRESS=DEFLATE (RFC 4978) for a line-protocol connection: raw DEFLATE (RFC 1951, no zlib header)
in both directions once the protocol has said so.

``Inflater`` reads the peer's compressed stream and hands out lines and exact counts as
``asyncio.StreamReader`` does, inflating only what is asked for, a bounded step at a time: a few
compressed kilobytes that would inflate to gigabytes cost no more memory than the same octets sent
plainly, and the protocol's line and literal limits count inflated octets (RFC 4978 §6).
``Deflater`` compresses what the server writes; the connection flushes it (Z_SYNC_FLUSH) whenever it
flushes its output, so every response reaches the peer whole, an IDLE update or a continuation
request at once.
"""

from __future__ import annotations

import asyncio
import zlib

READ_SIZE = 64 * 1024  # compressed octets taken from the socket at a time
STEP = 64 * 1024  # inflated octets produced at a time
LEVEL = 6  # zlib's default: most of the gain for a fraction of level 9's time
_RAW = -15  # window bits for raw DEFLATE: no zlib header or trailer (RFC 4978 §3)


class CorruptStream(ConnectionError):
    """The peer's DEFLATE stream is broken: nothing after the fault can be read."""


class Inflater:
    """Lines and exact counts from a raw DEFLATE stream, with ``StreamReader``'s errors and limit."""

    def __init__(self, source: asyncio.StreamReader, limit: int) -> None:
        self._source = source
        self._limit = limit
        self._z = zlib.decompressobj(_RAW)
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Inflated octets held, not yet read."""
        return len(self._buffer)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Up to and including ``separator``; ``LimitOverrunError`` past the limit (the data stays)."""
        start = 0
        while True:
            found = self._buffer.find(separator, start)
            if found > self._limit:
                raise asyncio.LimitOverrunError("Separator is found, but chunk is longer than limit", found)
            if found >= 0:
                end = found + len(separator)
                line = bytes(self._buffer[:end])
                del self._buffer[:end]
                return line
            if len(self._buffer) > self._limit:
                raise asyncio.LimitOverrunError("Separator is not found, and chunk exceed the limit", len(self._buffer))
            start = max(0, len(self._buffer) - len(separator) + 1)
            if not await self._inflate():
                raise asyncio.IncompleteReadError(self._take(len(self._buffer)), None)

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            if not await self._inflate():
                raise asyncio.IncompleteReadError(self._take(len(self._buffer)), n)
        return self._take(n)

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def _inflate(self) -> bool:
        """One more step of inflated octets into the buffer; False once the stream has ended."""
        z = self._z
        while True:
            if z.unconsumed_tail:
                data = z.unconsumed_tail  # input held back when the last step filled up
            elif z.eof:
                return False  # the peer finished its stream: whatever follows is not DEFLATE
            else:
                data = await self._source.read(READ_SIZE)
                if not data:
                    return False
            try:
                out = z.decompress(data, STEP)
            except zlib.error as exc:
                raise CorruptStream(f"broken DEFLATE stream: {exc}") from None
            if out:
                self._buffer += out
                return True


class Deflater:
    """Raw DEFLATE for what the server writes; ``flush`` ends what was written with a sync point.

    With ``release_after`` (seconds), the compressor's state (about 256 KiB, most of what a compressed
    connection costs) is dropped once the connection has been quiet that long, and the next response
    starts a new compressor. A sync flush leaves the stream between blocks, byte-aligned, and a DEFLATE
    stream is only a sequence of blocks (RFC 1951 §3.2.3), so the peer inflates on undisturbed; it
    only loses back-references into what was said before. Clients that sit in IDLE for hours (one
    connection per pushed folder) then cost the inflater's 40 KiB, not 300.
    """

    def __init__(self, level: int = LEVEL, *, release_after: float | None = None) -> None:
        self._level = level
        self._z: zlib._Compress | None = None
        self._pending = False
        self._release_after = release_after
        self._last_flush = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def holding(self) -> bool:
        """A compressor's state is held (False after a release, until the next write)."""
        return self._z is not None

    def compress(self, data: bytes) -> bytes:
        if self._z is None:
            self._z = zlib.compressobj(self._level, zlib.DEFLATED, _RAW)
        self._pending = True
        return self._z.compress(data)

    def flush(self) -> bytes:
        """Everything written since the last flush, decodable by the peer now (empty if nothing was)."""
        if not self._pending or self._z is None:
            return b""
        self._pending = False
        tail = self._z.flush(zlib.Z_SYNC_FLUSH)
        if self._release_after is not None:
            loop = asyncio.get_running_loop()
            self._last_flush = loop.time()
            if self._timer is None:  # one timer at most, pushed back when it fires early
                self._timer = loop.call_at(self._last_flush + self._release_after, self._release)
        return tail

    def _release(self) -> None:
        assert self._release_after is not None
        loop = asyncio.get_running_loop()
        due = self._last_flush + self._release_after
        if loop.time() < due:
            self._timer = loop.call_at(due, self._release)
            return
        self._timer = None
        if not self._pending:
            self._z = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
