"""Sieve source -> :class:`tree.Script`, or :class:`SieveError` with the line to show the user.

sievelib's parser checks the syntax and the ``require``s (RFC 5228 §3.2, §8); this module turns
its tree into ours and adds the checks it leaves out: comparators (RFC 5228 §2.7.3), ``require``
first, date parts and zones (RFC 5260), ``:index`` (RFC 5260 §6), variable names (RFC 5229 §3),
regular expressions (RE2, so no pattern can run in more than linear time), and the size and
nesting limits that keep a hostile script cheap (RFC 5228 §2.10.6).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from sievelib.commands import Command as SievelibCommand

from sealmail.sieve import grammar, tree
from sealmail.sieve.errors import SieveError
from sealmail.sieve.match import COMPARATORS, REGEX_COMPARATORS, compile_regex
from sealmail.sieve.variables import has_references

# The config store refuses a longer script too (config.models.MAX_SIEVE_SCRIPT_BYTES, checked equal by a test).
MAX_SCRIPT_BYTES = 64 * 1024

# RFC 5228 §2.10.6 asks for at least 15 levels of nested blocks and of nested test lists.
MAX_NESTING = 32
DATE_PARTS = frozenset(
    (
        "year",
        "month",
        "day",
        "date",
        "julian",
        "hour",
        "minute",
        "second",
        "time",
        "iso8601",
        "std11",
        "zone",
        "weekday",
    )
)
ENVELOPE_PARTS = frozenset(("from", "to"))
_ZONE = re.compile(r"[+-](?:[01][0-9]|2[0-3])[0-5][0-9]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# sievelib names tokens by their lexer rule; the user reads the characters.
_TOKENS = {
    "left_bracket": '"["',
    "right_bracket": '"]"',
    "left_parenthesis": '"("',
    "right_parenthesis": '")"',
    "left_cbracket": '"{"',
    "right_cbracket": '"}"',
    "semicolon": '";"',
    "comma": '","',
}
_TOKEN_NAMES = re.compile(r"\b(?:" + "|".join(_TOKENS) + r")\b")
_NUMBER_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}  # RFC 5228 §2.4.1


def compile(script: str | bytes) -> tree.Script:
    """Parse and check a script; raise :class:`SieveError` (with its line) when it is not valid."""
    data = script.encode("utf-8", "surrogateescape") if isinstance(script, str) else script
    if len(data) > MAX_SCRIPT_BYTES:
        raise SieveError(1, f"script longer than {MAX_SCRIPT_BYTES} bytes")
    parser = grammar.Parser()
    if not parser.parse(data):
        line = parser.error_pos[0]
        message = parser.error.split(": ", 1)[1] if parser.error.startswith("line ") else parser.error
        raise SieveError(line, _TOKEN_NAMES.sub(lambda m: _TOKENS[m.group()], message.removeprefix("parsing error: ")))
    return _Builder().script(parser.result)


class _Builder:
    def __init__(self) -> None:
        self.extensions: set[str] = set()

    def script(self, nodes: list[SievelibCommand]) -> tree.Script:
        requires_done = False
        for node in nodes:
            if node.name == "require":
                if requires_done:
                    # RFC 5228 §3.2: require comes before anything else.
                    raise SieveError(node.line, "require must come before any other command")
                self.extensions.update(_strings(node.arguments["capabilities"]))
            else:
                requires_done = True
        if "spamtestplus" in self.extensions:
            self.extensions.add("spamtest")
        commands = self.block([n for n in nodes if n.name != "require"], depth=0)
        return tree.Script(commands, frozenset(self.extensions))

    # -- commands -----------------------------------------------------------------------------

    def block(self, nodes: list[SievelibCommand], depth: int) -> tuple[tree.Command, ...]:
        out: list[tree.Command] = []
        for node in nodes:
            try:
                self.statement(node, depth, out)
            except _BadEncoding as exc:
                raise SieveError(node.line, f"{exc} is not a character (RFC 5228 §2.4.2.4)") from None
        return tuple(out)

    def statement(self, node: SievelibCommand, depth: int, out: list[tree.Command]) -> None:
        """One command of a block, appended to ``out`` (elsif and else extend the if before them)."""
        if node.name in ("elsif", "else"):
            last = out[-1] if out else None
            if not isinstance(last, tree.If):  # sievelib checks this too
                raise SieveError(node.line, f"{node.name} must follow if or elsif")
            test = self.test(node.arguments["test"], depth) if node.name == "elsif" else None
            _nesting(node, depth)
            out[-1] = tree.If(last.line, (*last.branches, (test, self.block(node.children, depth + 1))))
        elif node.name == "require":
            raise SieveError(node.line, "require must come before any other command")
        else:
            out.append(self.command(node, depth))

    def command(self, node: SievelibCommand, depth: int) -> tree.Command:
        args, extra, line = node.arguments, node.extra_arguments, node.line
        name = node.name
        if name == "if":
            _nesting(node, depth)
            return tree.If(line, ((self.test(args["test"], depth), self.block(node.children, depth + 1)),))
        if name == "stop":
            return tree.Stop(line)
        if name == "discard":
            return tree.Discard(line)
        if name == "keep":
            return tree.Keep(line, self.flags(args, extra))
        if name == "fileinto":
            mailbox = self.text(args["mailbox"])
            if not mailbox:
                raise SieveError(line, "fileinto needs a mailbox name")
            return tree.FileInto(line, mailbox, "copy" in args, "create" in args, self.flags(args, extra))
        if name == "redirect":
            address = self.text(args["address"])
            if not has_references(address, self.variables) and not _plausible_address(address):
                # RFC 5228 §4.2: a syntactically invalid address is an error.
                raise SieveError(line, f"redirect: {address!r} is not an email address")
            return tree.Redirect(line, address, "copy" in args)
        if name in ("reject", "ereject"):
            return tree.Reject(line, self.text(args["text" if name == "reject" else "reason"]), name == "ereject")
        if name == "vacation":
            return self.vacation(node)
        if name == "set":
            variable = self.text(args["name"])
            if not _IDENTIFIER.fullmatch(variable):
                raise SieveError(line, f"set: {variable!r} is not a variable name (RFC 5229 §4)")
            # RFC 5229 §4.1: the modifier of highest precedence applies first.
            order = ("case", "first-case", "quotewildcard", "encoding", "length")
            modifiers = tuple(args[k].lower().lstrip(":") for k in order if k in args)
            return tree.Set(line, variable.lower(), self.text(args["value"]), modifiers)
        if name in ("setflag", "addflag", "removeflag"):
            target = self.text(args["variable-name"]).lower() if "variable-name" in args else None
            if target is not None and not _IDENTIFIER.fullmatch(target):
                raise SieveError(line, f"{name}: {target!r} is not a variable name")
            return tree.FlagAction(line, name, target, self.texts(args["list-of-flags"]))
        raise SieveError(line, f"{name} cannot be used here")  # pragma: no cover - the grammar has no other

    def vacation(self, node: SievelibCommand) -> tree.Vacation:
        args, extra, line = node.arguments, node.extra_arguments, node.line
        days = _number(extra["days"]) if "days" in args else None
        sender = self.text(extra["from"]) if "from" in args else None
        if sender is not None and not has_references(sender, self.variables) and not _plausible_address(sender):
            raise SieveError(line, f"vacation :from {sender!r} is not an email address (RFC 5230 §4.4)")
        return tree.Vacation(
            line,
            reason=self.text(args["reason"]),
            days=days,
            subject=self.text(extra["subject"]) if "subject" in args else None,
            sender=sender,
            addresses=self.texts(extra["addresses"]) if "addresses" in args else (),
            mime="mime" in args,
            handle=self.text(extra["handle"]) if "handle" in args else None,
        )

    # -- tests --------------------------------------------------------------------------------

    def test(self, node: SievelibCommand, depth: int) -> tree.Test:
        if depth > MAX_NESTING:
            raise SieveError(node.line, f"tests nested deeper than {MAX_NESTING}")
        args, line, name = node.arguments, node.line, node.name
        build = self._tests.get(name)
        if build is not None:
            return build(self, node, depth)
        if name in ("true", "false"):
            return tree.Constant(line, name == "true")
        if name == "not":
            return tree.Not(line, self.test(args["test"], depth + 1))
        if name in ("allof", "anyof"):
            tests = tuple(self.test(t, depth + 1) for t in args["tests"])
            return tree.AllOf(line, tests) if name == "allof" else tree.AnyOf(line, tests)
        if name == "exists":
            return tree.Exists(line, self.texts(args["header-names"]))
        if name == "size":
            return tree.Size(line, args["comparator"].lower() == ":over", _number(args["limit"]))
        if name == "mailboxexists":
            return tree.MailboxExists(line, self.texts(args["mailbox-names"]))
        if name == "spamtest":
            return tree.SpamTest(line, self.match(node), "percent" in args, self.text(args["value"]))
        raise SieveError(line, f"{name} is not a test")  # pragma: no cover - the grammar has no other

    def _header(self, node: SievelibCommand, depth: int) -> tree.Test:
        a = node.arguments
        return tree.Header(
            node.line, self.match(node), self.texts(a["header-names"]), self.keys(node), self.index(node)
        )

    def _address(self, node: SievelibCommand, depth: int) -> tree.Test:
        a = node.arguments
        part = a.get("address-part", ":all").lower().lstrip(":")
        names = self.texts(a["header-list"])
        return tree.Address(node.line, self.match(node), part, names, self.keys(node), self.index(node))

    def _envelope(self, node: SievelibCommand, depth: int) -> tree.Test:
        a = node.arguments
        part = a.get("address-part", ":all").lower().lstrip(":")
        names = tuple(n.lower() for n in self.texts(a["header-list"]))
        for envelope_part in names:
            if envelope_part not in ENVELOPE_PARTS and not has_references(envelope_part, self.variables):
                raise SieveError(node.line, f"envelope part {envelope_part!r} is not supported (from, to)")
        return tree.Envelope(node.line, self.match(node), part, names, self.keys(node))

    def _body(self, node: SievelibCommand, depth: int) -> tree.Test:
        a = node.arguments
        transform = a.get("body-transform", ":text").lower().lstrip(":")
        types = self.texts(node.extra_arguments["body-transform"]) if transform == "content" else ()
        return tree.Body(node.line, self.match(node), transform, types, self.keys(node))

    def _date(self, node: SievelibCommand, depth: int) -> tree.Test:
        a = node.arguments
        zone, original = self.zone(node)
        part = self.date_part(node)
        return tree.Date(
            node.line,
            self.match(node),
            self.text(a["header-name"]),
            part,
            self.keys(node),
            zone,
            original,
            self.index(node),
        )

    def _currentdate(self, node: SievelibCommand, depth: int) -> tree.Test:
        zone, _ = self.zone(node)
        return tree.CurrentDate(node.line, self.match(node), self.date_part(node), self.keys(node), zone)

    def _string_test(self, node: SievelibCommand, depth: int) -> tree.Test:
        return tree.String(node.line, self.match(node), self.texts(node.arguments["source"]), self.keys(node))

    def _hasflag(self, node: SievelibCommand, depth: int) -> tree.Test:
        a = node.arguments
        variables = tuple(v.lower() for v in self.texts(a["variable-list"])) if "variable-list" in a else ()
        for variable in variables:
            if not _IDENTIFIER.fullmatch(variable):
                raise SieveError(node.line, f"hasflag: {variable!r} is not a variable name")
        return tree.HasFlag(node.line, self.match(node), variables, self.texts(a["list-of-flags"]))

    _tests: ClassVar[dict[str, Callable[[_Builder, SievelibCommand, int], tree.Test]]] = {
        "header": _header,
        "address": _address,
        "envelope": _envelope,
        "body": _body,
        "date": _date,
        "currentdate": _currentdate,
        "string": _string_test,
        "hasflag": _hasflag,
    }

    # -- shared arguments ---------------------------------------------------------------------

    @property
    def variables(self) -> bool:
        return "variables" in self.extensions

    def text(self, value: Any) -> str:
        text = _string(value)
        return _encoded_characters(text) if "encoded-character" in self.extensions else text

    def texts(self, value: Any) -> tuple[str, ...]:
        return tuple(self.text(v) for v in (value if isinstance(value, list) else [value]))

    def flags(self, args: dict[str, Any], extra: dict[str, Any]) -> tuple[str, ...] | None:
        return self.texts(extra["flags"]) if "flags" in args else None

    def match(self, node: SievelibCommand) -> tree.Match:
        args, extra = node.arguments, node.extra_arguments
        comparator = self.text(extra["comparator"]).lower() if "comparator" in args else "i;ascii-casemap"
        if comparator not in COMPARATORS:
            raise SieveError(node.line, f"comparator {comparator!r} is not supported")
        if comparator not in ("i;octet", "i;ascii-casemap") and f"comparator-{comparator}" not in self.extensions:
            # RFC 5228 §2.7.3: other comparators must be named in require.
            raise SieveError(node.line, f'comparator {comparator!r} needs require "comparator-{comparator}"')
        kind = args.get("match-type", ":is").lower().lstrip(":")
        relation = self.text(extra["match-type"]).lower() if kind in ("count", "value") else ""
        if comparator == "i;ascii-numeric" and kind in ("contains", "matches", "regex"):
            # RFC 4790 §9.1.1: i;ascii-numeric has equality and ordering, no substring match.
            raise SieveError(node.line, f"comparator i;ascii-numeric cannot do :{kind}")
        if kind == "regex" and comparator not in REGEX_COMPARATORS:
            # RE2 can only be case-sensitive or fold ASCII-and-more its own way; RFC 5051 folding would
            # rewrite the pattern itself. Other Sieve servers refuse the same.
            raise SieveError(node.line, f"comparator {comparator} cannot do :regex (only i;octet and i;ascii-casemap)")
        return tree.Match(comparator, kind, relation)

    def keys(self, node: SievelibCommand) -> tuple[str, ...]:
        keys = self.texts(node.arguments["key-list"])
        if node.arguments.get("match-type", "").lower() == ":regex":
            for key in keys:
                if has_references(key, self.variables):
                    continue
                problem = compile_regex(key, casefold=False)
                if isinstance(problem, str):
                    raise SieveError(node.line, f"bad regular expression {key!r}: {problem}")
        return keys

    def index(self, node: SievelibCommand) -> tree.Index:
        args, extra = node.arguments, node.extra_arguments
        if "index" not in args:
            if "last" in args:
                raise SieveError(node.line, ":last needs :index (RFC 5260 §6)")
            return tree.Index()
        number = _number(extra["index"])
        if number < 1:
            raise SieveError(node.line, ":index counts from 1 (RFC 5260 §6)")
        return tree.Index(number, "last" in args)

    def zone(self, node: SievelibCommand) -> tuple[str | None, bool]:
        args, extra = node.arguments, node.extra_arguments
        if args.get("zone", "").lower() == ":originalzone":
            return None, True
        if "zone" not in args:
            return None, False
        zone = self.text(extra["zone"])
        if not _ZONE.fullmatch(zone) and not has_references(zone, self.variables):
            raise SieveError(node.line, f":zone {zone!r} is not +hhmm or -hhmm (RFC 5260 §4.1)")
        return zone, False

    def date_part(self, node: SievelibCommand) -> str:
        part = self.text(node.arguments["date-part"]).lower()
        if part not in DATE_PARTS and not has_references(part, self.variables):
            raise SieveError(node.line, f"unknown date part {part!r} (RFC 5260 §4.2)")
        return part


def _nesting(node: SievelibCommand, depth: int) -> None:
    if depth >= MAX_NESTING:
        raise SieveError(node.line, f"blocks nested deeper than {MAX_NESTING}")


# -- values -----------------------------------------------------------------------------------


def _string(value: Any) -> str:
    """A quoted string or a multi-line ``text:`` (RFC 5228 §2.4.2) as its value."""
    text = str(value)
    if text.startswith('"'):
        return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.DOTALL)
    # text: [comment] CRLF lines "." -- the first line and the final dot are syntax; ".." is "."
    body = text.split("\n", 1)[1] if "\n" in text else ""
    body = body[:-1] if body.endswith(".") else body
    return "".join(line[1:] if line.startswith("..") else line for line in body.splitlines(keepends=True))


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(_string(v) for v in value)
    return (_string(value),)


# RFC 5228 §2.4.2.4: "${hex: 40 41}" and "${unicode: 263A}", decoded once when the script is compiled
_BLANK = r"[ \t\r\n]"
_ENCODED = re.compile(
    rf"\$\{{(?i:hex):{_BLANK}*([0-9a-fA-F]{{1,2}}(?:{_BLANK}+[0-9a-fA-F]{{1,2}})*){_BLANK}*\}}"
    rf"|\$\{{(?i:unicode):{_BLANK}*([0-9a-fA-F]+(?:{_BLANK}+[0-9a-fA-F]+)*){_BLANK}*\}}"
)


class _BadEncoding(ValueError):
    pass


def _encoded_characters(text: str) -> str:
    def decode(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            octets = bytes(int(pair, 16) for pair in m.group(1).split())
            try:
                return octets.decode("utf-8")
            except UnicodeDecodeError:
                raise _BadEncoding(m.group()) from None
        points = [int(h, 16) for h in m.group(2).split()]
        if any(p > 0x10FFFF or 0xD800 <= p <= 0xDFFF for p in points):
            raise _BadEncoding(m.group())  # RFC 5228 §2.4.2.4: not a Unicode scalar value
        return "".join(chr(p) for p in points)

    return _ENCODED.sub(decode, text)


def _number(value: Any) -> int:
    text = str(value).lower()
    if text[-1:] in _NUMBER_UNITS:
        return int(text[:-1]) * _NUMBER_UNITS[text[-1]]
    return int(text)


def _plausible_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() or c in "<>," for c in address)
