"""What SEARCH and the full-text index need: decoded header values, the sent date, the decoded text.

Decoding uses the stdlib where it is right (``email.header`` for RFC 2047, ``email.utils`` for dates,
``html.unescape`` for entities, codecs for charsets). HTML tags are stripped by a small linear scanner:
``html.parser.HTMLParser`` is quadratic on unclosed tags and raises on some marked sections, and a
hostile message must not stall delivery.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import html
import re
from dataclasses import dataclass

from sealmail.mime.headers import clean, decode_charset, decode_words
from sealmail.mime.model import AddressList, HeaderValue, ParsedMessage, Part
from sealmail.mime.sections import UnknownTransferEncoding, decode_transfer, numbered_parts

MAX_SEARCH_TEXT = 2 * 1024 * 1024  # characters of body text handed to the index
ATTACHMENT_MIN_SIZE = 4096  # octets: smaller bodies are not worth deduplicating
SEARCH_HEADERS = ("subject", "from", "to", "cc", "bcc")
_MAX_DATE = 256


def header_field(parsed: ParsedMessage, name: str) -> list[HeaderValue]:
    """Every occurrence of a top-level header field, in message order (name case-insensitive)."""
    return parsed.header_field(name)


def decoded_header(parsed: ParsedMessage, name: str) -> str | None:
    """All occurrences of a field, decoded and joined with ``", "``; ``None`` when absent."""
    values = header_field(parsed, name)
    return ", ".join(v.decoded for v in values) if values else None


def search_headers(parsed: ParsedMessage) -> dict[str, str]:
    """Decoded Subject, From, To, Cc, Bcc for the index (absent ones omitted).

    An address field is indexed as written (display names, comments, group names) and, on the lines
    after it, as the addresses it denotes where the text does not show them already ("Name
    <mailbox@host>"): RFC 9051 §6.4.4 FROM "user@host" must find ``<user (comment)@ (comment) host>``.
    """
    out: dict[str, str] = {}
    envelope = parsed.envelope
    addresses = {"from": envelope.from_, "to": envelope.to, "cc": envelope.cc, "bcc": envelope.bcc}
    for name in SEARCH_HEADERS:
        value = decoded_header(parsed, name)
        if value is not None:
            denoted = [line for line in _address_lines(addresses.get(name)) if line not in value]
            out[name] = "\n".join([value, *denoted])
    return out


def _address_lines(addresses: AddressList | None) -> list[str]:
    """One line per address, ``Name <mailbox@host>`` (names RFC 2047 decoded), and group names alone."""
    lines: list[str] = []
    for address in addresses or ():
        if address.is_group_end:
            continue
        name = decode_words(address.name) if address.name else ""
        if address.is_group_start:
            lines.append(str(address.mailbox))
            continue
        spec = f"{address.mailbox or ''}@{address.host}" if address.mailbox else str(address.host or "")
        lines.append(f"{name} <{spec}>" if name else spec)
    return lines


_COMMENT = re.compile(r"\([^()]*\)")
_WEEKDAY = re.compile(r"^\s*[A-Za-z]+,?\s+(?=\d)")


def parse_date(value: str | None) -> dt.datetime | None:
    """An RFC 5322 date (obsolete forms too) as an aware UTC datetime; ``None`` if it cannot be read.

    Tolerates comments, a missing or misspelt weekday, two-digit years and ISO 8601 dates; a date
    without a usable zone (``-0000``, RFC 5322 §3.3) is taken as UTC.
    """
    written = _written_date(value)
    return None if written is None else _utc(written)


def _written_date(value: str | None) -> dt.datetime | None:
    """The date-time as written, in its own zone (naive when the zone is unknown)."""
    if not value:
        return None
    text = clean(value)[:_MAX_DATE].strip()
    candidates = [text, _COMMENT.sub(" ", text).strip()]
    candidates.append(_WEEKDAY.sub("", candidates[-1]))
    for candidate in candidates:
        parsed = _rfc5322_date(candidate)
        if parsed is not None and _utc(parsed) is not None:
            return parsed
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if _utc(parsed) is not None else None


def _rfc5322_date(text: str) -> dt.datetime | None:
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _utc(value: dt.datetime) -> dt.datetime | None:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None


def sent_date(parsed: ParsedMessage) -> dt.datetime | None:
    """The Date header as an instant (UTC), or ``None``."""
    return parse_date(parsed.envelope.date)


def sent_day(parsed: ParsedMessage) -> dt.date | None:
    """SEARCH SENTBEFORE/SENTON/SENTSINCE: the Date header's calendar date "disregarding time and timezone"
    (RFC 9051 §6.4.4), i.e. the date the sender wrote, not that instant's date in UTC; ``None`` if absent."""
    written = _written_date(parsed.envelope.date)
    return None if written is None else written.date()


# --- body text ------------------------------------------------------------------------------------------

_TEXT_SUBTYPES = {"plain", "html"}
_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9:-]*)|<[!?]")
_RAW_TEXT = {"script": re.compile(r"</script\s*>", re.I), "style": re.compile(r"</style\s*>", re.I)}
_BLOCK = {"p", "br", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "hr"}
_SPACES = re.compile(r"[ \t\f\v\r\xa0]+")
_NEWLINES = re.compile(r"\n\s*\n+")


def html_to_text(markup: str) -> str:
    """Visible text of HTML: tags, comments, scripts and styles removed, entities decoded. Linear time."""
    out: list[str] = []
    i, n = 0, len(markup)
    while i < n:
        lt = markup.find("<", i)
        if lt < 0:
            out.append(markup[i:])
            break
        out.append(markup[i:lt])
        if markup.startswith("<!--", lt):
            end = markup.find("-->", lt + 4)
            i = n if end < 0 else end + 3
            continue
        m = _TAG.match(markup, lt)
        if m is None:  # a '<' that starts no tag is text
            out.append("<")
            i = lt + 1
            continue
        gt = markup.find(">", m.end())
        if gt < 0:  # unterminated tag: the rest is markup
            break
        name = (m.group(1) or "").lower()
        i = gt + 1
        if name in _RAW_TEXT and not markup.startswith("</", lt):
            close = _RAW_TEXT[name].search(markup, i)
            i = n if close is None else close.end()
        out.append("\n" if name in _BLOCK else " ")
    return html.unescape("".join(out))


def _normalise(text: str) -> str:
    text = _SPACES.sub(" ", text)
    return _NEWLINES.sub("\n\n", text).strip()


def part_text(raw: bytes, part: Part, budget: int = MAX_SEARCH_TEXT) -> str:
    """Decoded text of one text/plain or text/html part (transfer encoding, charset, HTML), capped."""
    # Read only what can fill the budget: UTF-8 is up to 4 octets a character, base64 adds a third,
    # and HTML markup is several times its text.
    factor = 8 if part.subtype == "html" else 6
    limit = min(part.body_end, part.body_start + budget * factor + 1024)
    try:
        data = decode_transfer(raw[part.body_start : limit], part.encoding)
    except UnknownTransferEncoding:
        data = raw[part.body_start : limit]
    text = decode_charset(data, part.param("charset"))
    if part.subtype == "html":
        text = html_to_text(text)
    return _normalise(text)[:budget]


def search_text(raw: bytes, parsed: ParsedMessage, limit: int = MAX_SEARCH_TEXT) -> str:
    """The decoded text of every text/plain and text/html part, then attachment file names; ≤ ``limit`` chars."""
    pieces: list[str] = []
    budget = limit
    names: list[str] = []
    for part in parsed.root.walk():
        if part.children or part.message is not None or part.opaque:
            continue
        name = part.filename
        if name:
            names.append(name)
        if budget > 0 and part.type == "text" and part.subtype in _TEXT_SUBTYPES:
            try:
                text = part_text(raw, part, budget)
            except Exception:  # never let one damaged part stop indexing of the others
                text = ""
            if text:
                pieces.append(text)
                budget -= len(text) + 1
    pieces.extend(names)
    return "\n".join(pieces)[:limit]


# --- attachments for the store's deduplication ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttachmentRange:
    """A leaf body the store may cut out, deduplicate by SHA-256 and splice back: ``raw[start:end]``."""

    section: str  # IMAP part number, e.g. "2" or "1.3"
    start: int
    end: int
    media_type: str
    encoding: str | None
    filename: str | None


def attachments(parsed: ParsedMessage, min_size: int = ATTACHMENT_MIN_SIZE) -> list[AttachmentRange]:
    """Attachment-like leaves, in message order, non-overlapping: not text, or disposition attachment, and
    at least ``min_size`` octets."""
    out: list[AttachmentRange] = []
    for number, part in numbered_parts(parsed):
        if part.children or part.message is not None:
            continue
        attachment = part.type != "text" or (part.disposition or "").lower() == "attachment"
        if attachment and part.size >= min_size:
            out.append(
                AttachmentRange(
                    section=number,
                    start=part.body_start,
                    end=part.body_end,
                    media_type=part.media_type,
                    encoding=part.encoding,
                    filename=part.filename,
                )
            )
    return out
