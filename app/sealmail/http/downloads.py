"""Large downloads made while they are sent (the self-service export and backup copy, in the web
area and the API alike).

``Download`` streams an async iterator of chunks and, however the response ends — the last chunk
sent, the client gone, an error half-way, or before the first chunk — closes it and calls its
``closing`` callback, so what the download holds (an open mailbox, a bucket's stream) is let go at
once. An error after the first chunk cannot change the status any
more: the connection is cut before the archive's end, and the client sees a broken download, never
a short one that looks whole. ``in_thread`` runs a blocking iterator (S3 reads and zipping) one
step at a time on a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.responses import StreamingResponse

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

log = logging.getLogger("sealmail.http")
_DONE = object()


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` value (RFC 6266 §4.3: an ASCII ``filename`` and the UTF-8 ``filename*``)."""
    plain = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


class Download(StreamingResponse):
    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        filename: str,
        media_type: str = "application/zip",
        closing: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._chunks = chunks
        self._closing = closing
        headers = {"content-disposition": attachment(filename), "cache-control": "no-store"}
        super().__init__(chunks, media_type=media_type, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            log.warning("a download ended before its end", exc_info=True)
            raise
        finally:
            try:
                aclose = getattr(self._chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                if self._closing is not None:
                    await self._closing()


async def in_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` (blocking) stepped on a worker thread, one step at a time."""
    try:
        while (chunk := await asyncio.to_thread(next, chunks, _DONE)) is not _DONE:
            assert isinstance(chunk, bytes)
            if chunk:
                yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
