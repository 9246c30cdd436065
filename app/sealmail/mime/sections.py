"""IMAP section addressing (RFC 9051 §6.4.5) and BINARY decoding (RFC 3516) over the raw octets.

``section_bytes`` returns exactly the octets of ``BODY[section]`` (partial ranges are the caller's), or
``None`` for a section the message does not have; the IMAP layer answers that with an empty string
(RFC 9051 §6.4.5 lets it, as Dovecot does). Part numbers walk the tree as RFC 9051 describes: part 1 of
a non-multipart entity is the entity itself; a number after a message/rfc822 part addresses the parts of
the encapsulated message.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass

from sealmail.mime.headers import iter_fields
from sealmail.mime.model import ParsedMessage, Part


class InvalidSection(ValueError):
    """The section text is not RFC 9051 section syntax (IMAP answers BAD)."""


class UnknownTransferEncoding(ValueError):
    """BINARY of a part whose Content-Transfer-Encoding cannot be decoded (IMAP: NO [UNKNOWN-CTE])."""

    def __init__(self, encoding: str) -> None:
        super().__init__(f"unknown Content-Transfer-Encoding {encoding!r}")
        self.encoding = encoding


@dataclass(frozen=True, slots=True)
class Section:
    """A parsed section-spec: part numbers, then one of "", HEADER, HEADER.FIELDS[.NOT], TEXT, MIME."""

    parts: tuple[int, ...] = ()
    text: str = ""
    fields: tuple[str, ...] = ()


_SECTION = re.compile(
    r"(?P<parts>[1-9][0-9]{0,8}(?:\.[1-9][0-9]{0,8})*)?"
    r"(?:(?(parts)\.)(?P<text>HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME))?"
    r"(?:\s+\((?P<fields>[^()]*)\))?",
    re.IGNORECASE,
)
_FIELD_NAME = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s"]+)')


def parse_section(spec: str) -> Section:
    """``"1.2.HEADER.FIELDS (From To)"`` → Section; raises :class:`InvalidSection`."""
    m = _SECTION.fullmatch(spec.strip())
    if m is None:
        raise InvalidSection(f"bad section {spec!r}")
    parts = tuple(int(p) for p in m["parts"].split(".")) if m["parts"] else ()
    kind = (m["text"] or "").upper()
    if kind == "MIME" and not parts:
        raise InvalidSection("MIME needs a part number")
    fields: tuple[str, ...] = ()
    if kind.startswith("HEADER.FIELDS"):
        if m["fields"] is None:
            raise InvalidSection(f"{kind} needs a field list")
        fields = tuple(
            q.replace('\\"', '"').replace("\\\\", "\\") if q else a for q, a in _FIELD_NAME.findall(m["fields"])
        )
        if not fields:
            raise InvalidSection(f"{kind} needs at least one field name")
    elif m["fields"] is not None:
        raise InvalidSection(f"{kind or 'a part'} takes no field list")
    return Section(parts, kind, fields)


def find_part(parsed: ParsedMessage, parts: tuple[int, ...]) -> Part | None:
    """The part a list of part numbers names; the root for ``()``; ``None`` when there is no such part."""
    current = parsed.root
    for i, number in enumerate(parts):
        if i > 0:
            if current.message is not None:
                current = current.message  # numbers after a message part address its message's parts
            elif not current.is_multipart:
                return None  # a leaf has no parts below it
        if current.is_multipart:
            if number > len(current.children):
                return None
            current = current.children[number - 1]
        elif number != 1:
            return None  # RFC 9051 §6.4.5: a non-multipart message has only part 1, the message itself
    return current


def numbered_parts(parsed: ParsedMessage) -> Iterator[tuple[str, Part]]:
    """Every addressable part with its IMAP part number, in message order (the numbering of find_part)."""
    yield from _message_parts(parsed.root, "")


def _message_parts(entity: Part, prefix: str) -> Iterator[tuple[str, Part]]:
    if entity.is_multipart:
        for i, child in enumerate(entity.children, 1):
            yield from _numbered(child, f"{prefix}{i}")
    else:
        yield from _numbered(entity, f"{prefix}1")


def _numbered(part: Part, number: str) -> Iterator[tuple[str, Part]]:
    yield number, part
    if part.message is not None:
        yield from _message_parts(part.message, number + ".")
    elif part.is_multipart:
        for i, child in enumerate(part.children, 1):
            yield from _numbered(child, f"{number}.{i}")


def section_bytes(raw: bytes, parsed: ParsedMessage, section: str | Section) -> bytes | None:
    """The octets of ``BODY[section]`` (RFC 9051 §6.4.5), or ``None`` when the message has no such section."""
    spec = parse_section(section) if isinstance(section, str) else section
    part = find_part(parsed, spec.parts)
    if part is None:
        return None
    if spec.text == "MIME":
        return raw[part.header_start : part.header_end]
    if not spec.text:
        return raw[part.body_start : part.body_end] if spec.parts else raw[: parsed.size]
    # HEADER / HEADER.FIELDS / TEXT apply to a message: the top level or a message/rfc822 part
    message = part.message if spec.parts else part
    if message is None:
        return None
    if spec.text.startswith("HEADER."):
        return header_fields(raw, message, spec.fields, exclude=spec.text == "HEADER.FIELDS.NOT")
    start, end = (
        (message.body_start, message.body_end) if spec.text == "TEXT" else (message.header_start, message.header_end)
    )
    return raw[start:end]


def header_fields(raw: bytes, part: Part, names: tuple[str, ...], *, exclude: bool) -> bytes:
    """HEADER.FIELDS[.NOT]: the matching fields as written, in message order, then the blank line.

    RFC 9051 §6.4.5: "the blank line is included in all header fetches, except in the case of a message
    which has no body and no blank line" (then the fields are returned exactly as written).
    """
    wanted = {n.lower().encode("utf-8", "surrogateescape") for n in names}
    header = raw[part.header_start : part.header_end]
    blank = _blank_line(header)
    out: list[bytes] = []
    for f in iter_fields(raw, part.header_start, part.header_end):
        if (f.name.lower() in wanted) != exclude and (f.name or not exclude):
            out.append(raw[f.start : f.end])
    if blank:
        out.append(blank)
    return b"".join(out)


def _blank_line(header: bytes) -> bytes:
    """The blank line that ends a header block, or b"" when it has none."""
    if header.endswith(b"\r\n") and (len(header) == 2 or header[-3:-2] == b"\n"):
        return b"\r\n"
    if header.endswith(b"\n") and (len(header) == 1 or header[-2:-1] == b"\n"):
        return b"\n"
    return b""


# --- BINARY (RFC 3516, RFC 9051 §6.4.5) -------------------------------------------------------------

_IDENTITY = {"", "7bit", "8bit", "binary"}
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_DELETE = bytes(c for c in range(256) if c not in _B64_ALPHABET and c != ord("="))


def binary_bytes(raw: bytes, parsed: ParsedMessage, parts: str | tuple[int, ...]) -> bytes | None:
    """``BINARY[parts]``: the part's content with its transfer encoding undone; ``None`` if no such part.

    ``parts`` is ``""``/``()`` (the whole message, as stored) or part numbers (``"1.2"``). Multipart and
    message parts are returned as stored: RFC 2045 §6.4 forbids encoding them. Raises
    :class:`UnknownTransferEncoding` for an encoding other than 7bit/8bit/binary/base64/quoted-printable.
    """
    numbers = _part_numbers(parts)
    if not numbers:
        return raw[: parsed.size]
    part = find_part(parsed, numbers)
    if part is None:
        return None
    body = raw[part.body_start : part.body_end]
    if part.is_multipart:
        return body
    return decode_transfer(body, part.encoding)


def binary_size(raw: bytes, parsed: ParsedMessage, parts: str | tuple[int, ...]) -> int | None:
    """``BINARY.SIZE[parts]``: the length of :func:`binary_bytes`."""
    data = binary_bytes(raw, parsed, parts)
    return None if data is None else len(data)


def _part_numbers(parts: str | tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(parts, tuple):
        return parts
    spec = parse_section(parts)
    if spec.text:
        raise InvalidSection("BINARY takes part numbers only")
    return spec.parts


def decode_transfer(body: bytes, encoding: str | None) -> bytes:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6); tolerant of damaged base64 and quoted-printable."""
    enc = (encoding or "").lower()
    if enc in _IDENTITY:
        return body
    if enc == "base64":
        return decode_base64(body)
    if enc == "quoted-printable":
        return decode_quoted_printable(body)
    raise UnknownTransferEncoding(encoding or "")


def decode_base64(data: bytes) -> bytes:
    """RFC 2045 §6.8: characters outside the alphabet are ignored; decoding stops at padding."""
    clean = data.translate(None, _B64_DELETE)
    pad = clean.find(b"=")
    if pad >= 0:
        clean = clean[:pad]
    extra = len(clean) % 4
    if extra == 1:  # a lone sextet carries no octet
        clean = clean[:-1]
    elif extra:
        clean += b"=" * (4 - extra)
    return binascii.a2b_base64(clean)


def decode_quoted_printable(data: bytes) -> bytes:
    """RFC 2045 §6.7: trailing whitespace on a line is transport padding and is removed before decoding."""
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        cr = line.endswith(b"\r")
        stripped = (line[:-1] if cr else line).rstrip(b" \t")
        if cr:
            stripped += b"\r"
        lines[i] = stripped
    return binascii.a2b_qp(b"\n".join(lines))
