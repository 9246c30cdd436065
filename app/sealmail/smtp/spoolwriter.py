"""One writer for every spool of the MX host: the session processes hand it sealed messages.

With several MX session processes (``mx_processes``), each sealing into the spool of the same hot
mailbox, every process would commit its own small batches and take turns on the spool's lock: one
fsync per process per turn, and each message waiting for the other processes' turns. Instead, the
process that accepts connections (``sealmail.smtp.mxprocs``) writes the spools: a session process
seals the message (it holds only the alias's public key, and the CPU work stays spread over the
session processes), hands the sealed record over its private socket, and waits. The writer
commits every record waiting for one spool in one transaction with one fsync (whichever session
process sent it) and only then answers each with its sequence number; the session process sends its
``250`` after that answer, so every ``250`` still follows the fsync that covers its message.

A record larger than ``mx_spool_handoff_max`` (and every record, when it is 0) is appended by the
session process itself, sealed as it is written, as with one process: a large message is never
held again as one ciphertext. Both paths take the spool's cross-process lock, as does a session
draining the spool, so they mix safely.

Wire format, both ways over a ``SOCK_STREAM`` socket pair (big endian): a request is
``id (8) | mailbox id length (2) | record length (4) | mailbox id | record``; a reply is
``id (8) | sequence number (8, signed; -1 on failure) | error length (2) | error text``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import struct
from concurrent.futures import Future

from sealmail.store.mailstore import MailStore

log = logging.getLogger("sealmail.mx")
_REQUEST = struct.Struct(">QHI")
_REPLY = struct.Struct(">QqH")


class SpoolWriteError(Exception):
    """The writer could not append the record (nothing was committed for it)."""


class SpoolWriter:
    """The writer side, in the parent MX process: one batch at a time per spool."""

    def __init__(self, mailstore: MailStore) -> None:
        self.mailstore = mailstore
        self._waiting: dict[str, list[tuple[bytes, asyncio.Future[int]]]] = {}
        self._writing: dict[str, asyncio.Task[None]] = {}
        self._streams: set[asyncio.Task[None]] = set()
        self.commits = 0  # transactions committed (for tests and statistics)

    def attach(self, sock: socket.socket) -> None:
        """Serve one session process's requests (its end of the socket pair is ``sock``'s peer)."""
        task = asyncio.create_task(self._serve(sock), name="sealmail-spool-writer")
        self._streams.add(task)
        task.add_done_callback(self._streams.discard)

    async def close(self) -> None:
        for task in list(self._streams):
            task.cancel()
        for task in [*self._streams, *self._writing.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.to_thread(self.mailstore.close_spools)

    async def append(self, mailbox_id: str, record: bytes) -> int:
        """Append durably (batched with every record waiting for the same spool)."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(mailbox_id, []).append((record, future))
        if mailbox_id not in self._writing:
            self._writing[mailbox_id] = asyncio.create_task(self._write(mailbox_id))
        return await future

    async def _write(self, mailbox_id: str) -> None:
        """Commit what waits for one spool, batch after batch, until nothing waits."""
        try:
            while batch := self._waiting.pop(mailbox_id, []):
                try:
                    results = await asyncio.to_thread(self._commit, mailbox_id, [record for record, _ in batch])
                except Exception as exc:  # the spool could not be opened, say
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            del self._writing[mailbox_id]

    def _commit(self, mailbox_id: str, records: list[bytes]) -> list[int | Exception]:
        spool = self.mailstore.spool(mailbox_id)
        results = spool.append_groups([[record] for record in records])
        self.commits += 1
        return [r if isinstance(r, Exception) else r[0] for r in results]

    async def _serve(self, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=sock)
        replies: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    head = await reader.readexactly(_REQUEST.size)
                except asyncio.IncompleteReadError:
                    return  # the session process is gone
                request_id, id_length, record_length = _REQUEST.unpack(head)
                mailbox_id = (await reader.readexactly(id_length)).decode("ascii")
                record = await reader.readexactly(record_length)
                task = asyncio.create_task(self._answer(writer, request_id, mailbox_id, record))
                replies.add(task)
                task.add_done_callback(replies.discard)
        finally:
            for task in list(replies):
                with contextlib.suppress(Exception):
                    await task
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, request_id: int, mailbox_id: str, record: bytes) -> None:
        try:
            seq, error = await self.append(mailbox_id, record), b""
        except Exception as exc:
            log.error("could not append to the spool of %s: %s", mailbox_id, exc)
            seq, error = -1, str(exc).encode("utf-8", "replace")[:1000]
        with contextlib.suppress(OSError):  # the session process is gone: it answers nobody either
            writer.write(_REPLY.pack(request_id, seq, len(error)) + error)


class SpoolHandoff:
    """The session process's side: hand a sealed record to the writer and wait for its commit."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self.limit = limit  # the largest record handed over (bytes)
        self._sock = sock
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[int]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broken: str | None = None  # why nothing more can be handed over

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        reader, self._writer = await asyncio.open_connection(sock=self._sock)
        self._reader_task = asyncio.create_task(self._read(reader), name="sealmail-spool-handoff")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
        self._fail_all("the MX is stopping")

    def append(self, mailbox_id: str, record: bytes) -> int:
        """From a worker thread: the record's sequence number once it is committed; raises otherwise."""
        assert self._loop is not None
        future: Future[int] = Future()
        request_id = next(self._ids)
        name = mailbox_id.encode("ascii")
        frame = _REQUEST.pack(request_id, len(name), len(record)) + name

        def send() -> None:
            if self._broken is not None or self._writer is None or self._writer.is_closing():
                future.set_exception(SpoolWriteError(self._broken or "the spool writer is gone"))
                return
            self._pending[request_id] = future
            self._writer.write(frame)
            self._writer.write(record)

        self._loop.call_soon_threadsafe(send)
        return future.result()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                request_id, seq, error_length = _REPLY.unpack(await reader.readexactly(_REPLY.size))
                error = (await reader.readexactly(error_length)).decode("utf-8", "replace")
                future = self._pending.pop(request_id, None)
                if future is None:
                    continue
                if seq < 0:
                    future.set_exception(SpoolWriteError(error or "the spool writer failed"))
                else:
                    future.set_result(seq)
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._fail_all("the spool writer is gone")

    def _fail_all(self, why: str) -> None:
        self._broken = why
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(SpoolWriteError(why))
