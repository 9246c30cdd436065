"""What delivery does for one alias after its Sieve script ran: pure, no I/O.

The script's outcome (``sieve.actions``) becomes a :class:`Plan`: the copies sealed into the spool
(one sealed body, ``store.model.Filing``), the redirects and the vacation reply queued, or the
refusal. Where a keep goes is decided here:

* ``keep`` and the implicit keep (RFC 5228 §4.3, §2.10.2) store where the message would have gone
  without a script -- INBOX, or Junk when the spam filter or the sender's DMARC policy put it there;
* ``fileinto`` wins over the verdict: ``fileinto "INBOX"`` on a message filed as spam stores it in
  INBOX, as the user said (``Keep.named``);
* a folder the mailbox lacks is only known when the drain opens it: the copy then goes where keep
  would have put it (RFC 5228 §4.1), unless ``:create`` (RFC 5490 §3.2) made it.

``mailboxexists`` and ``fileinto`` without ``:create`` therefore see every folder as existing at
delivery (the MX cannot read the encrypted mailbox's folder list).

A redirect of a message that already passed this alias's redirect (it carries the alias's
``Sealmail-Redirected`` token, ``smtp.sieveloop``) is not sent again: the loop ends with a keep.
"""

from __future__ import annotations

from dataclasses import dataclass

from sealmail.sieve.actions import Discard, FileInto, Keep, Outcome, Redirect, Reject, Vacation
from sealmail.spam.policy import sanitise
from sealmail.store.model import INBOX, Filing, Placement

# Folders one message may be filed into at once (RFC 5228 §2.10.6 lets an implementation limit actions):
# each is a row and an index entry in the mailbox, and the script's user pays for none of it.
MAX_COPIES = 32
REJECT_DEFAULT = "Message refused by the recipient's filter"


@dataclass(frozen=True, slots=True)
class Plan:
    """One alias's delivery as its script decided it."""

    script: str  # the script's name, for the log
    filing: Filing | None  # None: nothing stored (discard, reject, a redirect that cancelled the keep)
    redirects: tuple[Redirect, ...] = ()
    reject: Reject | None = None
    vacation: Vacation | None = None
    error: str | None = None  # the script failed (it did not compile, an error at run time, out of time)
    error_line: int | None = None
    loop: bool = False  # redirects dropped: the message already passed this alias's redirect

    @property
    def discarded(self) -> bool:
        return self.filing is None and self.reject is None and not self.redirects


def keep_only(script: str, keep_folder: str, error: str | None = None, line: int | None = None) -> Plan:
    """The plan of a script that could not run: the message where it would have gone without one."""
    return Plan(script, Filing((Placement(keep_folder),), keep_folder), error=error, error_line=line)


def plan(outcome: Outcome, script: str, keep_folder: str, *, looped: bool = False) -> Plan:
    """``outcome`` as a delivery plan; ``keep_folder`` is INBOX, or Junk for mail filed as spam."""
    if outcome.error is not None:
        return keep_only(script, keep_folder, outcome.error, outcome.error_line)
    copies: list[Placement] = []
    redirects: list[Redirect] = []
    reject = vacation = None
    for action in outcome.actions:
        if isinstance(action, Keep):
            copies.append(Placement(INBOX if action.named else keep_folder, action.flags))
        elif isinstance(action, FileInto):
            copies.append(Placement(action.mailbox, action.flags, action.create))
        elif isinstance(action, Redirect):
            redirects.append(action)
        elif isinstance(action, Reject):
            reject = action
        elif isinstance(action, Vacation):
            vacation = action
        elif isinstance(action, Discard):
            pass
    if len(copies) > MAX_COPIES:
        return keep_only(script, keep_folder, f"more than {MAX_COPIES} fileinto for one message")
    loop = bool(redirects) and looped
    if loop:
        redirects = []
        if not copies:  # the redirect had cancelled the implicit keep: it comes back (nothing is lost)
            copies.append(Placement(keep_folder))
    filing = Filing(tuple(copies), keep_folder) if copies else None
    return Plan(script, filing, tuple(redirects), reject, vacation, loop=loop)


def reject_reply(reason: str) -> str:
    """RFC 5429 §2.1.1: the SMTP refusal, 550 5.7.1 with the script's reason made one printable line."""
    return f"550 5.7.1 {sanitise(reason) or REJECT_DEFAULT}"
