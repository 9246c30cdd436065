"""RFC 5229 variables: ``${name}`` and ``${1}`` references, and the modifiers of ``set``."""

from __future__ import annotations

import re

# RFC 5229 §3: variable-ref = "${" [namespace] variable-name "}"; no namespaces are defined here, so a
# reference with one stays as written, like any other text that is not a valid reference.
_REFERENCE = re.compile(r"\$\{(?:([A-Za-z_][A-Za-z0-9_]*)|([0-9]+))\}")
MAX_VALUE = 4000  # RFC 5229 §6: at least 4000 octets a value must be kept; longer ones are cut
MAX_VARIABLES = 256  # RFC 5229 §6: at least 128


def has_references(text: str, enabled: bool = True) -> bool:
    """Whether ``text`` changes when variables are expanded (so it can only be checked at run time)."""
    return enabled and _REFERENCE.search(text) is not None


class Variables:
    """The values of one script run: named variables and the match variables of the last match."""

    def __init__(self) -> None:
        self.named: dict[str, str] = {}
        self.matched: tuple[str, ...] = ()

    def expand(self, text: str) -> str:
        """One pass over ``text`` (RFC 5229 §3: the result is not scanned again)."""
        if "${" not in text:
            return text

        def value(m: re.Match[str]) -> str:
            if m.group(1) is not None:
                return self.named.get(m.group(1).lower(), "")
            number = int(m.group(2))
            return self.matched[number] if number < len(self.matched) else ""

        return _REFERENCE.sub(value, text)

    def set(self, name: str, value: str) -> bool:
        """Store a variable; ``False`` when the script already holds as many as allowed."""
        if name not in self.named and len(self.named) >= MAX_VARIABLES:
            return False
        self.named[name] = _cut(value)
        return True


def apply_modifiers(value: str, modifiers: tuple[str, ...]) -> str:
    """RFC 5229 §4.1, in the order given (highest precedence first)."""
    for modifier in modifiers:
        if modifier == "lower":
            value = value.lower()
        elif modifier == "upper":
            value = value.upper()
        elif modifier == "lowerfirst":
            value = value[:1].lower() + value[1:]
        elif modifier == "upperfirst":
            value = value[:1].upper() + value[1:]
        elif modifier == "quotewildcard":
            value = re.sub(r"([*?\\])", r"\\\1", value)
        elif modifier == "quoteregex":
            value = re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", value)
        elif modifier == "length":
            value = str(len(value))  # characters, not octets (RFC 5229 §4.1)
    return value


def _cut(value: str) -> str:
    return value if len(value) <= MAX_VALUE else value[:MAX_VALUE]
