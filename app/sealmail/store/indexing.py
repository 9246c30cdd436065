"""What the store computes once per message at append time, from the MIME parser's result.

The raw header block (FETCH of headers without reparsing), the parsed structure (JSON, for
BODY[section] and BINARY), the ENVELOPE and BODYSTRUCTURE values ready for the wire, the sent date
(as an instant and as the date written), the SORT and THREAD keys, the decoded text for SEARCH
(unless left to ``store.textindex``, which extracts it after the append), and
the byte ranges of large attachment bodies to deduplicate.
Never raises: the parser gives every message, however malformed, a best-effort structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sealmail import mime
from sealmail.store import imapvalue
from sealmail.store.sortkeys import SortKeys, sort_keys


@dataclass(frozen=True, slots=True)
class SearchText:
    """The decoded text SEARCH matches, one value per column of the FTS5 table ``body_text``."""

    subject: str = ""
    from_: str = ""
    to: str = ""
    cc: str = ""
    bcc: str = ""
    headers: str = ""
    body: str = ""

    def columns(self) -> tuple[str, str, str, str, str, str, str]:
        return (self.subject, self.from_, self.to, self.cc, self.bcc, self.headers, self.body)


@dataclass(slots=True)
class Indexed:
    header: bytes
    structure: str
    sent_date: datetime | None
    sent_day: date | None = None  # the Date header's date as written (SENTON...)
    envelope: str = "null"
    bodystructure: str = "null"
    text: SearchText | None = None  # None: left for store.textindex to extract later
    attachments: list[tuple[int, int]] = field(default_factory=list)
    sortkeys: SortKeys | None = None


_INDEXED_APART = {"subject", "from", "to", "cc", "bcc"}


def index_message(raw: bytes, *, text: bool = True) -> Indexed:
    """What FETCH, SORT and THREAD read, and the search text unless ``text`` is false."""
    parsed = mime.parse(raw)
    return Indexed(
        header=raw[parsed.root.header_start : parsed.root.header_end],
        structure=parsed.to_json(),
        sent_date=mime.sent_date(parsed),
        sent_day=mime.sent_day(parsed),
        envelope=imapvalue.dumps(mime.envelope_value(parsed)),
        bodystructure=imapvalue.dumps(mime.bodystructure(parsed)),
        text=search_text(raw, parsed) if text else None,
        attachments=[(a.start, a.end) for a in mime.attachments(parsed)],
        sortkeys=sort_keys(parsed),
    )


def search_text(raw: bytes, parsed: mime.ParsedMessage | None = None) -> SearchText:
    parsed = parsed or mime.parse(raw)
    searchable = mime.search_headers(parsed)
    # Every other field, decoded, for SEARCH TEXT (which covers the whole header, RFC 9051 §6.4.4).
    others = {f.name.lower() for f in parsed.headers} - _INDEXED_APART
    other = [f"{name}: {value.decoded}" for name in sorted(others) for value in mime.header_field(parsed, name)]
    return SearchText(
        subject=_text(searchable.get("subject", "")),
        from_=_text(searchable.get("from", "")),
        to=_text(searchable.get("to", "")),
        cc=_text(searchable.get("cc", "")),
        bcc=_text(searchable.get("bcc", "")),
        headers=_text("\n".join(other)),
        body=_text(mime.search_text(raw, parsed)),
    )


def _text(value: str) -> str:
    """Index text as valid UTF-8: octets that were not UTF-8 (kept as surrogates by the parser) become U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def sent_day_of_header(header: bytes | None) -> str | None:
    """SQL function for the migration that added ``bodies.sent_day``: that date from a stored header block."""
    if not header:
        return None
    day = mime.sent_day(mime.parse(bytes(header)))
    return day.isoformat() if day else None
