"""The ManageSieve command grammar (RFC 5804 §4), without I/O.

A command is an atom, its name, then strings and numbers separated by spaces, ending with CRLF
(§1.2). A string is quoted, or a literal: ``{N+}`` (literal-c2s) or ``{N}`` at the end of a line,
then exactly N octets, after which the command's line goes on. ManageSieve has no continuation
request, so the octets of both forms follow at once and both are read the same way (§4 reserves
``{N}`` for the server; a client that sends it anyway waits for nothing).

``CommandParser`` is fed one line at a time (``feed``). When a line ends with a literal
announcement, ``feed`` returns it and the caller (``reader``) decides from its size whether to
read the octets (``literal``) before feeding the next line. ``command()`` then returns the typed
command, so the session never looks at bytes. Anything malformed raises ``ParseError``; its
``skip`` is the literal the bad line announced, whose octets the caller must pass over to find
the next command.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_NUMBER = 2**32 - 1  # RFC 5804 §4: number is a 32-bit unsigned number

# RFC 5804 §4 ATOM-CHAR: "!" / %x23-27 / %x2A-5B / %x5D-7A / %x7C-7E
_ATOM_CHARS = frozenset([0x21, *range(0x23, 0x28), *range(0x2A, 0x5C), *range(0x5D, 0x7B), *range(0x7C, 0x7F)])
_QUOTED_SPECIALS = frozenset(b'"\\')
_DIGITS = frozenset(b"0123456789")


class ParseError(Exception):
    """Not a valid ManageSieve command; answered ``NO`` (RFC 5804 §2: there is no BAD)."""

    def __init__(self, message: str, skip: LiteralHead | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.skip = skip


@dataclass(frozen=True, slots=True)
class LiteralHead:
    """A literal announced at the end of a line: ``size`` octets follow the line's CRLF."""

    size: int
    plus: bool  # {N+}, the client's form (literal-c2s); False for {N}


@dataclass(frozen=True, slots=True)
class Atom:
    text: str


Item = Atom | bytes  # an atom (command names, numbers) or a string's octets


# ---- commands -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Command:
    """CAPABILITY, LOGOUT, STARTTLS, LISTSCRIPTS, UNAUTHENTICATE: a name and nothing else."""

    name: str


@dataclass(frozen=True, slots=True)
class Noop(Command):
    tag: bytes | None  # RFC 5804 §2.13: echoed in the TAG response code


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    mechanism: str  # upper case
    initial: bytes | None  # the initial response as sent (base64 text), None when absent


@dataclass(frozen=True, slots=True)
class HaveSpace(Command):
    script: str
    size: int


@dataclass(frozen=True, slots=True)
class PutScript(Command):
    script: str
    content: str


@dataclass(frozen=True, slots=True)
class CheckScript(Command):
    content: str


@dataclass(frozen=True, slots=True)
class Named(Command):
    """GETSCRIPT, DELETESCRIPT, SETACTIVE (where "" means no script): one script name."""

    script: str


@dataclass(frozen=True, slots=True)
class RenameScript(Command):
    old: str
    new: str


# The commands without arguments, and every command name the grammar knows.
BARE = frozenset({"CAPABILITY", "LOGOUT", "STARTTLS", "LISTSCRIPTS", "UNAUTHENTICATE"})
NAMES = BARE | {
    "NOOP",
    "AUTHENTICATE",
    "HAVESPACE",
    "PUTSCRIPT",
    "CHECKSCRIPT",
    "GETSCRIPT",
    "DELETESCRIPT",
    "SETACTIVE",
    "RENAMESCRIPT",
}


# ---- assembling a command from lines and literals ------------------------------------------------
class CommandParser:
    """One command, or one SASL client response (a lone string): ``command()`` or ``response()``."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self._lines = 0

    @property
    def name(self) -> str | None:
        """The command's name, upper case, once its first line is read (None for a SASL response)."""
        if self.items and isinstance(self.items[0], Atom):
            return self.items[0].text.upper()
        return None

    def feed(self, line: bytes) -> LiteralHead | None:
        """Take the next line (with its line end); return the literal it announces, if any."""
        body = _strip_eol(line)
        try:
            head = self._scan(body, continued=self._lines > 0)
        except ParseError as exc:
            raise ParseError(exc.message, trailing_literal(body)) from None
        self._lines += 1
        return head

    def literal(self, data: bytes) -> None:
        """The octets of the literal ``feed`` announced."""
        self.items.append(data)

    def _scan(self, body: bytes, *, continued: bool) -> LiteralHead | None:
        pos, end = 0, len(body)
        if continued and body and body[0] != 0x20:
            raise ParseError("Expected a space or the end of the line after a literal")
        if not continued and not body:
            raise ParseError("Empty line")
        while pos < end:
            if pos > 0 or continued:
                if body[pos] != 0x20:
                    raise ParseError("Expected a space between arguments")
                while pos < end and body[pos] == 0x20:
                    pos += 1
                if pos == end:
                    break  # trailing spaces are forgiven
            first = body[pos]
            if first == 0x22:  # "
                value, pos = _quoted(body, pos)
                self.items.append(value)
            elif first == 0x7B:  # {
                head = _literal_head(body, pos)
                if head is None:
                    raise ParseError("A literal is {number+} at the end of a line (RFC 5804 §4)")
                return head
            elif first in _ATOM_CHARS:
                start = pos
                while pos < end and body[pos] in _ATOM_CHARS:
                    pos += 1
                self.items.append(Atom(body[start:pos].decode("ascii")))
            else:
                raise ParseError(f"Unexpected character 0x{first:02x}")
        return None

    # ---- the typed result -----------------------------------------------------------------------
    def response(self) -> bytes:
        """A SASL client response (RFC 5804 §2.1): exactly one string."""
        if len(self.items) != 1 or not isinstance(self.items[0], bytes):
            raise ParseError("Expected one string as the SASL response")
        return self.items[0]

    def command(self) -> Command:
        if not self.items or not isinstance(self.items[0], Atom):
            raise ParseError("A command starts with its name")
        name = self.items[0].text.upper()
        args = self.items[1:]
        if name not in NAMES:
            raise ParseError(f"Unknown command {name[:40]}")
        if name in BARE:
            _count(name, args, 0)
            return Command(name)
        if name == "NOOP":
            _count(name, args, 0, 1)
            return Noop(name, _string(args[0], "tag") if args else None)
        if name == "AUTHENTICATE":
            _count(name, args, 1, 2)
            mechanism = _text(_string(args[0], "mechanism"), "mechanism").upper()
            return Authenticate(name, mechanism, _string(args[1], "initial response") if len(args) > 1 else None)
        if name == "HAVESPACE":
            _count(name, args, 2)
            return HaveSpace(name, _script_name(args[0]), _number(args[1]))
        if name == "PUTSCRIPT":
            _count(name, args, 2)
            return PutScript(name, _script_name(args[0]), _content(args[1]))
        if name == "CHECKSCRIPT":
            _count(name, args, 1)
            return CheckScript(name, _content(args[0]))
        if name == "RENAMESCRIPT":
            _count(name, args, 2)
            return RenameScript(name, _script_name(args[0]), _script_name(args[1]))
        _count(name, args, 1)  # GETSCRIPT, DELETESCRIPT, SETACTIVE
        return Named(name, _script_name(args[0], empty=name == "SETACTIVE"))


def _count(name: str, args: list[Item], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not low <= len(args) <= high:
        wanted = str(low) if low == high else f"{low} or {high}"
        raise ParseError(f"{name} takes {wanted} argument{'' if wanted == '1' else 's'}")


def _string(item: Item, what: str) -> bytes:
    if not isinstance(item, bytes):
        raise ParseError(f"The {what} must be a quoted string or a literal")
    return item


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(f"The {what} is not valid UTF-8") from None


def _script_name(item: Item, *, empty: bool = False) -> str:
    # RFC 5804 §1.6: the other rules for names are the config store's (it refuses what it cannot keep).
    name = _text(_string(item, "script name"), "script name")
    if not name and not empty:
        raise ParseError("A script name cannot be empty (RFC 5804 §1.6)")
    return name


def _content(item: Item) -> str:
    # RFC 5228 §2.1: a script is UTF-8 text.
    return _text(_string(item, "script"), "script")


def _number(item: Item) -> int:
    if not isinstance(item, Atom) or not item.text.isdigit() or not item.text.isascii():
        raise ParseError("Expected a number")
    value = int(item.text)
    if value > MAX_NUMBER:
        raise ParseError("Number too large (RFC 5804 §4: at most 4294967295)")
    return value


def _quoted(body: bytes, pos: int) -> tuple[bytes, int]:
    """RFC 5804 §4 quoted: QUOTED-CHARs between DQUOTEs, ``\\`` only before ``"`` or ``\\``."""
    out = bytearray()
    pos += 1
    end = len(body)
    while pos < end:
        c = body[pos]
        if c == 0x22:
            return bytes(out), pos + 1
        if c == 0x5C:
            if pos + 1 >= end or body[pos + 1] not in _QUOTED_SPECIALS:
                raise ParseError('In a quoted string "\\" may only precede "\\" or \'"\'')
            out.append(body[pos + 1])
            pos += 2
            continue
        if c in (0x00, 0x0D, 0x0A):
            raise ParseError("A quoted string cannot hold NUL, CR or LF; send a literal")
        out.append(c)
        pos += 1
    raise ParseError("Unterminated quoted string")


def _literal_head(body: bytes, pos: int) -> LiteralHead | None:
    """``{N+}`` or ``{N}`` from ``pos`` to the very end of the line."""
    if not body.endswith(b"}"):
        return None
    inner = body[pos + 1 : -1]
    plus = inner.endswith(b"+")
    if plus:
        inner = inner[:-1]
    if not inner or not all(c in _DIGITS for c in inner) or len(inner) > 10:
        return None
    size = int(inner)
    return LiteralHead(size, plus) if size <= MAX_NUMBER else None


def trailing_literal(line: bytes) -> LiteralHead | None:
    """The literal a line announces at its end, read without the grammar: for a line that is
    malformed, or part of a command being passed over (its octets follow whatever we answer)."""
    body = _strip_eol(line)
    start = body.rfind(b"{")
    return _literal_head(body, start) if start >= 0 else None


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line
