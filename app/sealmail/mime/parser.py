"""The MIME structure parser: one linear pass over the raw octets with a stack of boundaries.

Line ends may be CRLF or bare LF. Delimiter lines (RFC 2046 §5.1.1) are found with ``bytes.find`` for
``\\n--`` and matched against every boundary on the stack, so an outer boundary also ends inner parts
whose own close delimiter is missing. Where RFC 2046 leaves recovery open this follows Dovecot:

* a line is a delimiter when it *starts* with ``--boundary`` (trailing garbage is transport padding);
  when several boundaries match, the longest wins, then the innermost;
* the line end before a delimiter belongs to the delimiter; the line end of a delimiter line belongs
  to that line, so an empty epilogue before an outer delimiter leaves nothing to trim;
* a header ends at a blank line, at a delimiter line or at the end; lines without a colon are fields;
* a multipart without a usable boundary, or without any delimiter, has no children.

Limits (depth, parts, header size) degrade to opaque ``application/octet-stream`` parts; see ``limits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sealmail.mime.addrlist import parse_address_list
from sealmail.mime.headers import (
    RawField,
    field_value,
    iter_fields,
    merge_rfc2231,
    parse_content_type,
    parse_disposition,
    parse_language,
    parse_token,
    text,
)
from sealmail.mime.model import Address, Envelope, HeaderField, ParsedMessage, Part

MAX_DEPTH = 64  # nesting of multipart and message parts below the top-level entity
MAX_PARTS = 10_000  # entities in one message
MAX_HEADER_BYTES = 256 * 1024  # of one header block are read for fields; the block itself may be longer
MAX_BOUNDARY = 200  # RFC 2046 §5.1.1 allows 70; longer ones are refused rather than matched

_CONTENT_FIELDS = {
    b"content-type",
    b"content-transfer-encoding",
    b"content-id",
    b"content-description",
    b"content-md5",
    b"content-disposition",
    b"content-language",
    b"content-location",
}
_ENVELOPE_FIELDS = {
    b"date",
    b"subject",
    b"from",
    b"sender",
    b"reply-to",
    b"to",
    b"cc",
    b"bcc",
    b"in-reply-to",
    b"message-id",
}
_MESSAGE_SUBTYPES = {"rfc822", "global"}  # RFC 2046 §5.2.1, RFC 6532 §3.7


@dataclass(slots=True)
class _Stop:
    """A delimiter line found while scanning: where it starts, whose boundary, open or close."""

    line: int
    level: int  # index into the boundary stack
    close: bool


class _Parser:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.n = len(raw)
        self.count = 0
        self.limits: set[str] = set()

    # --- delimiter lines ----------------------------------------------------------------------------

    def _match(self, line: int, stack: list[bytes], prefixes: frozenset[bytes], shortest: int) -> _Stop | None:
        """Is the line at ``line`` (which starts with ``--``) a delimiter of a boundary on ``stack``?"""
        raw = self.raw
        if raw[line + 2 : line + 2 + shortest] not in prefixes:
            return None
        best = -1
        for level in range(len(stack) - 1, -1, -1):
            b = stack[level]
            if (best < 0 or len(b) > len(stack[best])) and raw.startswith(b, line + 2):
                best = level
        if best < 0:
            return None
        after = line + 2 + len(stack[best])
        return _Stop(line, best, raw.startswith(b"--", after))

    def _find(self, pos: int, stack: list[bytes]) -> _Stop | None:
        """The first delimiter line at or after ``pos`` (a line start), or ``None`` at the end."""
        if not stack:
            return None
        raw = self.raw
        shortest = min(len(b) for b in stack)
        prefixes = frozenset(b[:shortest] for b in stack)
        if raw.startswith(b"--", pos):
            stop = self._match(pos, stack, prefixes, shortest)
            if stop is not None:
                return stop
        while True:
            nl = raw.find(b"\n--", pos)
            if nl < 0:
                return None
            stop = self._match(nl + 1, stack, prefixes, shortest)
            if stop is not None:
                return stop
            pos = nl + 1

    def _line_after(self, line: int) -> int:
        nl = self.raw.find(b"\n", line)
        return self.n if nl < 0 else nl + 1

    def _end_before(self, stop: _Stop | None, floor: int) -> int:
        """Where content ends before the delimiter ``stop``: before the line end preceding it (RFC 2046
        §5.1.1), but not before ``floor``, the end of the previous delimiter line, whose line end is its own."""
        if stop is None:
            return self.n
        end = stop.line
        if end > floor and self.raw[end - 1] == 0x0A:
            end -= 1
            if end > floor and self.raw[end - 1] == 0x0D:
                end -= 1
        return max(end, floor)

    # --- entities -------------------------------------------------------------------------------------

    def entity(
        self, start: int, stack: list[bytes], depth: int, default_type: tuple[str, str]
    ) -> tuple[Part, _Stop | None, int, list[RawField]]:
        """Parse the entity at ``start``; return it, the delimiter that ended it, its end, and its fields."""
        self.count += 1
        header_end, stop = self._header_end(start, stack)
        field_limit = min(header_end, start + MAX_HEADER_BYTES)
        if field_limit < header_end:
            self.limits.add("header")
        fields = list(iter_fields(self.raw, start, field_limit))
        info = self._content_fields(fields, default_type)
        if stop is not None:  # the header ran into a delimiter: no body (RFC 2046 §5.1.1 CRLF rule)
            end = self._end_before(stop, start)
            body = end
            extra: dict[str, Any] = {}
            if info["type"] == "message" and info["subtype"] in _MESSAGE_SUBTYPES:
                extra = {"message": Part(end, end, end, end, lines=0), "envelope": Envelope()}
        else:
            body = header_end
            kind, sub = info["type"], info["subtype"]
            composite = kind == "multipart" or (kind == "message" and sub in _MESSAGE_SUBTYPES)
            if composite and (depth >= MAX_DEPTH or self.count >= MAX_PARTS):
                self.limits.add("depth" if depth >= MAX_DEPTH else "parts")
                info.update(type="application", subtype="octet-stream", opaque=True)
                composite = False
            extra = {}
            if composite and kind == "multipart":
                boundary = self._boundary(info.get("params", ()))
                extra["children"], stop, end = self._multipart(start, body, boundary, stack, depth, sub == "digest")
            elif composite:
                inner, stop, end, inner_fields = self.entity(body, stack, depth + 1, ("text", "plain"))
                extra["message"] = inner
                extra["envelope"] = envelope_from_fields(self.raw, inner_fields)
            else:
                stop = self._find(body, stack)
                end = self._end_before(stop, start)
            # The line end before a delimiter is the delimiter's even when it is the header's blank line.
            body = min(body, end)
        if info["type"] == "text" or "message" in extra:
            # RFC 9051 body-fld-lines: counted as LFs, as Dovecot does (a last line without one is not counted)
            extra["lines"] = self.raw.count(b"\n", body, end)
        part = Part(header_start=start, header_end=body, body_start=body, body_end=end, **info, **extra)
        return part, stop, end, fields

    def _header_end(self, start: int, stack: list[bytes]) -> tuple[int, _Stop | None]:
        """End of the header block (after its blank line), or the delimiter line that cuts it short."""
        raw, n, pos = self.raw, self.n, start
        prefixes: frozenset[bytes] = frozenset()
        shortest = 0
        if stack:
            shortest = min(len(b) for b in stack)
            prefixes = frozenset(b[:shortest] for b in stack)
        while pos < n:
            c = raw[pos]
            if c == 0x0A:
                return pos + 1, None
            if c == 0x0D and raw.startswith(b"\r\n", pos):
                return pos + 2, None
            if stack and c == 0x2D and raw.startswith(b"--", pos):
                stop = self._match(pos, stack, prefixes, shortest)
                if stop is not None:
                    return pos, stop
            nl = raw.find(b"\n", pos)
            if nl < 0:
                return n, None
            pos = nl + 1
        return n, None

    def _multipart(
        self, start: int, body: int, boundary: bytes | None, stack: list[bytes], depth: int, digest: bool
    ) -> tuple[tuple[Part, ...], _Stop | None, int]:
        """Body parts between delimiters of ``boundary`` (RFC 2046 §5.1.1); preamble and epilogue skipped."""
        if boundary is None:
            stop = self._find(body, stack)
            return (), stop, self._end_before(stop, start)
        inner = [*stack, boundary]
        own = len(stack)
        stop = self._find(body, inner)
        end = self._end_before(stop, start)
        children: list[Part] = []
        default = ("message", "rfc822") if digest else ("text", "plain")  # RFC 2046 §5.1.5
        while stop is not None and stop.level == own and not stop.close:
            child_start = self._line_after(stop.line)
            if self.count >= MAX_PARTS:
                self.limits.add("parts")
                child, stop, end = self._opaque_rest(child_start, inner, own)
            else:
                child, stop, end, _ = self.entity(child_start, inner, depth + 1, default)
            children.append(child)
        if stop is not None and stop.level == own:  # close delimiter: the epilogue follows
            epilogue = self._line_after(stop.line)
            stop = self._find(epilogue, stack)
            end = self._end_before(stop, epilogue)
        return tuple(children), stop, end

    def _opaque_rest(self, start: int, inner: list[bytes], own: int) -> tuple[Part, _Stop | None, int]:
        """Past the parts limit: the rest of this multipart becomes one opaque part, scanned but not split."""
        self.count += 1
        stop = self._find(start, inner)
        segment = start
        while stop is not None and stop.level == own and not stop.close:
            segment = self._line_after(stop.line)
            stop = self._find(segment, inner)
        end = self._end_before(stop, segment)
        part = Part(start, start, start, end, type="application", subtype="octet-stream", opaque=True)
        return part, stop, end

    @staticmethod
    def _boundary(params: tuple[tuple[str, str], ...]) -> bytes | None:
        for name, value in params:
            if name.lower() == "boundary":
                b = value.encode("utf-8", "surrogateescape")
                return b if 0 < len(b) <= MAX_BOUNDARY else None
        return None

    def _content_fields(self, fields: list[RawField], default_type: tuple[str, str]) -> dict[str, Any]:
        """The Content-* fields of an entity (first occurrence of each wins)."""
        values: dict[bytes, str] = {}
        for f in fields:
            name = f.name.lower()
            if name in _CONTENT_FIELDS and name not in values:
                values[name] = field_value(self.raw, f)
        info: dict[str, Any] = {"type": default_type[0], "subtype": default_type[1]}
        ctype = values.get(b"content-type")
        if ctype is not None:
            parsed = parse_content_type(ctype)
            # RFC 2045 §5.2: an invalid Content-Type means text/plain; charset=us-ascii
            info["type"], info["subtype"], params = parsed if parsed else ("text", "plain", [])
            info["params"] = merge_rfc2231(params)
        disposition = values.get(b"content-disposition")
        if disposition is not None and (parsed_disp := parse_disposition(disposition)) is not None:
            info["disposition"] = parsed_disp[0]
            info["disposition_params"] = merge_rfc2231(parsed_disp[1])
        if (enc := values.get(b"content-transfer-encoding")) is not None:
            info["encoding"] = parse_token(enc)
        if (lang := values.get(b"content-language")) is not None:
            info["language"] = parse_language(lang)
        for field_name, key in (
            (b"content-id", "id"),
            (b"content-description", "description"),
            (b"content-md5", "md5"),
            (b"content-location", "location"),
        ):
            if (value := values.get(field_name)) is not None:
                info[key] = value.strip(" \t")
        return info


def envelope_from_fields(raw: bytes, fields: list[RawField]) -> Envelope:
    """RFC 9051 §7.5.2 ENVELOPE from a header's fields: the first occurrence of each, values raw."""
    values: dict[bytes, str] = {}
    for f in fields:
        name = f.name.lower()
        if name in _ENVELOPE_FIELDS and name not in values:
            values[name] = field_value(raw, f)

    def addresses(name: bytes) -> tuple[Address, ...] | None:
        value = values.get(name)
        return None if value is None else parse_address_list(value)

    return Envelope(
        date=values.get(b"date"),
        subject=values.get(b"subject"),
        from_=addresses(b"from"),
        sender=addresses(b"sender"),
        reply_to=addresses(b"reply-to"),
        to=addresses(b"to"),
        cc=addresses(b"cc"),
        bcc=addresses(b"bcc"),
        in_reply_to=values.get(b"in-reply-to"),
        message_id=values.get(b"message-id"),
    )


def parse(raw: bytes) -> ParsedMessage:
    """Parse a message as received. Never raises: hostile input still gets a (best-effort) structure."""
    try:
        return _parse(raw)
    except Exception:  # a parser bug must not stop delivery: the message stays one opaque part
        n = len(raw)
        root = Part(0, 0, 0, n, type="application", subtype="octet-stream", opaque=True)
        return ParsedMessage(size=n, root=root, envelope=Envelope(), limits=("error",))


def _parse(raw: bytes) -> ParsedMessage:
    parser = _Parser(raw)
    root, _stop, _end, fields = parser.entity(0, [], 0, ("text", "plain"))
    headers = tuple(HeaderField(text(f.name), text(raw[f.value_start : f.end].rstrip(b"\r\n"))) for f in fields)
    return ParsedMessage(
        size=len(raw),
        root=root,
        envelope=envelope_from_fields(raw, fields),
        headers=headers,
        limits=tuple(sorted(parser.limits)),
    )
