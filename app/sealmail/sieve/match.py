"""Comparators (RFC 4790 via RFC 5228 §2.7.3) and match types (RFC 5228 §2.7.1, RFC 5231, regex).

``:matches`` and ``:regex`` run on RE2: time linear in the value whatever the pattern, so a hostile
script cannot stall delivery with a pathological pattern.

``i;unicode-casemap`` (RFC 5051) compares the "titlecased canonicalized" forms of both strings
(``mime.collation.casemap``: each character's simple titlecase, then NFKD), so a character may
become several: "é" is "E" and U+0301. ``:matches`` therefore folds the value one character at a
time, each between two markers, and reads the pattern's wildcards before folding its literal
characters (a fullwidth asterisk folds to "*" but stays a literal): "?" takes exactly one of the
value's characters, and the match variables are whole characters of the value. ``:regex`` does
not take it (the compiler refuses): RE2's case-insensitive mode is not RFC 5051, and folding a
pattern would change what it says ("\\d" titlecases to "\\D").
"""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Callable, Sequence

import re2

from sealmail.mime.collation import casemap
from sealmail.sieve.tree import Match

UNICODE_CASEMAP = "i;unicode-casemap"
COMPARATORS = ("i;octet", "i;ascii-casemap", "i;ascii-numeric", UNICODE_CASEMAP)
REGEX_COMPARATORS = ("i;octet", "i;ascii-casemap")  # the ones RE2 can honour (case-sensitive or not)
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
_DIGITS = re.compile(r"[0-9]+")
_MAX_PATTERN_MEMORY = 1 << 20


def fold(comparator: str, text: str) -> str:
    """The form a comparator compares: RFC 4790 §9.2's i;ascii-casemap folds a-z only, RFC 5051's
    i;unicode-casemap every character; i;octet compares the text as it is."""
    if comparator == "i;ascii-casemap":
        return text.translate(_ASCII_UPPER)
    if comparator == UNICODE_CASEMAP:
        return casemap(text)
    return text


def numeric(text: str) -> float:
    """RFC 4790 §9.1.1: the leading digits as a number; no leading digit is positive infinity."""
    m = _DIGITS.match(text)
    return int(m.group()) if m else math.inf


def _order(comparator: str, value: str, key: str) -> int:
    """-1, 0 or 1: value against key in the comparator's order (RFC 5231 §4)."""
    if comparator == "i;ascii-numeric":
        x, y = numeric(value), numeric(key)
        return (x > y) - (x < y)
    # code point order is UTF-8 octet order, so i;octet needs no encoding
    a, b = fold(comparator, value), fold(comparator, key)
    return (a > b) - (a < b)


_RELATIONS: dict[str, Callable[[int], bool]] = {
    "gt": lambda c: c > 0,
    "ge": lambda c: c >= 0,
    "lt": lambda c: c < 0,
    "le": lambda c: c <= 0,
    "eq": lambda c: c == 0,
    "ne": lambda c: c != 0,
}


def _options(casefold: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.dot_nl = True
    options.max_mem = _MAX_PATTERN_MEMORY
    options.case_sensitive = not casefold
    return options


@functools.lru_cache(maxsize=256)
def compile_regex(pattern: str, casefold: bool) -> re2._Regexp | str:
    """A ``:regex`` key compiled, or why it cannot be (RE2 syntax: no backreferences, no look-around)."""
    try:
        return re2.compile(pattern, _options(casefold))
    except re2.error as exc:
        return exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)


@functools.lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re2._Regexp:
    """RFC 5228 §2.7.1 ``*`` and ``?`` (``\\`` quotes the next character) as RE2. Each wildcard is a
    group that matches as little as it can, which gives RFC 5229 §3.2's match variables."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "*":
            out.append("(.*?)")
        elif ch == "?":
            out.append("(.)")
        elif ch == "\\":
            out.append(re.escape(next(chars, "\\")))
        else:
            out.append(re.escape(ch))
    return re2.compile("".join(out), _options(False))


# Unicode keeps U+FDD0..U+FDEF for a program's own use; none is ever a decomposition of anything.
_OPEN, _CLOSE = "\ufdd0", "\ufdd1"
_KEPT_UNITS = 1 << 16  # characters whose unit is remembered: bounded memory whatever the text


def _casemapped(ch: str) -> str:
    """One character's RFC 5051 form; a marker in the text itself becomes U+FFFD, so none is ambiguous."""
    return "\ufffd" if ch in (_OPEN, _CLOSE) else casemap(ch)


class _Units(dict[int, str]):
    """Code point -> its folded form between the markers, for ``str.translate`` (looked up in C)."""

    def __missing__(self, code: int) -> str:
        unit = _OPEN + _casemapped(chr(code)) + _CLOSE
        if len(self) < _KEPT_UNITS:
            self[code] = unit
        return unit


_UNITS = _Units()


@functools.lru_cache(maxsize=256)
def _casemap_wildcard(pattern: str, units: bool) -> re2._Regexp:
    """``_wildcard`` for i;unicode-casemap: the pattern's wildcards read first, then each literal
    character folded. Over ``value.translate(_UNITS)`` (``units``), ``?`` is one whole unit and ``*``
    and literals run over the folded text as if the markers were not there (RFC 5051 §2: i;octet on
    the folded forms, so ``*e*`` finds "é" as ``:contains "e"`` does). Over an ASCII value, which
    folds one character to one, no markers are needed."""
    unit = f"[^{_OPEN}{_CLOSE}]"
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "*":
            out.append("(.*?)")
        elif ch == "?":
            out.append(f"({_OPEN}{unit}+{_CLOSE})" if units else "(.)")
        else:
            literal = next(chars, "\\") if ch == "\\" else ch
            for c in _casemapped(literal):
                out.append(f"{_OPEN}?{re.escape(c)}{_CLOSE}?" if units else re.escape(c))
    return re2.compile("".join(out), _options(False))


def _unit_span(units: str, start: int, end: int) -> tuple[int, int]:
    """The characters of the value a span of its units covers: every character it has a part of."""
    if start == end:
        first = units.count(_CLOSE, 0, start)
        return first, first
    first = units.count(_CLOSE, 0, start) + (units[start] == _CLOSE)
    last = units.count(_OPEN, 0, end) - (units[end - 1] == _OPEN)
    return first, last


def _matches_unicode(key: str, values: Sequence[str]) -> tuple[str, ...] | None:
    """RFC 5228 §2.7.1 ``:matches`` under i;unicode-casemap: the match variables (RFC 5229 §3.2) of
    the first value that matches, as whole characters of that value; None when none does."""
    for value in values:
        if value.isascii():
            m = _casemap_wildcard(key, False).fullmatch(value.upper())
            if m is not None:
                return (value, *(value[m.start(i) : m.end(i)] for i in range(1, m.re.groups + 1)))
            continue
        units = value.translate(_UNITS)
        m = _casemap_wildcard(key, True).fullmatch(units)
        if m is not None:
            spans = (_unit_span(units, m.start(i), m.end(i)) for i in range(1, m.re.groups + 1))
            return (value, *(value[first:last] for first, last in spans))
    return None


def test(match: Match, values: Sequence[str], keys: Sequence[str]) -> tuple[bool, tuple[str, ...] | None]:
    """Whether any value matches any key; with the match variables when ``:matches`` or ``:regex`` matched."""
    kind, comparator = match.kind, match.comparator
    if kind == "count":
        # RFC 5231 §4.2: the number of values, compared with each key as a number would be.
        relation = _RELATIONS[match.relation]
        count = str(len(values))
        return any(relation(_order(comparator, count, key)) for key in keys), None
    if kind == "value":
        relation = _RELATIONS[match.relation]
        return any(relation(_order(comparator, v, k)) for v in values for k in keys), None
    if kind in ("is", "contains"):
        folded_keys = [fold(comparator, k) for k in keys]
        for value in values:
            folded = fold(comparator, value)
            if kind == "contains" and any(k in folded for k in folded_keys):
                return True, None
            if kind == "is" and any(_order(comparator, value, k) == 0 for k in keys):
                return True, None
        return False, None
    for key in keys:
        if kind == "matches" and comparator == UNICODE_CASEMAP:
            captured = _matches_unicode(key, values)
            if captured is not None:
                return True, captured
        elif kind == "matches":
            pattern = _wildcard(fold(comparator, key))
            for value in values:
                m = pattern.fullmatch(fold(comparator, value))
                if m is not None:
                    # spans of the folded value are spans of the value: folding keeps every length
                    groups = [value]
                    groups.extend(value[m.start(i) : m.end(i)] for i in range(1, m.re.groups + 1))
                    return True, tuple(groups)
        elif kind == "regex":
            compiled = compile_regex(key, comparator == "i;ascii-casemap")
            if isinstance(compiled, str):
                continue  # a key built from variables that is not a valid pattern matches nothing
            for value in values:
                found = compiled.search(value)
                if found is not None:
                    return True, tuple(found.group(i) or "" for i in range(compiled.groups + 1))
    return False, None
