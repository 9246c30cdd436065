"""Sender authentication off the event loop: worker processes, or one thread.

The checks are pure Python (dkimpy, pyspf, dnspython) and keep a CPU busy for about a millisecond
per message. On a thread of the MX they would hold its GIL against the event loop; in worker
processes they run beside it, on another core when there is one. Each worker keeps its own
resolver and DNS cache.

A worker is ``python -m sealmail.mailauth.workers`` reading requests on stdin and answering on
stdout (length-prefixed pickles between our own processes, each answer naming its request). The
message travels beside its request's pickle, written in slices as the pipe drains, so the MX never
makes a copy of it (a pickle holding a 20 MiB message is a 20 MiB copy); the answer carries only
where forged Authentication-Results were cut (``checks.forged_results_cut``), not the message. A
worker works on several checks at once (``THREADS``): most of a check's time can be waiting for
DNS answers — tens of milliseconds each from a real resolver on a cold cache — and one check
waiting must not hold up the next message. The MX writes to and reads from the pipes on its
event loop: no helper threads, two wake-ups per message. ``concurrent.futures``' process pool
costs three times as much per call here (its manager and feeder threads wake for every call). A
worker that dies fails the checks it had (they run again on a thread) and is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import pickle
import struct
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sealmail.mailauth.checks import AuthResults, authenticate, forged_results_cut
from sealmail.mailauth.dnsview import DnsView, ResolverDns

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger("sealmail.mx")
# The results, and where forged results were cut (``checks.forged_results_cut``; None: nothing to cut).
Checked = tuple[AuthResults, tuple[bytes, int] | None]
_LENGTH = struct.Struct(">I")
_FRAME = struct.Struct(">IQ")  # request pickle length, message length
_SLICE = 1 << 18  # message bytes written to a worker's pipe at a time
_MESSAGE = 4  # where the message goes in a "check" request's arguments
THREADS = 16  # checks one worker process works on at once


def check_message(view: DnsView, ip: str, helo: str, mail_from: str, message: bytes, authserv_id: str) -> Checked:
    results = authenticate(view, ip=ip, helo=helo, mail_from=mail_from, message=message)
    return results, forged_results_cut(message, authserv_id)


def _pieces(message: Any) -> list[Any]:
    return [message] if isinstance(message, (bytes, bytearray, memoryview)) else list(message)


class WorkerDied(Exception):
    pass


class _Worker:
    """One worker process and the checks it has been given (answered as each finishes)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count()
        self._writing = asyncio.Lock()  # one request's frame and message at a time on the pipe
        self._senders: set[asyncio.Task[None]] = set()
        self.reader = asyncio.create_task(self._read(), name="sealmail-auth-worker")

    @classmethod
    async def start(cls, servers: Sequence[tuple[str, int]], timeout: float) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sealmail.mailauth.workers",
            json.dumps({"servers": list(servers), "timeout": timeout}),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = cls(proc)
        await worker.call(("ready",))
        return worker

    @property
    def alive(self) -> bool:
        return not self.reader.done()

    def call(self, request: tuple[Any, ...], message: Sequence[Any] = ()) -> asyncio.Future[Any]:
        """Send ``request`` (and a message, in pieces, beside it); the future is its answer."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self.alive:
            future.set_exception(WorkerDied("the worker has exited"))
            return future
        ident = next(self._ids)
        data = pickle.dumps((ident, request), protocol=pickle.HIGHEST_PROTOCOL)
        self.waiting[ident] = future
        # Its own task: a caller cancelled half way must not leave half a frame in the pipe.
        sender = asyncio.create_task(self._send(ident, data, message))
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)
        return future

    async def _send(self, ident: int, data: bytes, message: Sequence[Any]) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        views = [memoryview(p).cast("B") for p in message]
        try:
            async with self._writing:
                stdin.write(_FRAME.pack(len(data), sum(v.nbytes for v in views)) + data)
                for view in views:
                    for at in range(0, view.nbytes, _SLICE):
                        stdin.write(view[at : at + _SLICE])
                        await stdin.drain()  # the pipe's buffer stays small: no copy of the message
                await stdin.drain()
        except (ConnectionError, RuntimeError) as exc:  # the worker went away while we wrote
            future = self.waiting.pop(ident, None)
            if future is not None and not future.done():
                future.set_exception(WorkerDied(f"the worker exited: {exc}"))

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while True:
                (length,) = _LENGTH.unpack(await self.proc.stdout.readexactly(_LENGTH.size))
                ident, ok, value = pickle.loads(await self.proc.stdout.readexactly(length))  # noqa: S301 - our child
                future = self.waiting.pop(ident, None)
                if future is None or future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(RuntimeError(value))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            waiting, self.waiting = self.waiting, {}
            for future in waiting.values():
                if not future.done():
                    future.set_exception(WorkerDied("the worker exited"))

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


class AuthWorkers:
    """``check_message`` in ``processes`` worker processes (0: on a thread of this process)."""

    def __init__(self, servers: Sequence[tuple[str, int]], timeout: float, processes: int) -> None:
        self.servers = list(servers)
        self.timeout = timeout
        self.processes = processes
        self._workers: list[_Worker] = []
        self._view: ResolverDns | None = None

    async def start(self) -> None:
        """Start the workers (they are ready when this returns)."""
        self._workers = list(await asyncio.gather(*(self._start_one() for _ in range(self.processes))))

    async def _start_one(self) -> _Worker:
        return await _Worker.start(self.servers, self.timeout)

    async def close(self) -> None:
        workers, self._workers = self._workers, []
        await asyncio.gather(*(w.stop() for w in workers))

    async def check(
        self,
        ip: str,
        helo: str,
        mail_from: str,
        message: bytes | Sequence[bytes | bytearray | memoryview],
        authserv_id: str,
    ) -> Checked:
        pieces = _pieces(message)
        if self._workers:
            worker = min(self._workers, key=lambda w: len(w.waiting))
            try:
                checked: Checked = await worker.call(("check", ip, helo, mail_from, None, authserv_id), pieces)
                return checked
            except WorkerDied:
                log.error("a sender-authentication worker process exited; starting another")
                await self._replace(worker)
        if self._view is None:
            self._view = ResolverDns(self.servers, self.timeout)
        whole = pieces[0] if len(pieces) == 1 and isinstance(pieces[0], bytes) else b"".join(pieces)
        return await asyncio.to_thread(check_message, self._view, ip, helo, mail_from, whole, authserv_id)

    async def _replace(self, worker: _Worker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
            with contextlib.suppress(Exception):
                await worker.stop()
            try:
                self._workers.append(await self._start_one())
            except Exception:
                log.exception("could not start a sender-authentication worker")


def _serve(config: dict[str, Any]) -> None:
    """A worker process: answer requests from stdin on stdout until stdin closes."""
    view = ResolverDns([tuple(s) for s in config["servers"]], config["timeout"])
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    writing = threading.Lock()

    def answer(ident: int, request: tuple[Any, ...]) -> None:
        reply: tuple[int, bool, Checked | str | None]
        try:
            reply = (ident, True, check_message(view, *request[1:]) if request[0] == "check" else None)
        except Exception as exc:  # reported to the MX, which answers 451: the sender tries again
            reply = (ident, False, f"{type(exc).__name__}: {exc}")
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        with writing:
            answers.write(_LENGTH.pack(len(data)) + data)
            answers.flush()

    with ThreadPoolExecutor(THREADS, thread_name_prefix="check") as pool:
        while True:
            head = requests.read(_FRAME.size)
            if len(head) < _FRAME.size:
                return  # the MX closed our stdin: finish what was asked, then exit
            length, size = _FRAME.unpack(head)
            ident, request = pickle.loads(requests.read(length))  # noqa: S301 - from our parent
            if request[0] == "check":
                request = (*request[:_MESSAGE], requests.read(size), *request[_MESSAGE + 1 :])
            pool.submit(answer, ident, request)


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
