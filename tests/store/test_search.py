"""SEARCH keys over the store (RFC 9051 §6.4.4): substring, case-insensitive, combinable."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sealmail.store.mailbox import Mailbox
from sealmail.store.search import (
    All,
    And,
    DateKey,
    HasFlag,
    Header,
    ModSeq,
    Not,
    Or,
    Size,
    Text,
    UidSet,
)

from mailgen import message


@pytest.fixture
def box(mailbox: Mailbox) -> Mailbox:
    mailbox.append(
        "INBOX",
        message(1, subject="Quarterly report", body="Revenue grew in Zürich.\r\n"),
        ["\\Seen"],
        datetime(2026, 1, 10, 23, 30, tzinfo=UTC),
    )
    mailbox.append(
        "INBOX",
        message(
            2, subject="=?utf-8?q?R=C3=A9sum=C3=A9_attached?=", body="Please find my CV.\r\n", extra="X-Tag: blue\r\n"
        ),
        ["$Work"],
        datetime(2026, 1, 11, 8, 0, tzinfo=UTC),
    )
    mailbox.append(
        "INBOX",
        message(3, subject="lunch?", body="ok\r\n" * 500),
        ["\\Flagged", "\\Deleted"],
        datetime(2026, 1, 12, 12, 0, tzinfo=UTC),
    )
    return mailbox


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (All(), [1, 2, 3]),
        (Text("subject", "REPORT"), [1]),  # case-insensitive
        (Text("subject", "résumé"), [2]),  # RFC 2047 encoded-word decoded before matching
        (Text("body", "zürich"), [1]),  # non-ASCII substring
        (Text("body", "CV"), [2]),  # two characters: below the trigram length
        (Text("text", "sender2"), [2]),  # TEXT covers headers too
        (Text("from", "Sender 3"), [3]),
        (Text("to", "rémi"), [1, 2, 3]),
        (Text("body", "nothing like this"), []),
        (Text("body", 'quote"s'), []),  # FTS syntax characters are matched literally
        (Text("body", "50%"), []),
        (Header("X-Tag", "BLU"), [2]),
        (Header("x-tag", ""), [2]),  # empty string: the field exists
        (Header("Message-ID", "<m3@"), [3]),
        (HasFlag("\\Seen"), [1]),
        (HasFlag("\\seen"), [1]),
        (Not(HasFlag("\\Seen")), [2, 3]),
        (HasFlag("$work"), [2]),
        (HasFlag("\\Recent"), [1, 2, 3]),
        (HasFlag("\\Deleted"), [3]),
        (DateKey("internal", "before", date(2026, 1, 11)), [1]),
        (DateKey("internal", "on", date(2026, 1, 11)), [2]),
        (DateKey("internal", "since", date(2026, 1, 11)), [2, 3]),
        (DateKey("sent", "on", date(2026, 11, 2)), [1, 2, 3]),
        (Size("larger", 1000), [3]),
        (Size("smaller", 1000), [1, 2]),
        (UidSet(((2, None),)), [2, 3]),
        (UidSet(((9, None),)), [3]),  # "9:*" includes the highest UID (RFC 9051 §9)
        (UidSet(((3, 1),)), [1, 2, 3]),  # ranges may be written backwards
        (And((HasFlag("\\Flagged"), Text("subject", "lunch"))), [3]),
        (Or(HasFlag("\\Seen"), HasFlag("$Work")), [1, 2]),
        (Not(Or(HasFlag("\\Seen"), HasFlag("$Work"))), [3]),
        (ModSeq(0), [1, 2, 3]),
    ],
)
def test_search_keys(box: Mailbox, key, expected) -> None:
    assert box.search("INBOX", key) == expected


def test_modseq_search_follows_changes(box: Mailbox) -> None:
    """RFC 7162 §3.1.5."""
    changed = box.store_flags("INBOX", [2], "add", ["\\Answered"]).changed[0]
    assert box.search("INBOX", ModSeq(changed.modseq)) == [2]


def test_search_is_per_folder_and_sees_copies(box: Mailbox) -> None:
    box.copy("INBOX", [1], "Archive")
    assert box.search("Archive", Text("body", "revenue")) == [1]
    assert box.search("Trash", Text("body", "revenue")) == []


def test_expunged_messages_are_not_found(box: Mailbox) -> None:
    box.expunge("INBOX")
    assert box.search("INBOX", Text("subject", "lunch")) == []
