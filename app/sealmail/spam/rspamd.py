"""rspamd's HTTP protocol: ``POST /checkv2`` on the normal worker, and its JSON answer; ``POST
/learnspam`` and ``/learnham`` on the controller worker (``RspamdController``).

Only the protocol lives here (what is sent, what comes back, what counts as "unavailable"); what
the MX does with an answer is ``spam.policy``. The message goes to rspamd in memory over loopback
HTTP as the pieces DATA was read in (never joined, never written anywhere), with the envelope in
request headers, as rspamd's protocol documents them: ``IP``, ``Helo``, ``Hostname`` (only when the
client's host name is known: without it rspamd looks up the PTR itself and scores a client that
has none, where ``Hostname: unknown`` would tell it not to look), ``From``, one ``Rcpt`` per
recipient, ``Queue-Id``, and ``User`` for a signed-in submission.

The scan is one HTTP/1.1 exchange on asyncio's streams framed by h11 (the sans-I/O HTTP/1.1 engine
httpx itself runs on) rather than through httpx's client: rspamd closes the connection after each
answer, so a connection pool keeps nothing, and httpx's layers (request and response models, the
pool, anyio, an attempt to import ``sniffio`` per request) cost the MX more CPU per message than the
rest of its rspamd path together (``bench/smtp_inbound.py --rspamd``, docs/developer-guide.md).
Learning (not per message) and ``ping`` (``sealmail status``) keep httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import h11
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


# rspamd (3.4, Debian 12) scores raw UTF-8 in From/To/Subject and an address with a UTF-8 local part as
# broken ("needs encoding", "invalid 8bit", "invalid From"): right for classic mail, wrong for an SMTPUTF8
# transaction, where RFC 6532 §3 makes UTF-8 in header fields valid. Those rules are off for such a
# message only (rspamd's per-request ``Settings``); every other rule still runs.
SMTPUTF8_EXEMPT = (
    "INVALID_FROM_8BIT",
    "INVALID_RCPT_8BIT",
    "FROM_INVALID",
    "FROM_NEEDS_ENCODING",
    "TO_NEEDS_ENCODING",
    "SUBJECT_NEEDS_ENCODING",
)
SMTPUTF8_SETTINGS = json.dumps({"symbols_disabled": list(SMTPUTF8_EXEMPT)}, separators=(",", ":"))


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
    smtputf8: bool = False  # the transaction asked for SMTPUTF8 (RFC 6531): UTF-8 header fields are valid

    def headers(self) -> list[tuple[str, str]]:
        out = [
            ("IP", self.ip),
            ("Helo", self.helo or "unknown"),
            *((("Hostname", self.hostname),) if self.hostname else ()),
            *((("From", f"<{sender}>"),) if (sender := _ascii_address(self.mail_from)) is not None else ()),
            ("Queue-Id", self.queue_id),
        ]
        out += [("Rcpt", f"<{address}>") for a in self.rcpt if (address := _ascii_address(a))]
        if self.user is not None:
            out.append(("User", self.user))
        if self.smtputf8:
            out.append(("Settings", SMTPUTF8_SETTINGS))
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


def _ascii_address(address: str) -> str | None:
    """An envelope address as rspamd can take it: ASCII, the domain as its A-label; None when the
    local part is not ASCII (SMTPUTF8). rspamd counts any 8-bit octet in its request headers as
    BROKEN_HEADERS (8 points), so such an address is left out: rspamd then reads the recipients (or
    the sender) from the message's own header. "" is the null reverse-path."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if at else ""
    except UnicodeError:
        return None
    return f"{local}@{ascii_domain}" if at and local.isascii() else None


def _header_value(value: str) -> str:
    text = value.replace("\r", " ").replace("\n", " ")
    return text.encode("utf-8").decode("latin-1")  # one character per octet: sent as latin-1, the UTF-8 octets


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
        headers = [
            (b"Host", self._netloc.encode("ascii")),
            (b"Connection", b"close"),
            (b"Content-Length", str(size).encode("ascii")),
            *((k.encode("ascii"), v.encode("latin-1")) for k, v in request.headers()),
        ]
        try:
            async with asyncio.timeout(self.timeout):  # the whole exchange: a trickling answer too
                status, body = await self._exchange(headers, message)
        except TimeoutError as exc:
            raise RspamdUnavailable(f"no answer within {self.timeout:g} s") from exc
        except (OSError, EOFError, ValueError, h11.ProtocolError) as exc:  # refused, reset, cut short, not HTTP
            raise RspamdUnavailable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
        if status != 200:
            raise RspamdUnavailable(f"HTTP {status}")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise RspamdUnavailable("the answer is not JSON") from exc
        return parse_result(data)

    async def _exchange(self, headers: list[tuple[bytes, bytes]], message: Sequence[Buffer]) -> tuple[int, bytes]:
        """Send the request (the message as its pieces, never joined here); the status and the body.

        h11 frames the exchange (Content-Length or chunked, a header cut short, a body cut short), and
        ``h11.ProtocolError`` says the other side does not speak HTTP/1.1 as it should."""
        http = h11.Connection(our_role=h11.CLIENT)
        reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            writer.writelines(
                http.send_with_data_passthrough(h11.Request(method="POST", target=self._path, headers=headers)) or []
            )
            for piece in message:
                # Passed through as it is (a memoryview too): h11 only counts it against Content-Length.
                writer.writelines(http.send_with_data_passthrough(h11.Data(data=piece)) or [])  # type: ignore[arg-type]
            writer.writelines(http.send_with_data_passthrough(h11.EndOfMessage()) or [])
            await writer.drain()
            status, body = 0, bytearray()
            while True:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    http.receive_data(await reader.read(65536))  # b"": the connection closed
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_ANSWER:
                        raise ValueError(f"an answer over {MAX_ANSWER} octets")
                elif isinstance(event, h11.EndOfMessage):
                    return status, bytes(body)
                elif isinstance(event, h11.ConnectionClosed):
                    raise EOFError("the connection closed before an answer")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


LearnClass = Literal["spam", "ham"]


class Learned(enum.Enum):
    """How the controller took a message to learn; each one means the job is done."""

    LEARNED = "learned"  # 200: counted in its class (or moved there from the other one)
    KNOWN = "known"  # 208: learned in this class before (rspamd remembers each message's digest)
    UNLEARNABLE = "unlearnable"  # 204 too few tokens, or a 4xx about this message: trying again cannot help


class RspamdController:
    """Teaches rspamd's Bayes classifier through the controller worker (11334), with its password.

    ``learn`` raises ``RspamdUnavailable`` when the controller cannot take the message now (refused,
    timed out, a 5xx, a wrong password: the operator's to fix): the caller keeps the job for later.
    """

    def __init__(self, url: str, password: str | None, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._password = password
        self._client = httpx.AsyncClient(timeout=timeout, trust_env=False)

    async def close(self) -> None:
        await self._client.aclose()

    async def learn(self, message: bytes, kind: LearnClass) -> Learned:
        headers = {"Password": self._password} if self._password is not None else {}
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(f"{self.url}/learn{kind}", content=message, headers=headers)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise RspamdUnavailable(f"no answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise RspamdUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return learn_answer(response.status_code)


def learn_answer(status: int) -> Learned:
    """What the controller's HTTP status for ``/learnspam``/``/learnham`` means (rspamd 3.x)."""
    if status == 200:
        return Learned.LEARNED
    if status == 208:  # "<message-id> has been already learned as spam, ignore it"
        return Learned.KNOWN
    if status == 204 or (400 <= status < 500 and status not in (401, 403, 404, 408, 429)):
        return Learned.UNLEARNABLE  # 204: "contains less tokens than required"; 400: empty body...
    # 401/403 wrong password, 404 not a controller, 5xx (its Redis is away...): not this message's fault
    raise RspamdUnavailable(f"HTTP {status} from the controller")


def ping(url: str, timeout: float = 3.0) -> str | None:
    """None when rspamd answers ``GET /ping`` at ``url``, else why not (``sealmail status``)."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/ping", timeout=timeout, trust_env=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if response.status_code != 200 or not response.text.strip().startswith("pong"):
        return f"HTTP {response.status_code} from /ping"
    return None
