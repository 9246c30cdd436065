"""Run a compiled script on one message: RFC 5228 §2 semantics and the extensions of grammar.py.

Pure: the message bytes, the envelope, the spam score, the clock and a ``mailbox_exists`` callback
come in; an :class:`actions.Outcome` goes out. Nothing here writes, sends or logs. A run-time error
(RFC 5228 §2.10.6) -- and any fault of this code -- gives the fallback: the message kept in INBOX,
the error returned for the caller to log and show the user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from typing import TypeVar

from sealmail.sieve import dates, match, tree
from sealmail.sieve import vacation as vacation_rules
from sealmail.sieve.actions import INBOX, Keep, Outcome, Result, Vacation
from sealmail.sieve.compile import compile as compile_script
from sealmail.sieve.errors import SieveError, SieveRuntimeError
from sealmail.sieve.message import Message
from sealmail.sieve.variables import Variables, apply_modifiers

# Work a script may do on one message: commands and tests run, and value/key comparisons (a body
# counts per KiB). Sieve has no loops, so this bounds a hostile script's cost on the MX.
MAX_WORK = 50_000
_SYSTEM_FLAGS = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}
_ATOM_SPECIALS = set('(){ %*"]\\') | {chr(c) for c in range(32)} | {"\x7f"}


@dataclass(frozen=True, slots=True)
class Envelope:
    """The SMTP envelope as this recipient's script sees it (RFC 5228 §5.4)."""

    mail_from: str  # "" for the null reverse-path
    rcpt_to: str  # the address the message came to
    alias: str  # the alias the script belongs to (the vacation memory's key)
    addresses: tuple[str, ...] = ()  # all the alias's own addresses (RFC 5230 §4.5)


@dataclass(frozen=True, slots=True)
class Spam:
    """The spam filter's verdict: its score and the score at which it files into Junk."""

    score: float
    threshold: float


_T = TypeVar("_T")


class _Stop(Exception):
    pass


def evaluate(
    script: tree.Script,
    raw: bytes,
    envelope: Envelope,
    *,
    spam: Spam | None = None,
    now: datetime | None = None,
    mailbox_exists: Callable[[str], bool] = lambda _name: False,
    vacation_secret: bytes = b"",
) -> Outcome:
    """The actions ``script`` takes on the message ``raw``; never raises."""
    try:
        run = _Run(script, Message(raw), envelope, spam, now or datetime.now(UTC), mailbox_exists, vacation_secret)
        with contextlib.suppress(_Stop):  # RFC 5228 §3.3: stop skips the rest; the implicit keep stays
            run.block(script.commands)
        return Outcome(run.result.finish(run.imap_flags(run.internal_flags)), vacation_skipped=run.vacation_skipped)
    except SieveRuntimeError as exc:
        return Outcome((Keep(),), error=exc.message, error_line=exc.line)
    except Exception as exc:  # a fault here must not lose the message either
        return Outcome((Keep(),), error=f"internal error ({type(exc).__name__})")


def evaluate_source(
    source: str | bytes,
    raw: bytes,
    envelope: Envelope,
    *,
    spam: Spam | None = None,
    now: datetime | None = None,
    mailbox_exists: Callable[[str], bool] = lambda _name: False,
    vacation_secret: bytes = b"",
) -> Outcome:
    """Compile and run a stored script; one that does not compile keeps the message in INBOX."""
    try:
        script = compile_script(source)
    except SieveError as exc:
        return Outcome((Keep(),), error=exc.message, error_line=exc.line)
    return evaluate(
        script, raw, envelope, spam=spam, now=now, mailbox_exists=mailbox_exists, vacation_secret=vacation_secret
    )


class _Run:
    def __init__(
        self,
        script: tree.Script,
        message: Message,
        envelope: Envelope,
        spam: Spam | None,
        now: datetime,
        mailbox_exists: Callable[[str], bool],
        vacation_secret: bytes,
    ) -> None:
        self.script = script
        self.message = message
        self.envelope = envelope
        self.spam = spam
        self.now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        self.mailbox_exists = mailbox_exists
        self.vacation_secret = vacation_secret
        self.vars = Variables()
        self.internal_flags: tuple[str, ...] = ()  # RFC 5232 §3: the internal variable
        self.result = Result()
        self.work = 0
        self.vacation_skipped: str | None = None

    # -- budget and strings -------------------------------------------------------------------

    def spend(self, line: int, units: int) -> None:
        self.work += units
        if self.work > MAX_WORK:
            raise SieveRuntimeError(line, "the script does too much work on this message")

    def expand(self, text: str) -> str:
        return self.vars.expand(text) if self.script.variables else text

    def expand_all(self, texts: Iterable[str]) -> list[str]:
        return [self.expand(t) for t in texts]

    # -- commands -----------------------------------------------------------------------------

    def block(self, commands: tuple[tree.Command, ...]) -> None:
        for command in commands:
            self.spend(command.line, 1)
            self.command(command)

    def command(self, c: tree.Command) -> None:
        if isinstance(c, tree.If):
            for test, block in c.branches:
                if test is None or self.test(test):
                    self.block(block)
                    return
        elif isinstance(c, tree.Stop):
            raise _Stop
        elif isinstance(c, tree.Keep):
            self.result.store(c.line, INBOX, self.flags_for(c.flags))
        elif isinstance(c, tree.Discard):
            self.result.discard()
        elif isinstance(c, tree.FileInto):
            mailbox = self.expand(c.mailbox)
            if not mailbox:
                raise SieveRuntimeError(c.line, "fileinto: the mailbox name is empty")
            if mailbox.upper() != INBOX and not c.create and not self.mailbox_exists(mailbox):
                # RFC 5490 §3.2: without :create, a missing mailbox is an error.
                # The name is left out: built from variables, it can hold message content (errors are logged).
                raise SieveRuntimeError(c.line, "fileinto: a mailbox that does not exist (add :create)")
            self.result.store(c.line, mailbox, self.flags_for(c.flags), c.create, c.copy, named=True)
        elif isinstance(c, tree.Redirect):
            address = self.expand(c.address)
            local, at, domain = address.rpartition("@")
            if not (local and at and domain) or any(ch.isspace() or ch in "<>," for ch in address):
                raise SieveRuntimeError(c.line, "redirect: not an email address")  # RFC 5228 §4.2
            self.result.redirect(c.line, address, c.copy)
        elif isinstance(c, tree.Reject):
            self.result.refuse(c.line, self.expand(c.reason), c.extended)
        elif isinstance(c, tree.Vacation):
            self.vacation(c)
        elif isinstance(c, tree.Set):
            value = apply_modifiers(self.expand(c.value), c.modifiers)
            if not self.vars.set(c.name, value):
                raise SieveRuntimeError(c.line, "too many variables")
        elif isinstance(c, tree.FlagAction):
            self.flag_action(c)

    def flag_action(self, c: tree.FlagAction) -> None:
        """RFC 5232 §3: setflag/addflag/removeflag on the internal variable or a named one."""
        given = _flag_list(self.expand_all(c.flags))
        current = self.flags_of(c.variable)
        if c.action == "setflag":
            new = given
        elif c.action == "addflag":
            new = _flag_list([*current, *given])
        else:
            drop = {f.lower() for f in given}
            new = tuple(f for f in current if f.lower() not in drop)
        if c.variable is None:
            self.internal_flags = new
        elif not self.vars.set(c.variable, " ".join(new)):
            raise SieveRuntimeError(c.line, "too many variables")

    def flags_of(self, variable: str | None) -> tuple[str, ...]:
        if variable is None:
            return self.internal_flags
        return _flag_list([self.vars.named.get(variable, "")])

    def flags_for(self, given: tuple[str, ...] | None) -> tuple[str, ...]:
        """RFC 5232 §5: ``:flags`` replaces the internal variable for this one action."""
        flags = self.internal_flags if given is None else _flag_list(self.expand_all(given))
        return self.imap_flags(flags)

    @staticmethod
    def imap_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
        """Only what IMAP can store: the system flags (not \\Recent) and keywords that are atoms."""
        out = []
        for flag in flags:
            if flag.startswith("\\"):
                if flag.lower() in _SYSTEM_FLAGS:
                    out.append(_SYSTEM_FLAGS[flag.lower()])
            elif not any(ch in _ATOM_SPECIALS for ch in flag):
                out.append(flag)
        return tuple(out)

    def vacation(self, c: tree.Vacation) -> None:
        own = [*self.envelope.addresses, self.envelope.rcpt_to, *self.expand_all(c.addresses)]
        refusal = vacation_rules.refusal(self.message, self.envelope.mail_from, own)
        if refusal is None and self.spam is not None and self.spam.score >= self.spam.threshold:
            refusal = "message is spam"  # RFC 3834 §2: no replies that would reach spam's forged senders
        if refusal is not None:
            self.vacation_skipped = refusal
            return
        reason = self.expand(c.reason)
        subject = self.expand(c.subject) if c.subject is not None else None
        sender = self.expand(c.sender) if c.sender is not None else None
        handle = self.expand(c.handle) if c.handle is not None else None
        handle = handle or vacation_rules.default_handle(reason, subject, sender, c.mime)
        mail_from = self.envelope.mail_from
        decision = Vacation(
            recipient=mail_from,
            subject=subject if subject is not None else vacation_rules.default_subject(self.message),
            reason=reason,
            mime=c.mime,
            days=vacation_rules.clamp_days(c.days),
            handle=handle,
            key=vacation_rules.reply_key(self.vacation_secret, self.envelope.alias, mail_from, handle),
            sender=sender or None,
        )
        self.result.reply(c.line, decision)

    # -- tests --------------------------------------------------------------------------------

    def test(self, t: tree.Test) -> bool:
        self.spend(t.line, 1)
        if isinstance(t, tree.Constant):
            return t.value
        if isinstance(t, tree.Not):
            return not self.test(t.test)
        if isinstance(t, tree.AllOf):
            return all(self.test(s) for s in t.tests)
        if isinstance(t, tree.AnyOf):
            return any(self.test(s) for s in t.tests)
        if isinstance(t, tree.Exists):
            return all(self.message.raw_values(name) for name in self.expand_all(t.names))
        if isinstance(t, tree.Size):
            # RFC 5228 §5.9: strictly over or under
            return self.message.size > t.limit if t.over else self.message.size < t.limit
        if isinstance(t, tree.MailboxExists):
            names = self.expand_all(t.names)
            return all(n.upper() == INBOX or self.mailbox_exists(n) for n in names)
        if isinstance(t, tree.Header):
            values = [v for name in self.expand_all(t.names) for v in _pick(self.message.values(name), t.index)]
            return self.compare(t.line, t.match, values, t.keys)
        if isinstance(t, tree.Address):
            values = []
            for name in self.expand_all(t.names):
                for address in _pick(self.message.addresses(name), t.index):
                    if address is not None:  # RFC 5228 §2.7.4: an invalid address matches nothing
                        values.append(_address_part(t.part, *address))
            return self.compare(t.line, t.match, values, t.keys)
        if isinstance(t, tree.Envelope):
            return self.compare(t.line, t.match, self.envelope_values(t), t.keys)
        if isinstance(t, tree.Body):
            return self.body(t)
        if isinstance(t, tree.Date):
            return self.date(t)
        if isinstance(t, tree.CurrentDate):
            return self.currentdate(t)
        if isinstance(t, tree.String):
            sources = self.expand_all(t.sources)
            if t.match.kind == "count":  # RFC 5229 §5: an empty string is no value for :count
                sources = [s for s in sources if s]
            return self.compare(t.line, t.match, sources, t.keys)
        if isinstance(t, tree.HasFlag):
            flags: list[str] = []
            for variable in t.variables:
                flags.extend(self.flags_of(variable))
            if not t.variables:
                flags.extend(self.internal_flags)
            return self.compare(t.line, t.match, _flag_list(flags), t.flags)
        if isinstance(t, tree.SpamTest):
            return self.compare(t.line, t.match, [self.spam_value(t.percent)], (t.value,))
        raise SieveRuntimeError(t.line, "unknown test")  # pragma: no cover - tree.Test is closed

    def compare(
        self, line: int, how: tree.Match, values: Iterable[str], keys: Iterable[str], set_matches: bool = True
    ) -> bool:
        values = list(values)
        keys = self.expand_all(keys)
        self.spend(line, max(1, len(values)) * max(1, len(keys)) + sum(len(v) for v in values) // 1024 * len(keys))
        found, groups = match.test(how, values, keys)
        if found and groups is not None and set_matches:
            self.vars.matched = groups  # RFC 5229 §3.2: only a successful match sets them
        return found

    def envelope_values(self, t: tree.Envelope) -> list[str]:
        out: list[str] = []
        for part in self.expand_all(t.names):
            address = {"from": self.envelope.mail_from, "to": self.envelope.rcpt_to}.get(part.lower())
            if address is None:
                continue
            if not address:  # RFC 5228 §5.4: the null reverse-path is the empty string with :all
                if t.part == "all":
                    out.append("")
                continue
            local, _, domain = address.rpartition("@")
            out.append(_address_part(t.part, local, domain) if local else address)
        return out

    def body(self, t: tree.Body) -> bool:
        if t.transform == "raw":
            texts = [self.message.raw_body]
        elif t.transform == "content":
            texts = self.message.content(tuple(self.expand_all(t.content_types)))
        else:
            texts = self.message.text
        # A body test leaves the match variables as they were: our choice, a body can be megabytes.
        return self.compare(t.line, t.match, texts, t.keys, set_matches=False)

    def date(self, t: tree.Date) -> bool:
        values = []
        target = None if t.original_zone else self.zone(t.line, t.zone)
        part = self.expand(t.part).lower()
        for moment in _pick(self.message.dates(self.expand(t.header)), t.index):
            if moment is None:
                continue  # RFC 5260 §4: a field that holds no valid date matches nothing
            value = dates.part(moment if target is None else moment.astimezone(target), part)
            if value is not None:
                values.append(value)
        return self.compare(t.line, t.match, values, t.keys)

    def currentdate(self, t: tree.CurrentDate) -> bool:
        value = dates.part(self.now.astimezone(self.zone(t.line, t.zone)), self.expand(t.part).lower())
        return self.compare(t.line, t.match, [value] if value is not None else [], t.keys)

    def zone(self, line: int, text: str | None) -> timezone:
        if text is None:  # RFC 5260 §4.1: the local zone, which is the clock's
            offset = self.now.utcoffset()
            return timezone(offset) if offset is not None else UTC
        parsed = dates.parse_zone(self.expand(text))
        if parsed is None:
            raise SieveRuntimeError(line, ":zone is not +hhmm or -hhmm")
        return parsed

    def spam_value(self, percent: bool) -> str:
        """RFC 5235 §3: 0 when no filter looked at the message; else 1 (ham) .. 10 (spam), or with
        ``:percent`` 0..100. Our filter's Junk threshold is "definitely spam"."""
        if self.spam is None:
            return "0"
        ratio = min(max(self.spam.score / self.spam.threshold if self.spam.threshold > 0 else 1.0, 0.0), 1.0)
        if percent:
            return str(round(100 * ratio))
        return str(1 + int(9 * ratio))


def _pick(values: list[_T], index: tree.Index) -> list[_T]:
    """RFC 5260 §6: the nth occurrence, from the top or (``:last``) from the bottom."""
    if not index.number:
        return values
    if index.number > len(values):
        return []
    return [values[-index.number] if index.last else values[index.number - 1]]


def _address_part(part: str, local: str, domain: str) -> str:
    if part == "localpart":
        return local
    if part == "domain":
        return domain
    return f"{local}@{domain}"


def _flag_list(texts: Iterable[str]) -> tuple[str, ...]:
    """RFC 5232 §3: flags are space-separated and case-insensitive; each kept once."""
    seen: set[str] = set()
    out = []
    for text in texts:
        for flag in text.split():
            if flag.lower() not in seen:
                seen.add(flag.lower())
                out.append(flag)
    return tuple(out)
