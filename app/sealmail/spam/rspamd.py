"""rspamd's HTTP protocol: ``POST /checkv2`` on the normal worker, and its JSON answer.

Only the protocol lives here (what is sent, what comes back, what counts as "unavailable"); what
the MX does with an answer is ``spam.policy``. The message goes to rspamd in memory over loopback
HTTP as the pieces DATA was read in (never joined, never written anywhere), with the envelope in
request headers, as rspamd's protocol documents them: ``IP``, ``Helo``, ``Hostname`` (only when the
client's host name is known: without it rspamd looks up the PTR itself and scores a client that
has none, where ``Hostname: unknown`` would tell it not to look), ``From``, one ``Rcpt`` per
recipient, ``Queue-Id``, and ``User`` for a signed-in submission.

The scan is one HTTP/1.1 exchange on asyncio's streams, written here rather than through httpx:
rspamd closes the connection after each answer, so a client's connection pool keeps nothing, and
httpx's layers (request and response models, the pool, anyio, an attempt to import ``sniffio`` per
request) cost the MX more CPU per message than the rest of its rspamd path together
(``bench/smtp_inbound.py --rspamd``, docs/developer-guide.md). ``ping`` (``sealmail status``) keeps
httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from sealmail.crypto.sealed import Buffer

# rspamd's action names (``action`` in the answer)
REJECT = "reject"
SOFT_REJECT = "soft reject"
GREYLIST = "greylist"
REWRITE_SUBJECT = "rewrite subject"
ADD_HEADER = "add header"
NO_ACTION = "no action"


class RspamdUnavailable(Exception):
    """rspamd did not give an answer we can use: refused, timed out, an HTTP error, bad JSON."""


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """The envelope of one message, as rspamd wants it beside the message."""

    ip: str
    helo: str
    mail_from: str  # "" for the null reverse-path
    rcpt: Sequence[str]
    queue_id: str
    hostname: str | None = None  # the client's verified host name; None: rspamd resolves the PTR itself
    user: str | None = None  # the signed-in user (submission only)

    def headers(self) -> list[tuple[str, str]]:
        out = [
            ("IP", self.ip),
            ("Helo", self.helo or "unknown"),
            *((("Hostname", self.hostname),) if self.hostname else ()),
            ("From", f"<{self.mail_from}>" if self.mail_from else "<>"),
            ("Queue-Id", self.queue_id),
        ]
        out += [("Rcpt", f"<{address}>") for address in self.rcpt]
        if self.user is not None:
            out.append(("User", self.user))
        # Header values are ASCII; an SMTPUTF8 address travels UTF-8 encoded, as rspamd reads it.
        return [(name, _header_value(value)) for name, value in out]


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    score: float
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScanResult:
    action: str
    score: float
    required_score: float
    symbols: tuple[Symbol, ...] = ()
    smtp_message: str | None = None  # what rspamd wants said to the client (``messages.smtp_message``)
    skipped: bool = False  # rspamd decided without running every rule (GTUBE, settings)
    messages: dict[str, str] = field(default_factory=dict)


def parse_result(data: Any) -> ScanResult:
    """rspamd's ``/checkv2`` JSON as a typed value; ``RspamdUnavailable`` when it is not one."""
    if not isinstance(data, dict):
        raise RspamdUnavailable("the answer is not a JSON object")
    action = data.get("action")
    score = data.get("score")
    required = data.get("required_score", math.inf)
    if not isinstance(action, str) or not isinstance(score, int | float) or not isinstance(required, int | float):
        raise RspamdUnavailable("the answer has no action or score")
    symbols = []
    raw_symbols = data.get("symbols")
    if isinstance(raw_symbols, dict):
        for name, item in raw_symbols.items():
            if not isinstance(item, dict):
                continue
            value = item.get("score", 0.0)
            options = item.get("options") or []
            symbols.append(
                Symbol(
                    str(name),
                    float(value) if _number(value) else 0.0,
                    tuple(str(o) for o in options) if isinstance(options, list) else (),
                )
            )
    messages = data.get("messages")
    messages = {str(k): str(v) for k, v in messages.items() if isinstance(v, str)} if isinstance(messages, dict) else {}
    return ScanResult(
        action=action,
        score=float(score),
        required_score=float(required),
        symbols=tuple(sorted(symbols, key=lambda s: (-s.score, s.name))),
        smtp_message=messages.get("smtp_message"),
        skipped=bool(data.get("is_skipped", False)),
        messages=messages,
    )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _header_value(value: str) -> str:
    text = value.replace("\r", " ").replace("\n", " ")
    return text.encode("utf-8").decode("latin-1")  # written as latin-1: the UTF-8 bytes as they are


MAX_ANSWER = 1 << 20  # octets of an answer's body (rspamd's JSON is a few KB); more is not rspamd


class RspamdClient:
    """Asks one rspamd normal worker: one connection per scan (rspamd closes it after its answer),
    the whole exchange bounded by ``timeout``."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        parts = urlsplit(self.url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._netloc = parts.netloc
        self._path = f"{parts.path}/checkv2"

    async def close(self) -> None:
        """Nothing is kept between scans."""

    async def check(self, message: Sequence[Buffer], request: ScanRequest) -> ScanResult:
        size = sum(len(piece) for piece in message)
        lines = [
            f"POST {self._path} HTTP/1.1",
            f"Host: {self._netloc}",
            "Connection: close",
            f"Content-Length: {size}",
            *(f"{name}: {value}" for name, value in request.headers()),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            async with asyncio.timeout(self.timeout):  # the whole exchange: a trickling answer too
                status, body = await self._exchange(head, message)
        except TimeoutError as exc:
            raise RspamdUnavailable(f"no answer within {self.timeout:g} s") from exc
        except (OSError, EOFError, ValueError) as exc:  # refused, reset, cut short, not HTTP
            raise RspamdUnavailable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
        if status != 200:
            raise RspamdUnavailable(f"HTTP {status}")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise RspamdUnavailable("the answer is not JSON") from exc
        return parse_result(data)

    async def _exchange(self, head: bytes, message: Sequence[Buffer]) -> tuple[int, bytes]:
        """Send the request (the message as its pieces, never joined here); the status and the body."""
        reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            writer.writelines([head, *message])
            await writer.drain()
            status_line = await reader.readline()
            version, _, rest = status_line.partition(b" ")
            if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
                raise ValueError(f"not an HTTP answer: {status_line[:40]!r}")
            length = None
            while (line := await reader.readline()) not in (b"\r\n", b"\n"):
                if not line:
                    raise EOFError("the connection closed in the answer's header")
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and value.strip().lower() != b"identity":
                    raise ValueError("a chunked answer (rspamd sends Content-Length)")
            if length is None:  # the body runs to the end of the connection
                body = b""
                while len(body) <= MAX_ANSWER and (chunk := await reader.read(65536)):
                    body += chunk
            else:
                body = await reader.readexactly(min(length, MAX_ANSWER + 1))  # IncompleteReadError: an EOFError
            if len(body) > MAX_ANSWER:
                raise ValueError(f"an answer over {MAX_ANSWER} octets")
            return int(rest[:3]), body
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def ping(url: str, timeout: float = 3.0) -> str | None:
    """None when rspamd answers ``GET /ping`` at ``url``, else why not (``sealmail status``)."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/ping", timeout=timeout, trust_env=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if response.status_code != 200 or not response.text.strip().startswith("pong"):
        return f"HTTP {response.status_code} from /ping"
    return None
