"""What the store computes once per message at append time, from the MIME parser's result.

Kept separate from the parser so the store depends on a small surface: the raw header block,
the structure (stored as JSON for FETCH), the sent date, decoded text for the search index, and
the byte ranges of large attachment bodies to deduplicate.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_INDEXED_TEXT = 2 * 1024 * 1024
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


@dataclass(slots=True)
class Indexed:
    header: bytes
    structure: str
    sent_date: datetime | None
    envelope: str = "null"
    subject: str = ""
    from_: str = ""
    to: str = ""
    cc: str = ""
    bcc: str = ""
    headers: str = ""
    body: str = ""
    attachments: list[tuple[int, int]] = field(default_factory=list)


def split_header(raw: bytes) -> bytes:
    """The header block including the blank line that ends it (the whole message when there is none)."""
    match = _BLANK_LINE.search(raw)
    return raw[: match.end()] if match else raw


def index_message(raw: bytes) -> Indexed:
    """Never raises: a malformed message is stored byte for byte with whatever could be read from it."""
    header = split_header(raw)
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:  # the stdlib parser is tolerant; this guards the "never raises" promise
        return Indexed(header=header, structure="{}", sent_date=None)
    found = Indexed(header=header, structure="{}", sent_date=_sent_date(msg.get("Date")))
    for attr, name in (("subject", "Subject"), ("from_", "From"), ("to", "To"), ("cc", "Cc"), ("bcc", "Bcc")):
        setattr(found, attr, _header_text(msg, name))
    found.headers = "\n".join(f"{k}: {_safe_str(v)}" for k, v in _safe_items(msg))
    found.body = _body_text(msg)[:MAX_INDEXED_TEXT]
    return found


def _safe_items(msg: email.message.Message) -> list[tuple[str, object]]:
    try:
        return list(msg.items())
    except Exception:
        return []


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return ""


def _header_text(msg: email.message.Message, name: str) -> str:
    try:
        values = msg.get_all(name) or []
        return "\n".join(str(v) for v in values)
    except Exception:
        return ""


def _sent_date(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _body_text(msg: email.message.Message) -> str:
    parts: list[str] = []
    try:
        for part in msg.walk():
            if part.is_multipart() or part.get_content_maintype() != "text":
                continue
            try:
                content = part.get_content()
            except Exception:
                payload = part.get_payload(decode=True) or b""
                content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
            if part.get_content_subtype() == "html":
                content = re.sub(r"<[^>]*>", " ", content)
            parts.append(content)
    except Exception:  # a part that cannot be walked: index what was read so far
        return "\n".join(parts)
    return "\n".join(parts)
