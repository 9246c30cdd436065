"""When a user's own filing teaches rspamd: what moving or copying a message between folders means.

As Dovecot's IMAPSieve antispam setups do (``imap_sieve`` with ``report-spam.sieve`` and
``report-ham.sieve``), the signal is the move itself, read from the folders' special use (RFC 6154):

* into the ``\\Junk`` folder from any other one (MOVE or COPY): the user calls it spam;
* out of ``\\Junk`` into any folder but ``\\Trash`` (MOVE, or COPY: the user keeps a copy): ham;
* out of ``\\Junk`` into ``\\Trash``: nothing. Deleting junk says nothing about it being good mail;
* APPEND into ``\\Junk``: nothing. Clients append drafts, sent copies and imports; only a message
  the server delivered and the user then filed is the user's judgement.

Pure: the IMAP session asks it with the two folders' special uses and hands the answer to the
store, which queues the job in the move's own transaction (``store.learnjobs``).
"""

from __future__ import annotations

from sealmail.spam.rspamd import LearnClass

JUNK = "\\Junk"
TRASH = "\\Trash"

# How often one message is offered to the controller before its job is dropped: each failed try
# (controller refused, timed out, answered 5xx) counts; the learner waits longer after each.
MAX_ATTEMPTS = 8


def signal(source_use: str | None, target_use: str | None) -> LearnClass | None:
    """What a MOVE or COPY from a folder of ``source_use`` into one of ``target_use`` teaches."""
    into_junk = _is(target_use, JUNK)
    from_junk = _is(source_use, JUNK)
    if into_junk and not from_junk:
        return "spam"
    if from_junk and not into_junk and not _is(target_use, TRASH):
        return "ham"
    return None


def _is(use: str | None, wanted: str) -> bool:
    return use is not None and use.lower() == wanted.lower()  # RFC 6154 §2: attributes are case-insensitive
