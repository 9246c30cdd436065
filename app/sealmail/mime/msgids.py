"""Message IDs in Message-ID, In-Reply-To and References (RFC 5322 §3.6.4), as THREAD=REFERENCES
reads them (RFC 5256 §4: a message's parents are its References, else the first ID of In-Reply-To).

Tolerant on purpose, as threading must cope with what mail software writes: an ID is whatever
stands between ``<`` and ``>`` with an ``@`` in it, folding whitespace removed; text around IDs
(comments, phrases in old In-Reply-To fields) is ignored. IDs compare case-sensitively (RFC 5256).
"""

from __future__ import annotations

from sealmail.mime.model import ParsedMessage

MAX_REFERENCES = 1000  # per message: a hostile References field cannot make threading quadratic


def message_ids(value: str | None, limit: int = MAX_REFERENCES) -> list[str]:
    """The valid message IDs in a field value, in order, without their angle brackets."""
    found: list[str] = []
    if not value:
        return found
    pos = 0
    while len(found) < limit:
        start = value.find("<", pos)
        if start < 0:
            break
        end = value.find(">", start + 1)
        if end < 0:
            break
        inner = "".join(value[start + 1 : end].split())
        if "<" in inner:  # an unclosed "<" before this one: start again from the inner one
            pos = start + 1 + value[start + 1 : end].rfind("<")
            continue
        if "@" in inner.strip("@"):
            found.append(inner)
        pos = end + 1
    return found


def thread_ids(parsed: ParsedMessage) -> tuple[str | None, list[str]]:
    """``(Message-ID, parent IDs oldest first)`` of a message for RFC 5256 §4 step 1."""
    own = message_ids(parsed.envelope.message_id, 1)
    references = message_ids(" ".join(v.raw for v in parsed.header_field("references")))
    if not references:
        references = message_ids(parsed.envelope.in_reply_to, 1)
    return (own[0] if own else None), references
