"""An independent SMTP receiver for outbound tests: aiosmtpd in the test's loop, recording what it accepts.

``replies`` maps a recipient to the reply it should get at RCPT (e.g. "550 5.1.1 No such user");
``stop()``/``start()`` take it down (open connections too) and bring it back on the same port.
``mail_lines`` keeps every MAIL command exactly as it arrived (``MAIL FROM:<a@b> SIZE=12 ...``).
``hosts`` are the addresses it listens on, all on ``port`` (``("127.0.0.1", "::1")``: both families).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP


class _RecordingSMTP(SMTP):
    """aiosmtpd's server, keeping each MAIL command line before parsing it."""

    def __init__(self, sink: Sink, **kwargs) -> None:
        super().__init__(sink, **kwargs)
        self._sink = sink

    async def smtp_MAIL(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command method
        self._sink.mail_lines.append(f"MAIL {arg}")
        await super().smtp_MAIL(arg)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]
    rcpt_options: list[str]
    tls: bool
    peer: tuple[str, int] | None = None  # the sending side of the TCP connection (one per session)


@dataclass
class Sink:
    port: int
    tls_context: ssl.SSLContext | None = None
    replies: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    smtputf8: bool = True
    mail_lines: list[str] = field(default_factory=list)
    hosts: tuple[str, ...] = ("127.0.0.1",)
    _server: asyncio.Server | None = None
    _sessions: list[SMTP] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content,
                list(envelope.mail_options),
                list(envelope.rcpt_options),
                session.ssl is not None,
                tuple(session.peer[:2]) if session.peer else None,
            )
        )
        return "250 2.0.0 Accepted by the sink"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def protocol() -> SMTP:
            session = _RecordingSMTP(
                self,
                hostname="mx.b.test",
                enable_SMTPUTF8=self.smtputf8,
                decode_data=False,
                tls_context=self.tls_context,
                require_starttls=False,
            )
            self._sessions.append(session)
            return session

        self._server = await loop.create_server(protocol, list(self.hosts), self.port)

    async def stop(self) -> None:
        """Down like a real server going away: the listener and every open connection close."""
        for session in self._sessions:
            if session.transport is not None:
                session.transport.close()
        self._sessions.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
