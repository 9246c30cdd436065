"""RFC 5322 §3.4 address lists as IMAP ENVELOPE address structures (RFC 9051 §7.5.2).

The stdlib cannot serve ENVELOPE: ``email.utils.getaddresses`` drops group syntax and routes, and
``email.headerregistry`` decodes encoded-words, which IMAP must pass through intact. So this is a small
tolerant tokenizer (obsolete syntax of RFC 5322 §4.4 included) that keeps names raw. Choices where the
RFCs are silent follow Dovecot: a missing domain is ``MISSING_DOMAIN``, a missing local part
``MISSING_MAILBOX``, and a comment names an address that has no display name. Empty list elements
(``a@b,,c@d``, RFC 5322 §4.4 obs-addr-list) are skipped.
"""

from __future__ import annotations

from sealmail.mime.model import Address

MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"
_SPECIALS = frozenset('()<>[]:;@\\,."')
_MAX_ADDRESSES = 10_000  # per header field; the rest is ignored

# token kinds
_ATOM, _QUOTED, _COMMENT, _LITERAL, _SPECIAL = range(5)


def _tokens(s: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in " \t\r\n":
            i += 1
        elif c == '"':
            i, value = _delimited(s, i + 1, '"')
            out.append((_QUOTED, value))
        elif c == "(":
            i, value = _comment(s, i)
            out.append((_COMMENT, value))
        elif c == "[":
            end = s.find("]", i)
            end = n if end < 0 else end + 1
            out.append((_LITERAL, s[i:end]))
            i = end
        elif c in _SPECIALS:
            out.append((_SPECIAL, c))
            i += 1
        else:
            start = i
            while i < n and s[i] not in _SPECIALS and s[i] not in " \t\r\n":
                i += 1
            out.append((_ATOM, s[start:i]))
    return out


def _delimited(s: str, i: int, close: str) -> tuple[int, str]:
    """Content of a quoted-string from ``i`` (after the opening quote), unescaped."""
    out: list[str] = []
    n = len(s)
    start = i
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            out.append(s[start:i])
            out.append(s[i + 1])
            i += 2
            start = i
        elif c == close:
            out.append(s[start:i])
            return i + 1, "".join(out)
        else:
            i += 1
    out.append(s[start:n])
    return n, "".join(out)


def _comment(s: str, i: int) -> tuple[int, str]:
    """A (nested) comment from the '(' at ``i``: its text without the outer parentheses."""
    depth = 0
    n = len(s)
    out: list[str] = []
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            out.append(s[i + 1])
            i += 2
            continue
        if c == "(":
            depth += 1
            if depth > 1:
                out.append(c)
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1, "".join(out)
            out.append(c)
        else:
            out.append(c)
        i += 1
    return n, "".join(out)


class _Parser:
    def __init__(self, s: str) -> None:
        self.toks = _tokens(s)
        self.i = 0
        self.out: list[Address] = []
        self.last_comment: str | None = None

    def peek(self) -> tuple[int, str] | None:
        while self.i < len(self.toks) and self.toks[self.i][0] == _COMMENT:
            self.last_comment = self.toks[self.i][1]
            self.i += 1
        return self.toks[self.i] if self.i < len(self.toks) else None

    def is_special(self, chars: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == _SPECIAL and tok[1] in chars

    def parse(self) -> list[Address]:
        while self.peek() is not None and len(self.out) < _MAX_ADDRESSES:
            if self.is_special(",;>"):  # empty element or stray terminator
                self.i += 1
                continue
            before = self.i
            self.address(in_group=False)
            if self.i == before:  # no progress: drop the offending token
                self.i += 1
        return self.out

    def address(self, in_group: bool) -> None:
        """One mailbox or (outside a group) one group, up to and including its ',' (or ';' for a group)."""
        self.last_comment = None
        start = self.i
        words = self.phrase()
        if self.is_special(":") and not in_group:
            self.i += 1
            self.out.append(Address(None, None, " ".join(words) if words else "", None))
            self.group_members()
            self.out.append(Address(None, None, None, None))
            return
        if self.is_special("<"):
            self.i += 1
            self.angle_addr(" ".join(words) if words else None)
        elif len(words) > 1 and not self.is_special("@."):
            # words and no address ("John Smith"): a name without a mailbox, as Dovecot reads it
            self.skip_until(",;" if in_group else ",")
            self.out.append(Address(" ".join(words), None, MISSING_MAILBOX, MISSING_DOMAIN))
        else:
            self.i = start  # it was the local part of an addr-spec, not a phrase
            self.last_comment = None
            mailbox, host = self.addr_spec(",;")
            self.skip_until(",;" if in_group else ",")
            self.out.append(Address(self.last_comment or None, None, mailbox, host))
        if self.is_special(","):
            self.i += 1

    def group_members(self) -> None:
        while (tok := self.peek()) is not None and len(self.out) < _MAX_ADDRESSES:
            if tok == (_SPECIAL, ";"):
                self.i += 1
                return
            if tok == (_SPECIAL, ","):
                self.i += 1
                continue
            before = self.i
            self.address(in_group=True)
            if self.i == before:
                self.i += 1

    def phrase(self) -> list[str]:
        """Words (atoms, quoted strings, obs-phrase dots) up to a special; the names IMAP wants, raw."""
        words: list[str] = []
        while (tok := self.peek()) is not None:
            kind, value = tok
            if kind in (_ATOM, _QUOTED):
                words.append(value)
            elif tok == (_SPECIAL, "."):
                if words:
                    words[-1] += "."
                else:
                    words.append(".")
            else:
                break
            self.i += 1
        return [w for w in words if w != ""] if any(words) else []

    def angle_addr(self, name: str | None) -> None:
        adl = self.route()
        mailbox, host = self.addr_spec(">,;")
        self.skip_until(">,;")
        if self.is_special(">"):
            self.i += 1
        self.skip_until(",;")
        self.out.append(Address(name, adl, mailbox, host))

    def route(self) -> str | None:
        """obs-route ``@a,@b:`` (RFC 5322 §4.4), returned as written without the colon."""
        save = self.i
        hops: list[str] = []
        while self.is_special("@"):
            self.i += 1
            hops.append("@" + self.domain())
            if self.is_special(","):
                self.i += 1
        if hops and self.is_special(":"):
            self.i += 1
            return ",".join(hops)
        self.i = save
        return None

    def addr_spec(self, stops: str) -> tuple[str, str]:
        local: list[str] = []
        while (tok := self.peek()) is not None:
            kind, value = tok
            if kind in (_ATOM, _QUOTED):
                local.append(value)
            elif tok == (_SPECIAL, "."):
                local.append(".")
            else:
                break
            self.i += 1
        host = ""
        if self.is_special("@"):
            self.i += 1
            host = self.domain()
        return "".join(local) or MISSING_MAILBOX, host or MISSING_DOMAIN

    def domain(self) -> str:
        parts: list[str] = []
        while (tok := self.peek()) is not None:
            kind, value = tok
            if kind in (_ATOM, _LITERAL, _QUOTED) or tok == (_SPECIAL, "."):
                parts.append(value)
            else:
                break
            self.i += 1
        return "".join(parts)

    def skip_until(self, stops: str) -> None:
        while (tok := self.peek()) is not None and not (tok[0] == _SPECIAL and tok[1] in stops):
            self.i += 1


def parse_address_list(value: str) -> tuple[Address, ...] | None:
    """An address-list header value as ENVELOPE addresses; ``None`` when it holds no address."""
    try:
        addresses = _Parser(value).parse()
    except RecursionError:  # cannot happen (no recursion), but never stop delivery
        return None
    return tuple(addresses) or None
