"""ENVELOPE answers (RFC 9051 §7.5.2) straight from the JSON the store computed at append time.

Listing a folder the first time (FETCH 1:* (... ENVELOPE)) used to parse every stored JSON text into
nested values and serialise them again: most of that command's time. Envelopes come in few shapes
(which fields are NIL, how many addresses each list holds), and a short printable string is quoted
the same way in JSON and in IMAP. So the answer for one shape is worked out once, the general way,
with stand-ins for its strings, and kept as a template; every envelope of that shape whose strings
need no escape is its template filled with its own strings, each quoted, or sent as a literal when
it is long or is 8-bit text without UTF8=ACCEPT (RFC 6855 §3). Anything else (quotes, backslashes
or control characters, octets that are not text) takes the general way, which gives the same text
(``tests/unit/test_imap_envelopes.py`` holds the two side by side).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter

from sealmail.imap import wire
from sealmail.store import imapvalue

_SHAPES_KEPT = 4096
_QUOTE = '"{}"'.format


class _Shape:
    __slots__ = ("bare", "quoted", "values")

    def __init__(self, bare: str, values: Callable[[list[str]], tuple[str, ...]]) -> None:
        self.bare = bare  # str.format text with one {} per string of the envelope
        self.quoted = bare.replace("{}", '"{}"')  # the same when every string goes quoted
        self.values = values  # picks those strings out of the JSON text split at its quotes


_shapes: dict[tuple[str, ...], _Shape | None] = {}


def envelope_text(stored: str | None, utf8: bool) -> str:
    """The ENVELOPE text of a stored envelope (``imapvalue.dumps`` form); ``NIL`` when there is none."""
    if stored is None:
        return "NIL"
    # A backslash is an escape in a string (a quote, CR, LF, NUL...), {"b": a string of octets.
    if "\\" not in stored and '{"b"' not in stored:
        pieces = stored.split('"')
        key = tuple(pieces[0::2])
        if key in _shapes:
            shape = _shapes[key]
        else:
            shape = _learn(pieces)
            if len(_shapes) >= _SHAPES_KEPT:
                _shapes.clear()
            _shapes[key] = shape
        if shape is not None:
            strings = shape.values(pieces)
            long = max(map(len, strings)) > wire.MAX_QUOTED
            if not long and (utf8 or stored.isascii()):
                return shape.quoted.format(*strings)
            fields = list(map(_QUOTE, strings))
            for i, plain in enumerate(map(str.isascii, strings)):
                if (not plain and not utf8) or (long and len(strings[i]) > wire.MAX_QUOTED):
                    fields[i] = _literal(strings[i])
            return shape.bare.format(*fields)
    return wire.envelope_text(imapvalue.loads(stored), utf8)


def _learn(pieces: list[str]) -> _Shape | None:
    """The template of the shape ``pieces`` (a JSON text split at its quotes) has, or None."""
    if len(pieces) % 2 == 0:
        return None
    # Odd pieces are strings; those followed by ":" are the keys of tagged lists ({"a": [...]}).
    slots = [i for i in range(1, len(pieces), 2) if not pieces[i + 1].startswith(":")]
    if not slots:
        return None
    stand_ins = list(pieces)
    for n, i in enumerate(slots):
        stand_ins[i] = f"s{n}"
    try:
        text = wire.envelope_text(imapvalue.loads('"'.join(stand_ins)), False)
    except ValueError:  # not JSON: the general way says so
        return None
    parts = text.split('"')
    # Every stand-in must come back quoted, in order, and nothing else quoted (nor a brace, which
    # str.format would read).
    if parts[1::2] != [f"s{n}" for n in range(len(slots))] or "{" in text or "}" in text:
        return None
    parts[1::2] = ["{}"] * len(slots)
    if len(slots) == 1:
        only = slots[0]

        def one(split: list[str]) -> tuple[str, ...]:
            return (split[only],)

        return _Shape("".join(parts), one)
    return _Shape("".join(parts), itemgetter(*slots))


def _literal(text: str) -> str:
    """As ``wire`` sends a string that cannot be quoted: ``{octets}`` CRLF, then the text."""
    return f"{{{len(text.encode('utf-8', 'surrogateescape'))}}}\r\n{text}"
