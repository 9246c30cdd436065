"""A zip archive made as a stream of chunks: no file, no seeking, nothing kept once taken.

The standard library's ``zipfile`` writes to a stream it cannot seek by putting each entry's sizes
and CRC in a data descriptor after its data (APPNOTE 4.3.9), which every unzip tool reads. What
it writes lands in this object's buffer; the caller ``take``s it and sends it on, so the archive
is never whole in memory or on disk: at most one ``write``'s worth (plus the compressor's own
window) waits here.

Blocking (compression is CPU work): call it from a worker thread, one thread at a time.
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from datetime import datetime
from typing import IO

# An entry that may pass 2 GiB needs ZIP64 fields from its start (the size comes only at its end).
ZIP64_FROM = 1 << 31


class _Sink(io.RawIOBase):
    """Collects what ``zipfile`` writes; reports its position, refuses to seek."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.discard = False  # an abandoned archive: whatever comes is dropped

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = bytes(data)
        if not self.discard:
            self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position


class ZipStream:
    def __init__(self, compresslevel: int = 6) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self._entry: IO[bytes] | None = None

    def open(
        self, name: str, *, compress: bool = True, size_hint: int = 0, modified: datetime | None = None
    ) -> IO[bytes]:
        """A new entry to write to (close it before the next one). ``size_hint``: how large it may get;
        ``modified``: its time (a zip keeps no time zone: give it in UTC; none before 1980)."""
        stamp = (1980, 1, 1, 0, 0, 0)
        if modified is not None and 1980 <= modified.year <= 2107:  # what the format can hold
            stamp = (modified.year, modified.month, modified.day, modified.hour, modified.minute, modified.second)
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o600 << 16  # a regular file only its owner reads, wherever it is unpacked
        self._entry = self._zip.open(info, "w", force_zip64=size_hint >= ZIP64_FROM)
        return self._entry

    def add(self, name: str, data: bytes, *, compress: bool = True, modified: datetime | None = None) -> None:
        with self.open(name, compress=compress, size_hint=len(data), modified=modified) as entry:
            entry.write(data)

    def directory(self, name: str) -> None:
        """An empty folder (a zip names folders with a trailing slash)."""
        self._zip.mkdir(name.rstrip("/"), mode=0o700)

    def take(self) -> bytes:
        """What was written since the last call."""
        data = b"".join(self._sink.parts)
        self._sink.parts.clear()
        return data

    def close(self) -> bytes:
        """Finish the archive (its central directory) and return the last bytes."""
        self._zip.close()
        return self.take()

    def abandon(self) -> None:
        """Drop an unfinished archive (its reader left, or what it held failed): nothing more is
        kept, and nothing is left to be finished later by the garbage collector."""
        self._sink.discard = True
        self._sink.parts.clear()
        # A worker thread cancelled half-way may still be writing to it: whatever breaks now is moot.
        with contextlib.suppress(Exception):
            if self._entry is not None and not self._entry.closed:
                self._entry.close()
            self._zip.close()
