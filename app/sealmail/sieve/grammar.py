"""The Sieve grammar we accept, registered with sievelib's parser.

sievelib (MIT) looks commands up by class name in ``sievelib.commands`` (``add_commands``). We
register a subclass for every command we run, so that

* each command remembers the line it starts on (sievelib keeps none; CHECKSCRIPT and the error
  shown to the user need it, RFC 5804 §2.6);
* the arguments sievelib lacks are declared: ``:index``/``:last`` (RFC 5260 §6), any
  ``:comparator`` (checked against the ones we have when the tree is built), ``:percent``
  (RFC 5235 §3.2), and the commands ``ereject`` (RFC 5429), ``string`` (RFC 5229 §5),
  ``mailboxexists`` (RFC 5490 §3.1) and ``spamtest`` (RFC 5235 §3.1);
* ``require`` refuses an extension we do not implement (RFC 5228 §3.2: the script fails).

Registration replaces sievelib's own classes for the whole process, once, at import.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from sievelib import commands
from sievelib import parser as sieveparser

# RFC 5228 §3.2 capability strings this package implements. "spamtestplus" implies "spamtest".
CAPABILITIES = (
    "fileinto",
    "envelope",
    "reject",
    "ereject",
    "vacation",
    "variables",
    "copy",
    "imap4flags",
    "body",
    "date",
    "index",
    "relational",
    "spamtest",
    "spamtestplus",
    "mailbox",
    "regex",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
    "comparator-i;ascii-numeric",
    "comparator-i;unicode-casemap",
    "encoded-character",
)

_where = threading.local()  # the line of the token being parsed, per parsing thread


class _LineLexer(sieveparser.Lexer):  # type: ignore[misc]
    """sievelib's lexer, telling :class:`_Located` commands which line their token is on."""

    def scan(self, text: bytes) -> Iterator[tuple[str, bytes]]:
        line, seen = 1, 0
        for token in super().scan(text):
            if self.pos > seen:  # the parser rewinds one token now and then: count each newline once
                line += text.count(b"\n", seen, self.pos)
                seen = self.pos
            _where.line = line
            yield token


class Parser(sieveparser.Parser):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.lexer = _LineLexer(sieveparser.Parser.lrules)

    def parse(self, text: bytes) -> bool:
        _where.created = []
        try:
            if not super().parse(text):
                self._blame_incomplete_test()
                return False
            return self._complete()
        finally:
            _where.created = []

    def _blame_incomplete_test(self) -> None:
        """ "discard unexpected after a header": the header test lacks an argument; say so, on its line."""
        if not isinstance(getattr(self, "_Parser__curcommand", None), _Located):
            return
        current: Any = self._Parser__curcommand  # a sievelib command (Any to mypy)
        blame = (
            "unexpected after" in str(getattr(self, "error", ""))
            and current.get_type() == "test"
            and not current.iscomplete()
        )
        if blame:
            self.error_pos = (current.line, 0, 0)
            self.error = f"line {current.line}: missing argument for command {current.name}"

    def _complete(self) -> bool:
        # sievelib 1.6 accepts a last command without its ";" (and drops it): a command still open
        # at the end of the script is an error (RFC 5228 §8.2: command = identifier arguments (";" / block)).
        if getattr(self, "_Parser__cstate", None) is not None:
            self.error_pos = (getattr(_where, "line", 1), 0, 0)  # the line of the unfinished command's last token
            self.error = f'line {self.error_pos[0]}: end of script reached while ";" expected'
            return False
        # It also drops, silently, an "if" whose test lacks an argument when a block follows
        # ("if mailboxexists {}"): every command made while parsing must be in the tree.
        reachable = {id(node) for command in self.result for node in command.walk()}
        lost = [c for c in _where.created if id(c) not in reachable]
        if lost:
            culprit = next((c for c in lost if not c.iscomplete()), None)
            problem = f"missing argument for command {culprit.name}" if culprit else f"unexpected {lost[0].name}"
            culprit = culprit or lost[0]
            self.error_pos = (culprit.line, 0, 0)
            self.error = f"line {culprit.line}: {problem}"
            return False
        return True


class _Located:
    """Mixed into every registered command: the line its name is on."""

    line: int

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)  # type: ignore[call-arg]
        self.line = getattr(_where, "line", 0)
        created = getattr(_where, "created", None)
        if created is not None:
            created.append(self)


def _tag(name: str, extension: str | None = None, extra: str | None = None) -> dict[str, Any]:
    arg: dict[str, Any] = {"name": name, "type": ["tag"], "values": [f":{name}"], "required": False}
    if extension:
        arg["extension"] = extension
    if extra:
        arg["extra_arg"] = {"type": extra}
    return arg


def _positional(name: str, types: tuple[str, ...] = ("string", "stringlist")) -> dict[str, Any]:
    return {"name": name, "type": list(types), "required": True}


# Any comparator name parses; compile.py refuses the unknown and the ones not required (RFC 5228 §2.7.3).
COMPARATOR = _tag("comparator", extra="string")
MATCH_TYPE = commands.match_type  # :is :contains :matches, :count/:value (relational), :regex
ADDRESS_PART = commands.address_part
INDEX = [_tag("index", "index", "number"), _tag("last", "index")]
ZONE: dict[str, Any] = {
    "name": "zone",
    "type": ["tag"],
    "values": [":zone", ":originalzone"],
    "extra_arg": {"type": "string", "valid_for": [":zone"]},
    "required": False,
}


class RequireCommand(_Located, commands.RequireCommand):  # type: ignore[misc]
    def complete_cb(self) -> None:
        value = self.arguments["capabilities"]
        names = value if isinstance(value, list) else [value]
        for quoted in names:
            name = quoted[1:-1] if quoted.startswith('"') else quoted
            if name not in CAPABILITIES:
                # RFC 5228 §3.2: an extension that is not supported makes the script fail.
                raise commands.CommandError(f"unsupported extension {quoted}")
        super().complete_cb()
        if "spamtestplus" in commands.parser_state.loaded_extensions:
            commands.parser_state.loaded_extensions.append("spamtest")


class IfCommand(_Located, commands.IfCommand):  # type: ignore[misc]
    pass


class ElsifCommand(_Located, commands.ElsifCommand):  # type: ignore[misc]
    pass


class ElseCommand(_Located, commands.ElseCommand):  # type: ignore[misc]
    pass


class StopCommand(_Located, commands.StopCommand):  # type: ignore[misc]
    pass


class KeepCommand(_Located, commands.KeepCommand):  # type: ignore[misc]
    pass


class DiscardCommand(_Located, commands.DiscardCommand):  # type: ignore[misc]
    pass


class FileintoCommand(_Located, commands.FileintoCommand):  # type: ignore[misc]
    pass


class RedirectCommand(_Located, commands.RedirectCommand):  # type: ignore[misc]
    pass


class RejectCommand(_Located, commands.RejectCommand):  # type: ignore[misc]
    pass


class ErejectCommand(_Located, commands.ActionCommand):  # type: ignore[misc]
    """RFC 5429 §2.1: ``ereject <reason: string>``."""

    extension = "ereject"
    args_definition = [_positional("reason", ("string",))]


class VacationCommand(_Located, commands.VacationCommand):  # type: ignore[misc]
    pass


class SetCommand(_Located, commands.SetCommand):  # type: ignore[misc]
    pass


class SetflagCommand(_Located, commands.SetflagCommand):  # type: ignore[misc]
    pass


class AddflagCommand(_Located, commands.AddflagCommand):  # type: ignore[misc]
    pass


class RemoveflagCommand(_Located, commands.RemoveflagCommand):  # type: ignore[misc]
    pass


class TrueCommand(_Located, commands.TrueCommand):  # type: ignore[misc]
    pass


class FalseCommand(_Located, commands.FalseCommand):  # type: ignore[misc]
    pass


class NotCommand(_Located, commands.NotCommand):  # type: ignore[misc]
    pass


class AllofCommand(_Located, commands.AllofCommand):  # type: ignore[misc]
    pass


class AnyofCommand(_Located, commands.AnyofCommand):  # type: ignore[misc]
    pass


class ExistsCommand(_Located, commands.ExistsCommand):  # type: ignore[misc]
    pass


class SizeCommand(_Located, commands.SizeCommand):  # type: ignore[misc]
    pass


class HeaderCommand(_Located, commands.HeaderCommand):  # type: ignore[misc]
    args_definition = [COMPARATOR, MATCH_TYPE, *INDEX, _positional("header-names"), _positional("key-list")]


class AddressCommand(_Located, commands.AddressCommand):  # type: ignore[misc]
    args_definition = [
        COMPARATOR,
        ADDRESS_PART,
        MATCH_TYPE,
        *INDEX,
        _positional("header-list"),
        _positional("key-list"),
    ]


class EnvelopeCommand(_Located, commands.EnvelopeCommand):  # type: ignore[misc]
    args_definition = [COMPARATOR, ADDRESS_PART, MATCH_TYPE, _positional("header-list"), _positional("key-list")]


class BodyCommand(_Located, commands.BodyCommand):  # type: ignore[misc]
    args_definition = [COMPARATOR, *commands.BodyCommand.args_definition[1:]]


class DateCommand(_Located, commands.DateCommand):  # type: ignore[misc]
    args_definition = [
        ZONE,
        COMPARATOR,
        MATCH_TYPE,
        *INDEX,
        _positional("header-name", ("string",)),
        _positional("date-part", ("string",)),
        _positional("key-list"),
    ]


class CurrentdateCommand(_Located, commands.CurrentdateCommand):  # type: ignore[misc]
    args_definition = [
        {**ZONE, "values": [":zone"]},
        COMPARATOR,
        MATCH_TYPE,
        _positional("date-part", ("string",)),
        _positional("key-list"),
    ]


class HasflagCommand(_Located, commands.HasflagCommand):  # type: ignore[misc]
    args_definition = [COMPARATOR, *commands.HasflagCommand.args_definition[1:]]


class StringCommand(_Located, commands.TestCommand):  # type: ignore[misc]
    """RFC 5229 §5: ``string [MATCH-TYPE] [COMPARATOR] <source: string-list> <key-list: string-list>``."""

    extension = "variables"
    args_definition = [COMPARATOR, MATCH_TYPE, _positional("source"), _positional("key-list")]


class MailboxexistsCommand(_Located, commands.TestCommand):  # type: ignore[misc]
    """RFC 5490 §3.1: ``mailboxexists <mailbox-names: string-list>``."""

    extension = "mailbox"
    args_definition = [_positional("mailbox-names")]


class SpamtestCommand(_Located, commands.TestCommand):  # type: ignore[misc]
    """RFC 5235 §3.1-3.2: ``spamtest [":percent"] [COMPARATOR] [MATCH-TYPE] <value: string>``."""

    extension = "spamtest"
    args_definition = [_tag("percent", "spamtestplus"), COMPARATOR, MATCH_TYPE, _positional("value", ("string",))]


commands.add_commands(
    [
        RequireCommand,
        IfCommand,
        ElsifCommand,
        ElseCommand,
        StopCommand,
        KeepCommand,
        DiscardCommand,
        FileintoCommand,
        RedirectCommand,
        RejectCommand,
        ErejectCommand,
        VacationCommand,
        SetCommand,
        SetflagCommand,
        AddflagCommand,
        RemoveflagCommand,
        TrueCommand,
        FalseCommand,
        NotCommand,
        AllofCommand,
        AnyofCommand,
        ExistsCommand,
        SizeCommand,
        HeaderCommand,
        AddressCommand,
        EnvelopeCommand,
        BodyCommand,
        DateCommand,
        CurrentdateCommand,
        HasflagCommand,
        StringCommand,
        MailboxexistsCommand,
        SpamtestCommand,
    ]
)
