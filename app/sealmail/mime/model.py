"""The parsed form of a message: a MIME tree with byte offsets, envelopes, and its exact JSON encoding.

Strings taken from headers are ``str``. Header octets that are not valid UTF-8 are kept with the
``surrogateescape`` error handler, so the original bytes can be recovered exactly
(``value.encode("utf-8", "surrogateescape")``) and the JSON form round-trips them (``json`` escapes
lone surrogates as ``\\udcXX``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sealmail.mime.headers import Params, decode_words, decoded_param, unfold

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address (RFC 9051 §7.5.2): ``mailbox=None, host=None`` ends a group, ``host=None`` starts one."""

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None

    @property
    def is_group_start(self) -> bool:
        return self.host is None and self.mailbox is not None

    @property
    def is_group_end(self) -> bool:
        return self.host is None and self.mailbox is None


AddressList = tuple[Address, ...]


@dataclass(frozen=True, slots=True)
class Envelope:
    """The ENVELOPE fields as the header says them: unfolded, encoded-words intact; ``None`` when absent.

    ``sender`` and ``reply_to`` are stored as written; :func:`sealmail.mime.envelope_value` applies
    the RFC 9051 default (the From list) when they are absent or empty.
    """

    date: str | None = None
    subject: str | None = None
    from_: AddressList | None = None
    sender: AddressList | None = None
    reply_to: AddressList | None = None
    to: AddressList | None = None
    cc: AddressList | None = None
    bcc: AddressList | None = None
    in_reply_to: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One top-level header field: the name as written and the raw value (folding kept, final CRLF removed)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity. Offsets index the raw message; ``header_end == body_start``.

    The header range includes the blank line that ends it (when there is one). The body range is the
    content IMAP calls ``BODY[n]``: for a multipart part everything between its header and the CRLF
    before the next enclosing delimiter, for message/rfc822 the whole encapsulated message.
    """

    header_start: int
    header_end: int
    body_start: int
    body_end: int
    type: str = "text"  # lower-cased; RFC 2045 §5.2 default text/plain
    subtype: str = "plain"
    params: Params = ()  # Content-Type parameters in their IMAP form (RFC 2231 continuations merged)
    id: str | None = None
    description: str | None = None
    encoding: str | None = None  # Content-Transfer-Encoding as written; None when absent (7bit)
    md5: str | None = None
    disposition: str | None = None
    disposition_params: Params = ()
    language: tuple[str, ...] | None = None
    location: str | None = None
    lines: int | None = None  # for text/* and message/rfc822|global
    children: tuple[Part, ...] = ()  # multipart body parts
    message: Part | None = None  # the encapsulated message of message/rfc822 or message/global
    envelope: Envelope | None = None  # its envelope
    opaque: bool = False  # a limit stopped parsing here: treated as application/octet-stream

    @property
    def size(self) -> int:
        """Body size in octets (RFC 9051 body-fld-octets)."""
        return self.body_end - self.body_start

    @property
    def media_type(self) -> str:
        return f"{self.type}/{self.subtype}"

    @property
    def is_multipart(self) -> bool:
        return self.type == "multipart" and not self.opaque

    @property
    def is_message(self) -> bool:
        """message/rfc822 or message/global (RFC 6532 §3.7) with a parsed encapsulated message."""
        return self.message is not None

    def param(self, name: str) -> str | None:
        """A Content-Type parameter, RFC 2231 and RFC 2047 decoded; ``None`` when absent."""
        return decoded_param(self.params, name)

    def disposition_param(self, name: str) -> str | None:
        """A Content-Disposition parameter, decoded like :meth:`param`."""
        return decoded_param(self.disposition_params, name)

    @property
    def filename(self) -> str | None:
        """The attachment's name: Content-Disposition ``filename``, else Content-Type ``name`` (RFC 2183 §2.3)."""
        return self.disposition_param("filename") or self.param("name")

    def walk(self) -> Iterator[Part]:
        """This part and every part below it, depth first, in message order."""
        stack = [self]
        while stack:
            part = stack.pop()
            yield part
            below = list(part.children)
            if part.message is not None:
                below.append(part.message)
            stack.extend(reversed(below))


@dataclass(frozen=True, slots=True)
class HeaderValue:
    """One occurrence of a header field: unfolded raw value (encoded-words intact) and decoded text."""

    raw: str
    decoded: str


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything the store caches for one message, computed once at append time."""

    size: int
    root: Part
    envelope: Envelope
    headers: tuple[HeaderField, ...] = ()
    limits: tuple[str, ...] = field(default=())  # which abuse limits were hit: "depth", "parts", "header"

    def to_json(self) -> str:
        """The stored form; :meth:`from_json` gives back an equal object."""
        return json.dumps(_dump_message(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ParsedMessage:
        data = json.loads(text)
        if data.get("v") != FORMAT_VERSION:
            raise ValueError(f"unsupported parsed-message format {data.get('v')!r}")
        return _load_message(data)

    def header_field(self, name: str) -> list[HeaderValue]:
        """Every occurrence of a top-level header field, in message order (name case-insensitive)."""
        wanted = name.lower()
        out: list[HeaderValue] = []
        for f in self.headers:
            if f.name.lower() == wanted:
                value = unfold(f.value.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")
                out.append(HeaderValue(value, decode_words(value)))
        return out


# JSON: short keys, defaults omitted. Keys are part of the stored format: change FORMAT_VERSION with them.

_PART_KEYS = (
    ("header_start", "hs"),
    ("header_end", "he"),
    ("body_start", "bs"),
    ("body_end", "be"),
)
_PART_OPTIONAL = (
    ("id", "id"),
    ("description", "desc"),
    ("encoding", "enc"),
    ("md5", "md5"),
    ("disposition", "disp"),
    ("location", "loc"),
    ("lines", "lines"),
)
_ENVELOPE_STRINGS = (("date", "date"), ("subject", "subject"), ("in_reply_to", "irt"), ("message_id", "mid"))
_ENVELOPE_LISTS = (
    ("from_", "from"),
    ("sender", "sender"),
    ("reply_to", "reply_to"),
    ("to", "to"),
    ("cc", "cc"),
    ("bcc", "bcc"),
)


def _dump_message(msg: ParsedMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"v": FORMAT_VERSION, "size": msg.size, "root": _dump_part(msg.root)}
    out["env"] = _dump_envelope(msg.envelope)
    if msg.headers:
        out["hdr"] = [[h.name, h.value] for h in msg.headers]
    if msg.limits:
        out["limits"] = list(msg.limits)
    return out


def _load_message(data: dict[str, Any]) -> ParsedMessage:
    return ParsedMessage(
        size=data["size"],
        root=_load_part(data["root"]),
        envelope=_load_envelope(data["env"]),
        headers=tuple(HeaderField(name, value) for name, value in data.get("hdr", ())),
        limits=tuple(data.get("limits", ())),
    )


def _dump_part(part: Part) -> dict[str, Any]:
    out: dict[str, Any] = {short: getattr(part, name) for name, short in _PART_KEYS}
    out["t"] = [part.type, part.subtype]
    if part.params:
        out["p"] = [list(p) for p in part.params]
    for name, short in _PART_OPTIONAL:
        value = getattr(part, name)
        if value is not None:
            out[short] = value
    if part.disposition_params:
        out["dp"] = [list(p) for p in part.disposition_params]
    if part.language is not None:
        out["lang"] = list(part.language)
    if part.children:
        out["parts"] = [_dump_part(child) for child in part.children]
    if part.message is not None:
        out["msg"] = _dump_part(part.message)
    if part.envelope is not None:
        out["env"] = _dump_envelope(part.envelope)
    if part.opaque:
        out["opaque"] = True
    return out


def _load_part(data: dict[str, Any]) -> Part:
    kwargs: dict[str, Any] = {name: data[short] for name, short in _PART_KEYS}
    kwargs["type"], kwargs["subtype"] = data["t"]
    kwargs["params"] = tuple((k, v) for k, v in data.get("p", ()))
    for name, short in _PART_OPTIONAL:
        kwargs[name] = data.get(short)
    kwargs["disposition_params"] = tuple((k, v) for k, v in data.get("dp", ()))
    if "lang" in data:
        kwargs["language"] = tuple(data["lang"])
    kwargs["children"] = tuple(_load_part(child) for child in data.get("parts", ()))
    if "msg" in data:
        kwargs["message"] = _load_part(data["msg"])
    if "env" in data:
        kwargs["envelope"] = _load_envelope(data["env"])
    kwargs["opaque"] = data.get("opaque", False)
    return Part(**kwargs)


def _dump_envelope(env: Envelope) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, short in _ENVELOPE_STRINGS:
        value = getattr(env, name)
        if value is not None:
            out[short] = value
    for name, short in _ENVELOPE_LISTS:
        value = getattr(env, name)
        if value is not None:
            out[short] = [[a.name, a.adl, a.mailbox, a.host] for a in value]
    return out


def _load_envelope(data: dict[str, Any]) -> Envelope:
    kwargs: dict[str, Any] = {name: data.get(short) for name, short in _ENVELOPE_STRINGS}
    for name, short in _ENVELOPE_LISTS:
        if short in data:
            kwargs[name] = tuple(Address(*a) for a in data[short])
    return Envelope(**kwargs)
