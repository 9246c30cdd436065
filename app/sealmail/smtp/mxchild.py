"""One MX session process (``python -m sealmail.smtp.mxchild``), started by ``sealmail.smtp.mxprocs``.

It receives the pickled settings over its control socket, then admitted connections (their descriptors),
serves each with ``MxSessions``, and reports every connection that ends so the parent's limits stay exact.
It stops when the parent closes the control socket. A second descriptor, when given, is its socket to
the parent's spool writer (``sealmail.smtp.spoolwriter``): sealed messages go there to be appended.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import pickle
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from sealmail import logs
from sealmail.smtp.mx import MxSessions
from sealmail.smtp.protocol import ConnectionBook
from sealmail.smtp.spoolwriter import SpoolHandoff
from sealmail.store.mailstore import MailStore

if TYPE_CHECKING:
    from sealmail.settings import Settings


class HandedBook(ConnectionBook):
    """The session process's book: the parent admitted the connection; each end is reported to it."""

    def __init__(self, control: socket.socket) -> None:
        super().__init__(max_total=sys.maxsize, max_per_ip=sys.maxsize)
        self._control = control
        self._unsent: collections.deque[bytes] = collections.deque()

    def release(self, ip: str) -> None:
        super().release(ip)
        self._unsent.append(ip.encode("utf-8"))
        self._flush()

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._unsent:
            try:
                self._control.send(self._unsent[0])
            except (BlockingIOError, InterruptedError):
                loop.add_writer(self._control.fileno(), self._flush)
                return
            except OSError:  # the parent is gone: nobody to tell
                self._unsent.clear()
                break
            self._unsent.popleft()
        with contextlib.suppress(ValueError, OSError):
            loop.remove_writer(self._control.fileno())


async def _session_process(control: socket.socket, settings: Settings, spools: socket.socket | None) -> None:
    loop = asyncio.get_running_loop()
    book = HandedBook(control)
    sessions = MxSessions(settings)
    protocol = await sessions.start(book)
    handoff = None
    # The accepting process writes this host's spools; with a data host (store_url) the store does.
    if spools is not None and sessions.app is not None and isinstance(sessions.app.mailstore, MailStore):
        handoff = SpoolHandoff(spools, settings.mx_spool_handoff_max)
        await handoff.start()
        sessions.app.mailstore.spool_handoff = handoff
    parent_gone = asyncio.Event()
    tasks: set[asyncio.Task[Any]] = set()

    def receive() -> None:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(control, 16, 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message, fds = b"", []
            if not message:
                parent_gone.set()
                loop.remove_reader(control.fileno())
                return
            for fd in fds:
                conn = socket.socket(fileno=fd)
                conn.setblocking(False)
                task = loop.create_task(loop.connect_accepted_socket(protocol, conn))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    control.setblocking(False)
    loop.add_reader(control.fileno(), receive)
    control.send(b"ready")
    for sig in (
        signal.SIGTERM,
        signal.SIGINT,
    ):  # systemd stops the whole unit: finish via the parent's EOF, not mid-reply
        loop.add_signal_handler(sig, lambda: None)
    await parent_gone.wait()
    await book.close_all()
    await sessions.stop()
    if handoff is not None:
        await handoff.close()


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    spools = socket.socket(fileno=int(sys.argv[2])) if len(sys.argv) > 2 else None
    settings = pickle.loads(control.recv(1 << 20))  # noqa: S301 - from our own parent, over a private socketpair
    logs.configure("mx", settings.log_level)
    asyncio.run(_session_process(control, settings, spools))


if __name__ == "__main__":
    main()
