"""Reading one ManageSieve command (or SASL response) off a connection, within the limits.

A literal's size is judged from its announcement, before any of its octets are read:

* before authentication a command's literals may hold ``PRE_AUTH_LITERALS`` octets together (a
  SASL PLAIN response is far smaller); past that the connection ends with ``BYE``, unread: an
  anonymous peer cannot make the server hold or even read its bytes;
* after it, one literal may hold a whole script (``MAX_SIEVE_SCRIPT_BYTES``). A larger one is
  passed over without being kept (read and dropped in pieces, up to ``SKIP_MAX`` octets), and the
  command gets ``NO`` (PUTSCRIPT: ``NO (QUOTA/MAXSIZE)``, RFC 5804 §1.5), so a client that uploads a
  script too large learns why and the session goes on. Beyond ``SKIP_MAX``: ``BYE``.

ManageSieve has no continuation request (RFC 5804 §4): the octets follow the announcement at once,
whatever the server answers, so a command refused mid-way has its remaining literals passed over
too, and a malformed line's literal as well (``ParseError.skip``), or the next command could not be
found. A line longer than ``MAX_LINE`` raises ``LineTooLong`` and the session says ``BYE``.
"""

from __future__ import annotations

from typing import Protocol

from sealmail.config.models import MAX_SIEVE_SCRIPT_BYTES
from sealmail.managesieve import wire
from sealmail.managesieve.parser import CommandParser, LiteralHead, ParseError, trailing_literal

MAX_LINE = 8 * 1024  # a command line without its literals; RFC 5804 §4 quoted strings are <= 1024 octets
PRE_AUTH_LITERALS = 8 * 1024
COMMAND_LITERALS = MAX_SIEVE_SCRIPT_BYTES + MAX_LINE  # PUTSCRIPT: a script and its name
SKIP_MAX = 1024 * 1024
_CHUNK = 64 * 1024


class Reading(Protocol):
    """What the reader needs of a connection (``sealmail.net.server.Connection`` provides it)."""

    async def readline(self, timeout: float | None = None) -> bytes: ...

    async def readexactly(self, count: int, timeout: float | None = None) -> bytes: ...


class TooLarge(Exception):
    """A literal over the limits; ``reply`` is the answer, ``close`` whether the connection must end."""

    def __init__(self, reply: bytes, *, close: bool) -> None:
        super().__init__(reply.decode("utf-8", "replace").strip())
        self.reply = reply
        self.close = close


async def read_command(conn: Reading, *, authenticated: bool, timeout: float) -> CommandParser:
    """One command's lines and literals, assembled; ``command()`` or ``response()`` on the result.

    Raises ``ParseError`` (answered NO; any literal it announced was passed over), ``TooLarge``,
    ``LineTooLong``, ``ConnectionClosed`` and ``TimeoutError``.
    """
    parser = CommandParser()
    total = 0
    line = await conn.readline(timeout)
    while True:
        try:
            head = parser.feed(line)
        except ParseError as exc:
            if exc.skip is not None:
                await _pass_over(conn, exc.skip, SKIP_MAX if authenticated else PRE_AUTH_LITERALS, timeout)
            raise
        if head is None:
            return parser
        if authenticated:
            too_big = head.size > MAX_SIEVE_SCRIPT_BYTES or total + head.size > COMMAND_LITERALS
        else:
            too_big = total + head.size > PRE_AUTH_LITERALS
        if too_big:
            await _refuse(conn, parser.name, head, authenticated, timeout)
        parser.literal(await conn.readexactly(head.size, timeout))
        total += head.size
        line = await conn.readline(timeout)


async def _refuse(conn: Reading, name: str | None, head: LiteralHead, authenticated: bool, timeout: float) -> None:
    if name in ("PUTSCRIPT", "CHECKSCRIPT"):
        text = f"Scripts are limited to {MAX_SIEVE_SCRIPT_BYTES} octets"
        # RFC 5804 §1.5 / §2.6: storing it would pass the limit. §2.12: CHECKSCRIPT checks no quota.
        code = "QUOTA/MAXSIZE" if name == "PUTSCRIPT" else None
    else:
        text, code = "Literal too large", None
    if not authenticated:
        raise TooLarge(wire.response("BYE", "Literal too large before authentication"), close=True)
    if head.size > SKIP_MAX:
        raise TooLarge(wire.response("BYE", text, code), close=True)
    await _pass_over(conn, head, SKIP_MAX, timeout)
    raise TooLarge(wire.response("NO", text, code), close=False)


async def _pass_over(conn: Reading, head: LiteralHead | None, budget: int, timeout: float) -> None:
    """Read and drop ``head``'s octets and the rest of the command, up to ``budget`` octets of literals."""
    while head is not None:
        if head.size > budget:
            raise TooLarge(wire.response("BYE", "Literal too large"), close=True)
        budget -= head.size
        left = head.size
        while left:
            left -= len(await conn.readexactly(min(left, _CHUNK), timeout))
        head = trailing_literal(await conn.readline(timeout))
