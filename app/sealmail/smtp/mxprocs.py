"""Several MX session processes behind one listening socket, with exact connection limits.

One Python process does its SMTP work on one core (the GIL), so a host with more cores runs
``mx_processes`` session processes. This process (``sealmail serve mx``) owns the listening socket
and the ``ConnectionBook``: it accepts, refuses with ``421 4.7.0`` what is over a limit, and hands
each admitted connection to the session process with the fewest open connections, over a Unix
socket (``SCM_RIGHTS``). A session process reports every connection that ends, so the limits stay
exact across processes (``SO_REUSEPORT`` would spread connections well, but each process would
count only its own share of a sender's connections).

A session process that dies loses only its own sessions (a sender whose ``250`` did not arrive
retries); their slots are freed and another process takes its place. Session processes stop when
this process closes their control socket, and on their own if it dies.

With ``mx_spool_handoff_max`` set, this process also writes every spool for them
(``sealmail.smtp.spoolwriter``): each session process gets a second socket pair over which it hands
sealed records to that one writer, so the writes to one hot mailbox from every process share one
fsync instead of taking turns on its lock.

Control messages (``SOCK_SEQPACKET``, so each message arrives whole): to a session process, first
the pickled settings, then one connection (its descriptor) per message; from it, ``ready`` once,
then the peer address of each connection that ended. The session process's side is ``sealmail.smtp.mxchild``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import pickle
import socket
import sys
from typing import TYPE_CHECKING

from sealmail.net.drain import SMTP_DRAINING
from sealmail.net.listen import bound_port, listen_sockets
from sealmail.smtp.protocol import ConnectionBook
from sealmail.smtp.spoolwriter import SpoolWriter
from sealmail.store.mailstore import MailStore

if TYPE_CHECKING:
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.mx")
_REFUSED = b"421 4.7.0 Too many connections, try again later\r\n"
_UNAVAILABLE = b"421 4.3.2 Service not available, try again later\r\n"
_RESTART_DELAY = 1.0
_MAX_MESSAGE = 65536


class _Child:
    """One session process, seen from the parent."""

    def __init__(self, index: int, proc: asyncio.subprocess.Process, control: socket.socket) -> None:
        self.index = index
        self.proc = proc
        self.control = control
        self.open: collections.Counter[str] = collections.Counter()  # peer address -> connections it serves
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.alive = True

    @property
    def load(self) -> int:
        return self.open.total()


class MxProcesses:
    """The parent: listens, admits, hands out; restarts session processes that die."""

    def __init__(self, settings: Settings, book: ConnectionBook) -> None:
        self.settings = settings
        self.book = book
        self._listeners: list[socket.socket] = []
        self._children: list[_Child] = []
        self._watchers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.spool_writer = SpoolWriter(MailStore(settings.data_dir)) if settings.mx_spool_handoff_max else None

    async def start(self) -> int:
        """Start the session processes, then listen; returns the port.

        One after the other: the first may create the data files (queue, spools) the others open.
        """
        try:
            for index in range(self.settings.mx_processes):
                self._children.append(await self._spawn(index))
            port = self._listen()
        except BaseException:
            await self.stop()
            raise
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            loop.add_reader(listener.fileno(), self._accept, listener)
        return port

    def _listen(self) -> int:
        self._listeners = listen_sockets(self.settings, self.settings.mx_port)
        for sock in self._listeners:
            sock.listen(1024)
            sock.setblocking(False)
        return bound_port(self._listeners)

    def _close_listeners(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            loop.remove_reader(listener.fileno())
            listener.close()
        self._listeners = []

    async def stop(self) -> None:
        self._stopping = True
        self._close_listeners()
        children, self._children = self._children, []
        for child in children:
            self._detach(child)  # EOF on its control socket: the process closes its sessions and exits
        for child in children:
            try:
                await asyncio.wait_for(child.proc.wait(), 15)
            except TimeoutError:
                child.proc.kill()
                await child.proc.wait()
        for task in list(self._watchers):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.spool_writer is not None:
            await self.spool_writer.close()

    # ---- session processes ------------------------------------------------------------------------
    async def _spawn(self, index: int) -> _Child:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds = [theirs.fileno()]
        spools = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) if self.spool_writer else None
        if spools is not None:
            fds.append(spools[1].fileno())
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sealmail.smtp.mxchild", *map(str, fds), pass_fds=fds
            )
        except BaseException:
            if spools is not None:
                spools[0].close()
            raise
        finally:
            theirs.close()
            if spools is not None:
                spools[1].close()
        if spools is not None and self.spool_writer is not None:
            self.spool_writer.attach(spools[0])
        ours.sendall(pickle.dumps(self.settings, protocol=pickle.HIGHEST_PROTOCOL))  # secrets stay off argv
        ours.setblocking(False)
        child = _Child(index, proc, ours)
        asyncio.get_running_loop().add_reader(ours.fileno(), self._from_child, child)
        watcher = asyncio.create_task(self._watch(child), name=f"sealmail-mx-{index}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        try:
            await asyncio.wait_for(asyncio.shield(child.ready), 60)
        except (TimeoutError, RuntimeError) as exc:
            self._detach(child)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise RuntimeError(f"MX session process {index} did not start: {exc}") from None
        return child

    def _from_child(self, child: _Child) -> None:
        while True:
            try:
                data = child.control.recv(_MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:  # the process is gone
                self._detach(child)
                return
            if data == b"ready":
                if not child.ready.done():
                    child.ready.set_result(None)
                continue
            ip = data.decode("utf-8", "replace")
            if child.open[ip] > 0:
                child.open[ip] -= 1
                if not child.open[ip]:
                    del child.open[ip]
                self.book.release(ip)

    def _detach(self, child: _Child) -> None:
        """Stop talking to a session process and free the slots of the connections it served."""
        if not child.alive:
            return
        child.alive = False
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(child.control.fileno())
        child.control.close()
        for ip, count in child.open.items():
            for _ in range(count):
                self.book.release(ip)
        child.open.clear()
        if not child.ready.done():
            child.ready.set_exception(RuntimeError("it exited"))
            child.ready.exception()  # retrieved: nobody else may wait for it

    async def _watch(self, child: _Child) -> None:
        code = await child.proc.wait()
        self._detach(child)
        if self._stopping or child not in self._children:
            return
        log.error("MX session process %d exited (status %s); starting another", child.index, code)
        while not self._stopping:
            await asyncio.sleep(_RESTART_DELAY)
            try:
                replacement = await self._spawn(child.index)
            except Exception:
                log.exception("could not start MX session process %d", child.index)
                continue
            if self._stopping:
                self._detach(replacement)
                return
            self._children[self._children.index(child)] = replacement
            return

    # ---- connections ------------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        for _ in range(64):  # a burst at a time, then let the loop breathe
            try:
                conn, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, say: the kernel keeps the connection queued
                log.warning("cannot accept a connection: %s", exc)
                return
            with conn:
                self._hand_out(conn, str(peer[0]))

    def _hand_out(self, conn: socket.socket, ip: str) -> None:
        if self.book.draining():
            _say(conn, SMTP_DRAINING)  # RFC 5321 §3.8: the sender tries another MX or later
            return
        if not self.book.admit(ip):
            _say(conn, _REFUSED)  # before any session starts: one line, then close (RFC 5321 §3.8)
            return
        for child in sorted((c for c in self._children if c.alive and c.ready.done()), key=lambda c: c.load):
            try:
                socket.send_fds(child.control, [b"c"], [conn.fileno()])
            except OSError:  # its queue is full or it is exiting: the next one
                continue
            child.open[ip] += 1
            return
        self.book.release(ip)
        _say(conn, _UNAVAILABLE)


def _say(conn: socket.socket, line: bytes) -> None:
    with contextlib.suppress(OSError):
        conn.setblocking(False)
        conn.send(line)
