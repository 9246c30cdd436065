"""What a script decided for one message, and the RFC 5228 §2.10 rules that shape that list.

The evaluator adds actions as the script runs; :class:`Result` folds them the way the RFCs say:
the implicit keep (§2.10.2) cancelled by ``fileinto``, ``redirect``, ``discard`` and ``reject`` but
not by their ``:copy`` forms (RFC 3894 §3); one copy per mailbox and per redirect address (§2.10.3);
at most :data:`MAX_REDIRECTS` redirects (§2.10.6); ``reject``/``ereject`` alone (RFC 5429 §2.1);
one ``vacation`` (RFC 5230 §4.7). A rule broken at run time is a :class:`SieveRuntimeError`, and the
caller keeps the message instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sealmail.sieve.errors import SieveRuntimeError

INBOX = "INBOX"
MAX_REDIRECTS = 4


@dataclass(frozen=True, slots=True)
class Keep:
    """Store in INBOX (RFC 5228 §4.3), with these IMAP flags (RFC 5232 §5).

    ``named``: a ``fileinto "INBOX"`` asked for it by name. ``keep`` and the implicit keep store where
    the message would have gone without a script, which is Junk for spam; a named INBOX is INBOX."""

    flags: tuple[str, ...] = ()
    named: bool = False


@dataclass(frozen=True, slots=True)
class FileInto:
    mailbox: str
    flags: tuple[str, ...] = ()
    create: bool = False  # RFC 5490 §3.2: create the mailbox when it is missing
    copy: bool = False


@dataclass(frozen=True, slots=True)
class Redirect:
    """Send on through the outbound queue (SRS applied there)."""

    address: str
    copy: bool = False


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse: at DATA when the MX still can (``ereject`` asks for that, RFC 5429 §2.1), else a DSN."""

    reason: str
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Discard:
    """Nothing is stored or sent (RFC 5228 §4.4); stands alone in an outcome."""


@dataclass(frozen=True, slots=True)
class Vacation:
    """An auto-reply to send (RFC 5230), if the sender was not answered within ``days`` under ``key``."""

    recipient: str  # the envelope sender: RFC 5230 §4.5 answers the return path
    subject: str
    reason: str
    mime: bool
    days: int
    handle: str
    key: str  # vacation.reply_key(...): what the "once per sender per period" memory stores
    sender: str | None = None  # :from


Action = Keep | FileInto | Redirect | Reject | Discard | Vacation


@dataclass(frozen=True, slots=True)
class Outcome:
    actions: tuple[Action, ...]
    error: str | None = None  # a run-time error: the actions are the fallback keep
    error_line: int | None = None
    vacation_skipped: str | None = None  # why no auto-reply is sent although the script asked


@dataclass
class Result:
    implicit_keep: bool = True
    stores: dict[str, FileInto] = field(default_factory=dict)  # mailbox -> action, INBOX for keep
    redirects: dict[str, Redirect] = field(default_factory=dict)
    reject: Reject | None = None
    vacation: Vacation | None = None
    inbox_named: bool = False  # a fileinto named INBOX (see Keep.named)

    def store(
        self,
        line: int,
        mailbox: str,
        flags: tuple[str, ...],
        create: bool = False,
        copy: bool = False,
        named: bool = False,
    ) -> None:
        self._no_reject(line, "fileinto" if mailbox != INBOX else "keep")
        name = INBOX if mailbox.upper() == INBOX else mailbox  # RFC 3501 §5.1: INBOX in any case
        self.inbox_named = self.inbox_named or (named and name == INBOX)
        earlier = self.stores.get(name)
        if earlier is not None:  # RFC 5228 §2.10.3: stored once; the flags of both
            flags = _merge(earlier.flags, flags)
            create = create or earlier.create
        self.stores[name] = FileInto(name, flags, create, copy)
        if not copy:
            self.implicit_keep = False

    def redirect(self, line: int, address: str, copy: bool) -> None:
        self._no_reject(line, "redirect")
        key = address.lower()
        if key not in self.redirects and len(self.redirects) >= MAX_REDIRECTS:
            raise SieveRuntimeError(line, f"more than {MAX_REDIRECTS} redirects")
        self.redirects.setdefault(key, Redirect(address, copy))
        if not copy:
            self.implicit_keep = False

    def discard(self) -> None:
        self.implicit_keep = False

    def refuse(self, line: int, reason: str, extended: bool) -> None:
        if self.reject is not None:
            raise SieveRuntimeError(line, "only one reject or ereject may run (RFC 5429 §2.1)")
        if self.stores or self.redirects or self.vacation is not None:
            raise SieveRuntimeError(line, "reject cannot be combined with keep, fileinto, redirect or vacation")
        self.reject = Reject(reason, extended)
        self.implicit_keep = False

    def reply(self, line: int, vacation: Vacation) -> None:
        self._no_reject(line, "vacation")
        if self.vacation is not None:
            raise SieveRuntimeError(line, "vacation may run once per message (RFC 5230 §4.7)")
        self.vacation = vacation

    def finish(self, flags: tuple[str, ...]) -> tuple[Action, ...]:
        """The actions in a stable order; the implicit keep takes the internal flags (RFC 5232 §3)."""
        if self.implicit_keep:
            self.store(0, INBOX, flags, copy=True)
        out: list[Action] = []
        if self.reject is not None:
            out.append(self.reject)
        for store in self.stores.values():
            out.append(Keep(store.flags, self.inbox_named) if store.mailbox == INBOX else store)
        out.extend(self.redirects.values())
        if self.vacation is not None:
            out.append(self.vacation)
        if not any(isinstance(a, Keep | FileInto | Redirect | Reject) for a in out):
            out.insert(0, Discard())
        return tuple(out)

    def _no_reject(self, line: int, what: str) -> None:
        if self.reject is not None:
            raise SieveRuntimeError(line, f"{what} cannot follow reject (RFC 5429 §2.1)")


def _merge(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    seen = {f.lower() for f in a}
    return a + tuple(f for f in b if f.lower() not in seen)
