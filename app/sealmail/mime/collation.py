"""The ``i;unicode-casemap`` collation (RFC 5051), which SORT and THREAD compare strings with.

RFC 5051 §2: map each character to its titlecase (the simple, one-character mapping), decompose the
result to NFKD, and compare the UTF-8 octets. The mapped form is what the store keeps, so SQLite's
plain binary comparison of the stored text is the collation: "élan" sorts with the E's, before
"Zebra", and "re: Été" equals "RE: ÉTÉ".
"""

from __future__ import annotations

import unicodedata

_KEPT = 1 << 16  # characters whose mapping is remembered: bounded memory whatever the text


class _Titles(dict[int, str]):
    """Code point -> its simple titlecase, remembered as characters are met, for ``str.translate``
    (which looks each character up in C: ~3x faster than mapping them one by one in Python)."""

    def __missing__(self, code: int) -> str:
        mapped = _title(chr(code))
        if len(self) < _KEPT:
            self[code] = mapped
        return mapped


_TITLES = _Titles()


def casemap(text: str) -> str:
    """``text`` in its RFC 5051 comparison form (compare two forms with ``<`` or SQLite's BINARY)."""
    if text.isascii():
        return text.upper()  # ASCII titlecase is uppercase, and NFKD leaves ASCII as it is
    return unicodedata.normalize("NFKD", text.translate(_TITLES))


def _title(ch: str) -> str:
    # Python's str.title() applies the full mapping (SpecialCasing: "ß" -> "Ss"); RFC 5051 asks for the
    # simple one, which never changes the length: where the full mapping grows, the simple one is the
    # character's own uppercase if that is one character, else the character itself.
    mapped = ch.title()
    if len(mapped) == 1:
        return mapped
    upper = ch.upper()
    return upper if len(upper) == 1 else ch
