"""One stored message as an entry of an mbox file (RFC 4155, the "mboxrd" variant).

What mail programs import (Thunderbird, Apple Mail, mutt, Dovecot, Python's ``mailbox``):

* each message starts with a ``From `` line: ``From MAILER-DAEMON <asctime of the internal date, UTC>``
  (RFC 4155 §2: the sender and a timestamp; the envelope sender is not kept, so the placeholder
  every tool writes when it does not know);
* lines end with LF, as in every mbox on disk (the stored message's CRLF become LF);
* a body line that looks like a separator is quoted: mboxrd adds one ``>`` to every line that
  matches ``^>*From `` and a reader removes one, so the text comes back exactly (mboxo quoted only
  ``From `` and could not be undone);
* the IMAP flags ride in the header fields Dovecot and mutt read: ``Status: RO`` for ``\\Seen``,
  ``X-Status:`` with ``A`` (answered), ``F`` (flagged), ``T`` (draft), ``D`` (deleted), and
  ``X-Keywords:`` for keywords. They are added at the end of the header only when there is a flag
  to say, so a message without flags is exported byte for byte (line endings aside);
* a blank line ends every message.

Pure: bytes in, bytes out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import datetime

_FROM_LIKE = re.compile(rb"^(>*From )", re.M)
_X_STATUS = (("\\Answered", "A"), ("\\Flagged", "F"), ("\\Draft", "T"), ("\\Deleted", "D"))


def from_line(internal_date: datetime) -> bytes:
    """RFC 4155 §2: ``From <sender> <date in asctime form>``, the date in UTC."""
    return b"From MAILER-DAEMON " + time.asctime(time.gmtime(internal_date.timestamp())).encode() + b"\n"


def flag_fields(flags: Iterable[str]) -> bytes:
    """The header fields that carry ``flags`` (empty when none of them says anything)."""
    given = set(flags)
    fields = b""
    if "\\Seen" in given:
        fields += b"Status: RO\n"
    letters = "".join(letter for flag, letter in _X_STATUS if flag in given)
    if letters:
        fields += f"X-Status: {letters}\n".encode()
    keywords = sorted(flag for flag in given if not flag.startswith("\\"))
    if keywords:
        # IMAP keywords are atoms (RFC 9051 §9): no spaces or controls, so a space separates them.
        fields += ("X-Keywords: " + " ".join(keywords) + "\n").encode("utf-8")
    return fields


def entry(raw: bytes, flags: Iterable[str], internal_date: datetime) -> bytes:
    """The message ``raw`` as stored, as one mbox entry (its ``From`` line to its closing blank line)."""
    text = raw.replace(b"\r\n", b"\n")
    fields = flag_fields(flags)
    if fields:
        end = text.find(b"\n\n")
        if text.startswith(b"\n"):  # no header at all: the fields make one
            text = fields + text
        elif end >= 0:
            text = text[: end + 1] + fields + text[end + 1 :]
        else:  # a header without a body
            text = (text if text.endswith(b"\n") or not text else text + b"\n") + fields
    text = _FROM_LIKE.sub(rb">\1", text)
    if not text.endswith(b"\n"):
        text += b"\n"
    return from_line(internal_date) + text + b"\n"
