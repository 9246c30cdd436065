"""Comparators (RFC 4790 via RFC 5228 §2.7.3) and match types (RFC 5228 §2.7.1, RFC 5231, regex).

``:matches`` and ``:regex`` run on RE2: time linear in the value whatever the pattern, so a hostile
script cannot stall delivery with a pathological pattern.
"""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Callable, Sequence

import re2

from sealmail.sieve.tree import Match

COMPARATORS = ("i;octet", "i;ascii-casemap", "i;ascii-numeric")
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
_DIGITS = re.compile(r"[0-9]+")
_MAX_PATTERN_MEMORY = 1 << 20


def fold(comparator: str, text: str) -> str:
    """RFC 4790 §9.2: i;ascii-casemap folds a-z only; other characters compare as they are."""
    return text.translate(_ASCII_UPPER) if comparator == "i;ascii-casemap" else text


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
        if kind == "matches":
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
