"""The preview of a message (RFC 8970): the start of what its reader would see, as plain text.

The first text/plain part that is not an attachment is the text (RFC 8970 §3.2 lets the server
choose how); without one, the first text/html part, stripped to its visible text. Transfer encoding
and charset are decoded, quoted lines ("> ...", replies' history) are left out, and all whitespace
folds to single spaces. At most ``PREVIEW_CHARS`` characters (the RFC's ceiling is 256); a message
without text has the empty preview. Nested messages (message/rfc822) are not looked into: they are
attachments to the message being previewed.
"""

from __future__ import annotations

from collections.abc import Iterator

from sealmail.mime.model import ParsedMessage, Part
from sealmail.mime.search import part_text

PREVIEW_CHARS = 200
_READ_CHARS = 8 * 1024  # decoded text read per part: enough for 200 characters after the quoted lines


def preview_text(raw: bytes, parsed: ParsedMessage, limit: int = PREVIEW_CHARS) -> str:
    """The preview of ``raw`` (parsed as ``parsed``); ``""`` when it has no text."""
    leaves = list(_own_leaves(parsed.root))
    for subtype in ("plain", "html"):
        for part in leaves:
            if part.type == "text" and part.subtype == subtype and (part.disposition or "").lower() != "attachment":
                try:
                    text = part_text(raw, part, _READ_CHARS)
                except Exception:  # a damaged part has no text: look at the next one
                    text = ""
                folded = _fold(text)
                if folded:
                    return _cut(folded, limit)
    return ""


def _own_leaves(root: Part) -> Iterator[Part]:
    """The message's own leaf parts in order, not those of messages attached to it."""
    stack = [root]
    while stack:
        part = stack.pop()
        if part.is_multipart and part.children:
            stack.extend(reversed(part.children))
        elif part.message is None and not part.opaque:
            yield part


def _fold(text: str) -> str:
    lines = (line for line in text.splitlines() if not line.lstrip().startswith(">"))
    return " ".join(" ".join(lines).split())


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rstrip()
