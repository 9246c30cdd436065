"""The self-service rules (vacation reply, forwarding, filters) as typed data, written as Sieve and read back.

Pure: no storage, no network. :func:`to_sieve` writes a script whose first line is a marker comment
carrying the rules as JSON, so the account page and ``/v1/me/sieve`` can show the form again;
:func:`read` gives the rules back only when the script is exactly what they generate — a script
edited by hand (or uploaded over ManageSieve) is shown as text, and the form would replace it.

What the generated script does, in order:

1. the filters, top to bottom: each tests a header field (``header``, or ``address`` for From/To
   with ``is``/``matches``, so a display name does not get in the way), ignoring case in any
   script (``:comparator "i;unicode-casemap"``, RFC 5051, required as RFC 5228 §2.7.3 says), and files the message
   (``fileinto :create``, RFC 5228 §4.1, RFC 5490 §3.2), marks it read (``addflag "\\Seen"``,
   RFC 5232 §4.2), discards it (then stops: nothing discarded is forwarded or answered) or stops;
2. forwarding: ``redirect`` to each address, ``:copy`` when a copy stays here (RFC 3894 §3);
3. the vacation reply (RFC 5230), inside ``currentdate`` tests (RFC 5260 §5) when it has dates.

A script's marker names the version of the form that wrote it: version 1 compared with the default
``i;ascii-casemap`` (A-Z only). Its scripts still read back (as version 1, generated again the way
it was) and run as they did until saved, which writes the current version.

Strings are Sieve quoted strings (RFC 5228 §2.4.2: only ``"`` and ``\\`` are escaped; UTF-8 as it
is), and the script never requires ``variables`` or ``encoded-character``, so a ``${...}`` in a
user's text stays text. Folder names are the Unicode names the mailbox uses (``store.model``'s
normal form, which the drain files into), not IMAP's modified UTF-7.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sealmail.addresses import parse_mailbox
from sealmail.errors import InvalidInput
from sealmail.foldernames import normalize_folder_name
from sealmail.sieve.actions import MAX_REDIRECTS

MARKER = "# sealmail-rules: "
VERSION = 2  # 1: filters without a comparator (i;ascii-casemap, A-Z only); 2: i;unicode-casemap
COMPARATOR = "i;unicode-casemap"
MIN_DAYS, MAX_DAYS, DEFAULT_DAYS = 1, 30, 7
MAX_FILTERS = 50
MAX_TEXT = 10_000  # the vacation message
MAX_VALUE = 1_000  # a filter's value, a subject
MAX_VACATION_ADDRESSES = 10
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8: printable ASCII but ":"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tab and line feed are text; the rest is not


def _clean_line(text: str, what: str) -> str:
    text = text.strip()
    if "\n" in text or "\r" in text or _CONTROL.search(text):
        raise ValueError(f"{what} must be one line of text")
    return text


def _address(text: str) -> str:
    try:
        found = parse_mailbox(text, fold_case=False)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None
    if any(c.isspace() or c in '"<>(),;' for c in text.strip()):
        raise ValueError(f"{text!r} is not an email address")
    return found.text


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Vacation(_Model):
    """An automatic reply (RFC 5230), once per sender per ``days``, never to lists or programs."""

    enabled: bool = False
    subject: Annotated[str, Field(max_length=MAX_VALUE)] = ""  # empty: "Auto: " and theirs (RFC 5230 §4.3)
    message: Annotated[str, Field(max_length=MAX_TEXT)] = ""
    days: Annotated[int, Field(ge=MIN_DAYS, le=MAX_DAYS)] = DEFAULT_DAYS
    start: dt.date | None = None  # first day answered (the server's time zone), inclusive
    end: dt.date | None = None  # last day answered, inclusive
    addresses: Annotated[tuple[str, ...], Field(max_length=MAX_VACATION_ADDRESSES)] = ()  # others that are yours

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return _clean_line(value, "the subject")

    @field_validator("message")
    @classmethod
    def _message(cls, value: str) -> str:
        value = value.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
        if _CONTROL.search(value):
            raise ValueError("the message has a control character")
        return value

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_address(a) for a in value if a.strip()))

    @model_validator(mode="after")
    def _whole(self) -> Vacation:
        if self.enabled and not self.message.strip():
            raise ValueError("a vacation reply needs a message")
        if self.start and self.end and self.end < self.start:
            raise ValueError("the last day comes before the first")
        return self


class Forwarding(_Model):
    """Send every message on (``redirect``); ``keep_copy`` keeps one here as well (RFC 3894)."""

    enabled: bool = False
    to: Annotated[tuple[str, ...], Field(max_length=MAX_REDIRECTS)] = ()
    keep_copy: bool = True

    @field_validator("to")
    @classmethod
    def _to(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_address(a) for a in value if a.strip()))

    @model_validator(mode="after")
    def _whole(self) -> Forwarding:
        if self.enabled and not self.to:
            raise ValueError("forwarding needs at least one address")
        return self


FilterField = Literal["from", "to", "subject", "header"]
FilterMatch = Literal["contains", "is", "matches"]
FilterAction = Literal["fileinto", "mark_read", "discard", "stop"]


class Filter(_Model):
    """If ``field`` (``header``: the field named ``header``) ``match``es ``value``, do ``action``.

    ``to`` looks at To and Cc; ``matches`` takes ``*`` and ``?`` wildcards (RFC 5228 §2.7.1); the
    comparison ignores case in any script: ``i;unicode-casemap`` (RFC 5051: "ÉTÉ" finds "été")."""

    field: FilterField
    header: str = ""
    match: FilterMatch = "contains"
    value: Annotated[str, Field(min_length=1, max_length=MAX_VALUE)]
    action: FilterAction
    folder: str = ""

    @field_validator("value")
    @classmethod
    def _value(cls, value: str) -> str:
        value = _clean_line(value, "the value")
        if not value:
            raise ValueError("the value is empty")
        return value

    @model_validator(mode="after")
    def _whole(self) -> Filter:
        if self.field == "header":
            name = self.header.strip()
            if not _FIELD_NAME.fullmatch(name):
                raise ValueError(f"{self.header!r} is not a header field name (RFC 5322 §3.6.8)")
            object.__setattr__(self, "header", name)
        elif self.header:
            object.__setattr__(self, "header", "")
        if self.action == "fileinto":
            try:
                object.__setattr__(self, "folder", normalize_folder_name(self.folder.strip()))
            except InvalidInput as exc:
                raise ValueError(str(exc)) from None
        elif self.folder:
            object.__setattr__(self, "folder", "")
        return self


class Rules(_Model):
    vacation: Vacation = Vacation()
    forwarding: Forwarding = Forwarding()
    filters: Annotated[tuple[Filter, ...], Field(max_length=MAX_FILTERS)] = ()


def validate(data: object) -> Rules:
    """Rules from JSON-like data; ``InvalidInput`` names the first problem and where it is."""
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {message}" if where else message) from None


# ---- writing --------------------------------------------------------------------------------------
def quote(text: str) -> str:
    """A Sieve quoted string (RFC 5228 §2.4.2): backslash and double quote escaped, nothing else."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list(items: tuple[str, ...]) -> str:
    return quote(items[0]) if len(items) == 1 else "[" + ", ".join(quote(i) for i in items) + "]"


def _test(f: Filter, version: int) -> str:
    match = f":{f.match}" if version < 2 else f":{f.match} :comparator {quote(COMPARATOR)}"
    if f.field == "subject":
        return f"header {match} {quote('subject')} {quote(f.value)}"
    if f.field == "header":
        return f"header {match} {quote(f.header)} {quote(f.value)}"
    names = ("from",) if f.field == "from" else ("to", "cc")
    if f.match == "contains":  # the display name counts too
        return f"header {match} {_list(names)} {quote(f.value)}"
    return f"address :all {match} {_list(names)} {quote(f.value)}"


def _action(f: Filter) -> list[str]:
    if f.action == "fileinto":
        return [f"fileinto :create {quote(f.folder)};"]
    if f.action == "mark_read":
        return [f"addflag {quote(chr(92) + 'Seen')};"]
    if f.action == "discard":
        return ["discard;", "stop;"]
    return ["stop;"]


def _requirements(rules: Rules, version: int) -> list[str]:
    need: list[str] = []
    actions = {f.action for f in rules.filters}
    if "fileinto" in actions:
        need += ["fileinto", "mailbox"]
    if rules.filters and version >= 2:
        need.append(f"comparator-{COMPARATOR}")
    if "mark_read" in actions:
        need.append("imap4flags")
    if rules.forwarding.enabled and rules.forwarding.keep_copy:
        need.append("copy")
    if rules.vacation.enabled:
        need.append("vacation")
        if rules.vacation.start or rules.vacation.end:
            need += ["date", "relational"]
    return need


def _vacation(v: Vacation) -> list[str]:
    parts = ["vacation", f":days {v.days}"]
    if v.subject:
        parts.append(f":subject {quote(v.subject)}")
    if v.addresses:
        parts.append(f":addresses [{', '.join(quote(a) for a in v.addresses)}]")
    command = " ".join(parts) + f" {quote(v.message)};"
    tests = []
    if v.start:
        tests.append(f'currentdate :value "ge" "date" {quote(v.start.isoformat())}')
    if v.end:
        tests.append(f'currentdate :value "le" "date" {quote(v.end.isoformat())}')
    if not tests:
        return [command]
    test = tests[0] if len(tests) == 1 else f"allof ({', '.join(tests)})"
    return [f"if {test} {{", f"    {command}", "}"]


def to_sieve(rules: Rules, version: int = VERSION) -> str:
    """The script for ``rules``: the marker line (the rules as JSON), then the commands; ``version``
    (an older one) writes the script as that version of the form did, to recognise its scripts."""
    data = json.dumps({"version": version, **rules.model_dump(mode="json")}, ensure_ascii=True, separators=(",", ":"))
    out = [
        MARKER + data,
        "# Written by the account page's Filters and vacation form. Edit it there, or edit this text:",
        "# the form then shows the text only, and saving the form would replace it.",
    ]
    need = _requirements(rules, version)
    if need:
        out.append(f"require [{', '.join(quote(n) for n in need)}];")
    for number, f in enumerate(rules.filters, 1):
        out += [f"# filter {number}", f"if {_test(f, version)} {{", *(f"    {line}" for line in _action(f)), "}"]
    if rules.forwarding.enabled:
        out.append("# forwarding")
        copy = ":copy " if rules.forwarding.keep_copy else ""
        out += [f"redirect {copy}{quote(a)};" for a in rules.forwarding.to]
    if rules.vacation.enabled:
        out.append("# vacation reply")
        out += _vacation(rules.vacation)
    return "\n".join(out) + "\n"


# ---- reading back -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reading:
    """What the page can show for a script: the form (``rules``), or the text only and why."""

    rules: Rules | None
    note: str = ""  # why the form cannot show it (empty when it can)


HAND_EDITED = (
    "This script was edited by hand or came from a mail program: it is shown as text. Saving the form replaces it."
)


def read(script: str | None) -> Reading:
    """The rules a script was generated from, if it is exactly their script (line endings aside)."""
    if script is None or not script.strip():
        return Reading(Rules())
    text = script.replace("\r\n", "\n")
    first = text.split("\n", 1)[0]
    if not first.startswith(MARKER):
        return Reading(None, HAND_EDITED)
    try:
        data = json.loads(first.removeprefix(MARKER))
        version = data.pop("version", None) if isinstance(data, dict) else None
        if version not in (1, VERSION):
            return Reading(None, HAND_EDITED)
        rules = validate(data)
    except (ValueError, InvalidInput):
        return Reading(None, HAND_EDITED)
    if to_sieve(rules, version) != (text if text.endswith("\n") else text + "\n"):
        return Reading(None, HAND_EDITED)
    return Reading(rules)
