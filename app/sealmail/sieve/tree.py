"""A compiled script: typed tests and commands, with their lines, and no sievelib objects.

Strings are decoded (RFC 5228 §2.4.2: quoting, multi-line dot-stuffing); variable references in them
(RFC 5229 §3) are expanded when the script runs, because their values depend on the message.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Match:
    """How a test compares (RFC 5228 §2.7): comparator, match type, and the relation of :count/:value."""

    comparator: str = "i;ascii-casemap"  # RFC 5228 §2.7.3: the default
    kind: str = "is"  # is, contains, matches, regex, count, value
    relation: str = ""  # gt ge lt le eq ne (RFC 5231 §4)


@dataclass(frozen=True, slots=True)
class Index:
    """RFC 5260 §6: which occurrence of a header field a test looks at (0 = all of them)."""

    number: int = 0
    last: bool = False


@dataclass(frozen=True, slots=True)
class Header:
    line: int
    match: Match
    names: tuple[str, ...]
    keys: tuple[str, ...]
    index: Index = Index()


@dataclass(frozen=True, slots=True)
class Address:
    line: int
    match: Match
    part: str  # all, localpart, domain (RFC 5228 §2.7.4)
    names: tuple[str, ...]
    keys: tuple[str, ...]
    index: Index = Index()


@dataclass(frozen=True, slots=True)
class Envelope:
    line: int
    match: Match
    part: str
    names: tuple[str, ...]  # from, to (RFC 5228 §5.4)
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Exists:
    line: int
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Size:
    line: int
    over: bool
    limit: int


@dataclass(frozen=True, slots=True)
class Body:
    line: int
    match: Match
    transform: str  # raw, content, text (RFC 5173 §5)
    content_types: tuple[str, ...]
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Date:
    line: int
    match: Match
    header: str
    part: str
    keys: tuple[str, ...]
    zone: str | None = None  # "+0100"; None: the local zone, or the header's with original_zone
    original_zone: bool = False
    index: Index = Index()


@dataclass(frozen=True, slots=True)
class CurrentDate:
    line: int
    match: Match
    part: str
    keys: tuple[str, ...]
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class String:
    line: int
    match: Match
    sources: tuple[str, ...]
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HasFlag:
    line: int
    match: Match
    variables: tuple[str, ...]  # empty: the internal variable (RFC 5232 §3)
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MailboxExists:
    line: int
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SpamTest:
    line: int
    match: Match
    percent: bool
    value: str


@dataclass(frozen=True, slots=True)
class Constant:
    line: int
    value: bool


@dataclass(frozen=True, slots=True)
class Not:
    line: int
    test: Test


@dataclass(frozen=True, slots=True)
class AllOf:
    line: int
    tests: tuple[Test, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    line: int
    tests: tuple[Test, ...]


Test = (
    Header
    | Address
    | Envelope
    | Exists
    | Size
    | Body
    | Date
    | CurrentDate
    | String
    | HasFlag
    | MailboxExists
    | SpamTest
    | Constant
    | Not
    | AllOf
    | AnyOf
)


@dataclass(frozen=True, slots=True)
class If:
    line: int
    branches: tuple[tuple[Test | None, tuple[Command, ...]], ...]  # if, elsif..., else (test None)


@dataclass(frozen=True, slots=True)
class Stop:
    line: int


@dataclass(frozen=True, slots=True)
class Keep:
    line: int
    flags: tuple[str, ...] | None = None  # :flags (RFC 5232 §5); None: the internal variable


@dataclass(frozen=True, slots=True)
class Discard:
    line: int


@dataclass(frozen=True, slots=True)
class FileInto:
    line: int
    mailbox: str
    copy: bool = False
    create: bool = False
    flags: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    line: int
    address: str
    copy: bool = False


@dataclass(frozen=True, slots=True)
class Reject:
    line: int
    reason: str
    extended: bool  # ereject (RFC 5429 §2.1)


@dataclass(frozen=True, slots=True)
class Vacation:
    line: int
    reason: str
    days: int | None = None
    subject: str | None = None
    sender: str | None = None  # :from
    addresses: tuple[str, ...] = ()
    mime: bool = False
    handle: str | None = None


@dataclass(frozen=True, slots=True)
class Set:
    line: int
    name: str
    value: str
    modifiers: tuple[str, ...] = ()  # in the order they apply (RFC 5229 §4.1: highest precedence first)


@dataclass(frozen=True, slots=True)
class FlagAction:
    line: int
    action: str  # setflag, addflag, removeflag
    variable: str | None
    flags: tuple[str, ...]


Command = If | Stop | Keep | Discard | FileInto | Redirect | Reject | Vacation | Set | FlagAction


@dataclass(frozen=True, slots=True)
class Script:
    commands: tuple[Command, ...]
    extensions: frozenset[str]

    @property
    def variables(self) -> bool:
        return "variables" in self.extensions
