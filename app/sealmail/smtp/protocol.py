"""aiosmtpd's SMTP protocol with what a public MX needs on top.

* Enhanced status codes (RFC 2034, RFC 3463) on every reply, including aiosmtpd's own ones,
  which carry none — except the greeting and the EHLO/HELO reply, whose text must start with the
  server's domain (RFC 5321 §4.3.1, RFC 2034 §3).
* Per-IP and global connection limits: over them, ``421 4.7.0`` and the slot is freed.
* A session that makes too many errors is closed with ``421 4.7.0``.
* An idle session is closed with ``421 4.4.2`` (RFC 5321 §4.5.3.2.7) instead of silently. Only
  whole commands restart that clock; during DATA each block does (§4.5.3.2.6), but past the idle
  timeout DATA must also average ``mx_min_data_rate`` bytes/s (as Postfix's smtpd_min_data_rate),
  so a client trickling a byte every few seconds cannot hold its slot for ever.
* Oversized messages get ``552 5.3.4`` (RFC 3463: message too big for system).
* DATA is read in chunks (``smtp.dataread``), not aiosmtpd's line by line, and handed to the
  handler as those chunks (``envelope.content`` is a ``list[bytes]``, never joined here), so a
  message is held once, and the messages being received by one process together
  stay under ``mx_max_inflight_bytes``: a message that would pass it gets ``451 4.3.1`` (RFC 3463:
  mail system full) at once, not after a wait, and the sender retries later as for any 4xx.

aiosmtpd runs inside Sealmail's own event loop (``loop.create_server``), not its threaded Controller.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, AnyStr, Self

from aiosmtpd.smtp import MISSING, SMTP

from sealmail.net.drain import SMTP_DRAINING
from sealmail.smtp.dataread import DotReader

_READ_SIZE = 1 << 18  # what one read of DATA takes from the socket's buffer at most

# The common MAIL FROM/RCPT TO argument: <dot-atom@ascii-domain>, then parameters. aiosmtpd parses
# every argument with the email package's RFC 5322 parser (~40 µs); this gives the same answer for
# these, and anything else (quoted local parts, comments, UTF-8, source routes) still goes to it.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(
    rf"<((?:{_ATEXT}(?:\.{_ATEXT})*)@(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*))>[ \t]*+(?!\()(.*)", re.DOTALL
)
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(\s|$)")
_REPLY = re.compile(r"^(\d{3})([ -])(.*)$", re.DOTALL)

# Default enhanced codes for replies that do not carry one (RFC 3463 classes and subjects).
_DEFAULT_ENHANCED = {
    "211": "2.0.0",
    "214": "2.0.0",
    "220": "2.0.0",
    "221": "2.0.0",
    "235": "2.7.0",
    "250": "2.0.0",
    "251": "2.1.5",
    "252": "2.0.0",
    "421": "4.3.0",
    "450": "4.2.0",
    "451": "4.3.0",
    "452": "4.3.1",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "534": "5.7.9",
    "535": "5.7.8",
    "538": "5.7.11",
    "550": "5.0.0",
    "551": "5.1.6",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}


def with_enhanced_code(status: str) -> str:
    """Add the default enhanced code to a reply line that lacks one (multi-line replies: each line)."""
    if "\r\n" in status:
        return "\r\n".join(with_enhanced_code(line) for line in status.split("\r\n"))
    match = _REPLY.match(status)
    if match is None or _HAS_ENHANCED.match(status):
        return status
    code, sep, text = match.groups()
    enhanced = _DEFAULT_ENHANCED.get(code) or (f"{code[0]}.0.0" if code[0] in "245" else None)
    if enhanced is None:  # 354 and other intermediate replies carry no enhanced code
        return status
    if text.startswith("Error: "):
        text = text[len("Error: ") :]
    if "too much mail data" in text.lower() or "exceeds fixed maximum message size" in text.lower():
        text = "Message too big for system"
    return f"{code}{sep}{enhanced} {text}"


def _declared_size(mail_options: list[str]) -> int:
    """The SIZE parameter of MAIL FROM (RFC 1870), 0 when there is none."""
    for option in mail_options:
        if option[:5].upper() == "SIZE=" and option[5:].isdigit():
            return int(option[5:])
    return 0


@dataclass
class ConnectionBook:
    """Open SMTP connections per peer address (shared by every listener of a component)."""

    max_total: int
    max_per_ip: int
    per_ip: Counter[str] = field(default_factory=Counter)
    total: int = 0
    sessions: set[SealmailSMTP] = field(default_factory=set)
    max_inflight: int = 0  # DATA bytes held at once by this process's sessions; 0: no limit
    inflight: int = 0
    # Draining (``sealmail.net.drain``): while true, a new connection gets 421 4.3.2 and is closed.
    draining: Callable[[], bool] = field(default=lambda: False)

    def take_inflight(self, size: int) -> bool:
        """Count ``size`` more DATA bytes held, unless that passes ``max_inflight``."""
        if self.max_inflight and self.inflight + size > self.max_inflight:
            return False
        self.inflight += size
        return True

    def give_inflight(self, size: int) -> None:
        self.inflight -= size

    async def close_all(self, grace: float = 5.0) -> None:
        """Stopping: close every open session's connection (asyncio's Server leaves them open)."""
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
        deadline = asyncio.get_running_loop().time() + grace
        while self.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    def admit(self, ip: str) -> bool:
        if self.total >= self.max_total or self.per_ip[ip] >= self.max_per_ip:
            return False
        self.total += 1
        self.per_ip[ip] += 1
        return True

    def release(self, ip: str) -> None:
        self.total -= 1
        self.per_ip[ip] -= 1
        if self.per_ip[ip] <= 0:
            del self.per_ip[ip]


class SealmailSMTP(SMTP):
    @classmethod
    def for_settings(cls, handler: Any, settings: Any, book: ConnectionBook, ident: str, **options: Any) -> Self:
        """A session with the options every Sealmail SMTP listener shares, plus the listener's own."""
        book.max_inflight = settings.mx_max_inflight_bytes
        return cls(
            handler,
            book=book,
            max_errors=settings.mx_max_errors,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,  # RFC 6531: aiosmtpd leaves it off unless asked
            decode_data=False,
            hostname=settings.mail_hostname,
            ident=ident,
            timeout=settings.mx_idle_timeout,
            command_call_limit=settings.mx_command_limit,
            min_data_rate=settings.mx_min_data_rate,
            **options,
        )

    def __init__(
        self, handler: Any, *, book: ConnectionBook, max_errors: int, min_data_rate: int = 500, **kwargs: Any
    ) -> None:
        super().__init__(handler, **kwargs)
        self._min_data_rate = min_data_rate
        self._book = book
        self._max_errors = max_errors
        self._errors = 0
        self._admitted = False
        self._refused = False
        self._greeted = False
        self._verbatim = False
        self._peer_ip = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._admitted:
            # STARTTLS: aiosmtpd calls this again for the TLS layer of the same connection.
            super().connection_made(transport)
            return
        peer = transport.get_extra_info("peername") or ("?", 0)
        self._peer_ip = str(peer[0])
        if self._book.draining():
            # RFC 5321 §3.8: a server that must not take mail now answers 421 and closes; the
            # sender keeps the message and tries the next MX (or this one later).
            self._refused = True
            transport.write(SMTP_DRAINING)  # type: ignore[attr-defined]
            transport.close()
            return
        if not self._book.admit(self._peer_ip):
            # Refuse before aiosmtpd starts a session: one line, then close (RFC 5321 §3.8).
            self._refused = True
            transport.write(b"421 4.7.0 Too many connections, try again later\r\n")  # type: ignore[attr-defined]
            transport.close()
            return
        self._admitted = True
        self._book.sessions.add(self)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return  # aiosmtpd never saw this connection
        if self._admitted:
            self._admitted = False
            self._book.release(self._peer_ip)
            self._book.sessions.discard(self)
        super().connection_lost(exc)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _SIMPLE_PATH.fullmatch(arg)
        if match is None:
            return super()._getaddr(arg)
        address = match.group(1)
        if self.local_part_limit and address.rindex("@") > self.local_part_limit:
            return None, None
        return address, match.group(2)

    def _timeout_cb(self) -> None:  # aiosmtpd's hook; we answer before closing
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"421 4.4.2 Idle timeout, closing connection\r\n")  # type: ignore[attr-defined]
        super()._timeout_cb()  # type: ignore[no-untyped-call]  # aiosmtpd is unannotated

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command method
        """aiosmtpd's DATA with the message read in chunks (``smtp.dataread``), in bounded memory."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        if not self._book.take_inflight(_declared_size(self.envelope.mail_options) or 1):
            await self.push("451 4.3.1 Too much mail in progress, try again later")
            return
        self._book.give_inflight(_declared_size(self.envelope.mail_options) or 1)
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        reader = DotReader(self.data_size_limit)
        held = [0]  # bytes counted in the book for this message
        try:
            busy = await self._read_data(reader, held)
            if busy is None:  # the connection ended
                return
            if reader.over:
                self._set_post_data_state()  # type: ignore[no-untyped-call]  # aiosmtpd is unannotated
                if busy:
                    await self.push("451 4.3.1 Too much mail in progress, try again later")
                else:
                    await self.push("552 5.3.4 Message too big for system")
                return
            self.envelope.content = self.envelope.original_content = reader.take()  # type: ignore[assignment]
            status = await self._call_handler_hook("DATA") if "DATA" in self._handle_hooks else MISSING
            self._set_post_data_state()  # type: ignore[no-untyped-call]  # aiosmtpd is unannotated
            await self.push("250 OK" if status is MISSING else status)
        finally:
            self._book.give_inflight(held[0])

    async def _read_data(self, reader: DotReader, held: list[int]) -> bool | None:
        """Read to the end of data; True when the in-flight limit made it drop the message, None at EOF."""
        busy = False
        loop = asyncio.get_running_loop()
        started, received = loop.time(), 0
        while True:
            try:
                piece = await self._reader.read(_READ_SIZE)
            except asyncio.CancelledError:  # the connection went away during DATA
                self._writer.close()
                raise
            if not piece:
                self._writer.close()
                return None
            # Each block restarts the clock (RFC 5321 §4.5.3.2.6), up to the deadline the minimum
            # rate allows: the idle timeout plus what the bytes so far have earned.
            received += len(piece)
            earned = started + self._timeout_duration + received / self._min_data_rate - loop.time()
            self._reset_timeout(max(0.001, min(self._timeout_duration, earned)))
            rest = reader.feed(piece)
            kept = reader.kept
            if kept > held[0]:
                if self._book.take_inflight(kept - held[0]):
                    held[0] = kept
                else:
                    busy = True
                    reader.drop()
            if rest is not None:
                break
        if rest:
            # Pipelined commands after the end of data (RFC 2920): back to the command reader.
            self._reader._buffer[0:0] = rest  # type: ignore[attr-defined]
        return busy

    async def smtp_EHLO(self, hostname: str) -> None:  # noqa: N802 - aiosmtpd's command method
        self._verbatim = True  # RFC 2034 §3: no enhanced codes in the EHLO response (the domain comes first)
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._verbatim = False

    async def smtp_HELO(self, hostname: str) -> None:  # noqa: N802
        self._verbatim = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._verbatim = False

    async def push(self, status: AnyStr) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        if not self._greeted:
            # The greeting is "220 <domain> text" (RFC 5321 §4.3.1): the domain must come first.
            self._greeted = True
        elif not (self._verbatim and text.startswith("250")):
            if text.startswith("502 5.5.1 Too many unrecognized commands"):
                # aiosmtpd closes the connection after this one: RFC 5321 §3.8 says 421 for that.
                text = "421 4.7.0 Too many unrecognized commands, closing connection"
            text = with_enhanced_code(text)
        await super().push(text)
        if text[:1] in ("4", "5") and not text.startswith("421"):
            self._errors += 1
            if self._errors >= self._max_errors:
                await super().push("421 4.7.0 Too many errors, closing connection")
                if self.transport is not None:
                    self.transport.close()
