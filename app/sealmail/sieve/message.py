"""What a script can read of a message: header values, addresses, body text, dates.

Parsed once per delivery with the stdlib ``email`` package's ``compat32`` policy, which accepts any
octets; every accessor below turns a broken part or field into "no value" instead of an exception,
so a malformed message is filtered like any other and never bounced by its script.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.policy
import email.utils
import html.parser
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import cached_property

from sealmail.mime.addrlist import MISSING_DOMAIN, MISSING_MAILBOX, parse_address_list
from sealmail.mime.headers import clean, decode_charset, decode_words

# RFC 5228 §5.1: the address test reads header fields that hold addresses; at least these.
ADDRESS_FIELDS = frozenset(
    (
        "from",
        "to",
        "cc",
        "bcc",
        "sender",
        "reply-to",
        "resent-from",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "resent-sender",
        "resent-reply-to",
        "return-path",
        "delivered-to",
        "errors-to",
        "disposition-notification-to",
        "mail-followup-to",
        "mail-reply-to",
        "x-original-to",
        "envelope-to",
    )
)
MAX_BODY_TEXT = 1 << 20  # characters a body test reads per transform: bounded work on a huge message
MAX_PARTS = 500
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


class Message:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.size = len(raw)
        # The header alone for header tests; the whole structure only if a body test asks (below).
        header = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        fields: dict[str, list[str]] = {}
        for name, value in header.raw_items():
            fields.setdefault(name.strip().lower(), []).append(_FOLD.sub("", str(value)))
        self._fields = fields
        self._decoded: dict[str, list[str]] = {}
        self._addresses: dict[str, list[tuple[str, str] | None]] = {}  # a script tests From many times

    @cached_property
    def _parsed(self) -> email.message.Message:
        try:
            return email.message_from_bytes(self.raw, policy=email.policy.compat32)
        except Exception:  # e.g. RecursionError on thousands of nested message/rfc822: one opaque part
            return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(self.raw)

    def raw_values(self, name: str) -> list[str]:
        """A field's values, unfolded and undecoded (addresses are parsed from these)."""
        return self._fields.get(name.lower(), [])

    def field_names(self) -> list[str]:
        return list(self._fields)

    def values(self, name: str) -> list[str]:
        """RFC 5228 §2.7.4 (via §5.7): unfolded, RFC 2047 words decoded, outer whitespace trimmed."""
        key = name.lower()
        if key not in self._decoded:
            self._decoded[key] = [decode_words(v).strip() for v in self.raw_values(key)]
        return self._decoded[key]

    def addresses(self, name: str) -> list[tuple[str, str] | None]:
        """Each address of a field as (local part, domain); ``None`` for one that does not parse."""
        key = name.lower()
        if key not in ADDRESS_FIELDS:
            return []
        found = self._addresses.get(key)
        if found is None:
            found = self._addresses[key] = self._parse_addresses(key)
        return found

    def _parse_addresses(self, name: str) -> list[tuple[str, str] | None]:
        out: list[tuple[str, str] | None] = []
        for value in self.raw_values(name):
            for address in parse_address_list(clean(value)) or ():
                if address.host is None:  # group start or end: the group's name is no address
                    continue
                local, domain = address.mailbox or "", address.host
                broken = local in ("", MISSING_MAILBOX) or domain in ("", MISSING_DOMAIN)
                out.append(None if broken else (local, domain))
        return out

    # -- body (RFC 5173) ----------------------------------------------------------------------

    @cached_property
    def raw_body(self) -> str:
        """RFC 5173 §5.1 ``:raw``: the octets after the header, undecoded."""
        end = _HEADER_END.search(self.raw)
        body = self.raw[end.end() :] if end else b""
        return body[:MAX_BODY_TEXT].decode("utf-8", "replace")

    def content(self, types: tuple[str, ...]) -> list[str]:
        """RFC 5173 §5.2 ``:content``: the decoded parts whose type is listed ("" lists them all);
        for a listed multipart, its prologue and epilogue."""
        wanted = [t.lower() for t in types]
        out: list[str] = []
        budget = MAX_BODY_TEXT
        for part in self._parts():
            ctype = part.get_content_type().lower()
            if not any(_type_matches(ctype, t) for t in wanted):
                continue
            leaf = not part.is_multipart()
            texts = [_decoded(part)] if leaf else [str(part.preamble or ""), str(part.epilogue or "")]
            for text in texts:
                out.append(text[:budget])
                budget -= len(out[-1])
            if budget <= 0:
                break
        return out

    @cached_property
    def text(self) -> list[str]:
        """RFC 5173 §5.3 ``:text``: the text parts, HTML reduced to its text."""
        out: list[str] = []
        budget = MAX_BODY_TEXT
        for part in self._parts():
            if part.is_multipart() or part.get_content_maintype().lower() != "text":
                continue
            text = _decoded(part)
            if part.get_content_subtype().lower() == "html":
                text = _html_text(text)
            out.append(text[:budget])
            budget -= len(out[-1])
            if budget <= 0:
                break
        return out

    def _parts(self) -> list[email.message.Message]:
        try:
            return list(self._parsed.walk())[:MAX_PARTS]
        except Exception:  # a structure the parser could not follow: the top part only
            return [self._parsed]

    # -- dates (RFC 5260) ---------------------------------------------------------------------

    def dates(self, name: str) -> list[datetime | None]:
        """Each value of a field as a date with its own zone; ``None`` for one that does not parse."""
        out: list[datetime | None] = []
        received = name.lower() == "received"
        for value in self.values(name):
            # RFC 5260 §4.1: in a Received field the date follows the last ";"
            out.append(parse_date(value.rpartition(";")[2] if received else value))
        return out


def parse_date(value: str) -> datetime | None:
    parsed = email.utils.parsedate_tz(value.strip())
    if parsed is None:
        return None
    offset = parsed[9] if parsed[9] is not None else 0
    try:
        zone = timezone(timedelta(seconds=offset)) if offset else UTC
        return datetime(*parsed[:6], tzinfo=zone)
    except (ValueError, OverflowError):
        return None


def _type_matches(ctype: str, wanted: str) -> bool:
    if not wanted:
        return True
    if "/" in wanted:
        return ctype == wanted
    return ctype.split("/", 1)[0] == wanted


def _decoded(part: email.message.Message) -> str:
    """A leaf part with its transfer encoding undone, in its charset; empty when it cannot be read."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return ""
    payload = payload[: MAX_BODY_TEXT * 4]
    charset = part.get_content_charset() if part.get_content_maintype() == "text" else "utf-8"
    return decode_charset(payload, charset)


class _TextOfHtml(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def _html_text(markup: str) -> str:
    reader = _TextOfHtml()
    try:
        reader.feed(markup)
        reader.close()
    except Exception:
        return markup
    return " ".join(" ".join(reader.chunks).split())
