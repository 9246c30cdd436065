"""rspamd's HTTP protocol: ``POST /checkv2`` on the normal worker, and its JSON answer; ``POST
/learnspam`` and ``/learnham`` on the controller worker (``RspamdController``).

Only the protocol lives here (what is sent, what comes back, what counts as "unavailable"); what
the MX does with an answer is ``spam.policy``. The message goes to rspamd in memory over loopback
HTTP as the pieces DATA was read in (never joined, never written anywhere), with the envelope in
request headers, as rspamd's protocol documents them: ``IP``, ``Helo``, ``Hostname`` (only when the
client's host name is known: without it rspamd looks up the PTR itself and scores a client that
has none, where ``Hostname: unknown`` would tell it not to look), ``From``, one ``Rcpt`` per
recipient, ``Queue-Id``, and ``User`` for a signed-in submission.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
            *((("From", f"<{sender}>"),) if (sender := _ascii_address(self.mail_from)) is not None else ()),
            ("Queue-Id", self.queue_id),
        ]
        out += [("Rcpt", f"<{address}>") for a in self.rcpt if (address := _ascii_address(a))]
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


class RspamdClient:
    """Asks one rspamd normal worker; one connection pool per process, bounded by ``timeout``."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # Loopback or the private network: no proxies from the environment, no TLS.
        self._client = httpx.AsyncClient(timeout=timeout, trust_env=False)

    async def close(self) -> None:
        await self._client.aclose()

    async def check(self, message: Sequence[Buffer], request: ScanRequest) -> ScanResult:
        size = sum(len(piece) for piece in message)
        # As bytes: httpx encodes str header values as ASCII and refuses anything else, where an
        # SMTPUTF8 address must reach rspamd as its UTF-8 octets (``_header_value``).
        headers = [(k.encode("ascii"), v.encode("latin-1")) for k, v in request.headers()]
        headers.append((b"Content-Length", str(size).encode("ascii")))
        try:
            # httpx bounds each read and write; this bounds the whole exchange (a trickling answer too).
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(
                    f"{self.url}/checkv2", content=_pieces(message), headers=headers, timeout=self.timeout
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise RspamdUnavailable(f"no answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise RspamdUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise RspamdUnavailable(f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError as exc:
            raise RspamdUnavailable("the answer is not JSON") from exc
        return parse_result(data)


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


async def _pieces(message: Sequence[Buffer]) -> AsyncIterator[bytes]:
    for piece in message:
        yield piece if isinstance(piece, bytes) else bytes(piece)


def ping(url: str, timeout: float = 3.0) -> str | None:
    """None when rspamd answers ``GET /ping`` at ``url``, else why not (``sealmail status``)."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/ping", timeout=timeout, trust_env=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if response.status_code != 200 or not response.text.strip().startswith("pong"):
        return f"HTTP {response.status_code} from /ping"
    return None
