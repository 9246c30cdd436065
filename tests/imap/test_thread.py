"""THREAD (RFC 5256 §3-§5): ORDEREDSUBJECT and REFERENCES as table tests over the algorithm's steps,
then THREAD and UID THREAD over real sockets."""

from __future__ import annotations

import pytest

from sealmail import mime
from sealmail.imap.threads import ordered_subject, references, thread_text
from sealmail.mime.msgids import thread_ids
from sealmail.store.ordering import ThreadMessage

from .conftest import selected_after_appends


def m(
    uid: int,
    mid: str | None = None,
    refs: str = "",
    subject: str = "",
    *,
    reply: bool = False,
    minute: int | None = None,
) -> ThreadMessage:
    """A message as the store gives it; sent dates follow the UIDs unless ``minute`` says otherwise."""
    when = f"2026-11-02T10:{uid if minute is None else minute:02d}:00.000Z"
    return ThreadMessage(uid, when, subject.upper(), reply, mid, tuple(refs.split()))


def render(roots: list) -> str:
    return "".join(thread_text(t, lambda uid: uid) for t in roots)


REFERENCES = [
    # (what the case checks, messages in mailbox order, THREAD response's threads)
    ("1.A a References chain links parent to child", [m(1, "a"), m(2, "b", "a"), m(3, "c", "a b")], "(1 2 3)"),
    (
        "siblings are nested; a single child continues the line",
        [m(1, "a"), m(2, "b", "a"), m(3, "c", "a"), m(4, "d", "a b")],
        "(1 (2 4)(3))",
    ),
    (
        "RFC 5256 §5's example response",
        [
            m(2, "two"),
            m(3, "three"),
            m(4, "four", "three six"),
            m(6, "six", "three"),
            m(7, "seven", "three six forty4"),
            m(23, "x23", "three six four"),
            m(44, "forty4", "three six"),
            m(96, "x96", "three six forty4 seven"),
        ],
        "(2)(3 6 (4 23)(44 7 96))",
    ),
    ("1.A no Message-ID: the message gets a unique one", [m(1), m(2)], "(1)(2)"),
    ("1.A a duplicate Message-ID is only the first message's", [m(1, "a"), m(2, "a"), m(3, "b", "a")], "(1 3)(2)"),
    ("1.A/3 a missing parent is a dummy, spliced out below the top", [m(1, "a"), m(2, "c", "a x")], "(1 2)"),
    ("3 a dummy at the top with one child gives way to it", [m(1, "a", "x"), m(2, "b")], "(1)(2)"),
    ("3 a dummy at the top with several children stays", [m(1, "a", "x"), m(2, "b", "x")], "((1)(2))"),
    ("1.A/1.B no link that would make a loop", [m(1, "a", "b"), m(2, "b", "a")], "(2 1)"),
    (
        "1.B a truncated References chain gives way to the message's own",
        [m(1, "a"), m(2, "b"), m(3, "d", "a c"), m(4, "c", "b")],
        "(1)(2 4 3)",
    ),
    (
        "1.B the last reference is the parent even when the chain disagrees (ImapTest thread)",
        [m(1, "a", minute=50), m(2, "b", "a c", minute=10), m(3, "c", "b", minute=30)],
        "(3 2)(1)",
    ),
    ("4 threads ordered by sent date, then mailbox order", [m(1, "a", minute=9), m(2, "b", minute=8)], "(2)(1)"),
    (
        "6 siblings ordered by sent date",
        [m(1, "a"), m(2, "b", "a", minute=40), m(3, "c", "a", minute=30)],
        "(1 (3)(2))",
    ),
    (
        "4 a dummy sorts as its first child",
        [m(1, "a", "x", minute=20), m(2, "b", "x", minute=5), m(3, "c", minute=10)],
        "((2)(1))(3)",
    ),
    # step 5: threads whose first messages share a base subject are merged
    ("5.C a reply joins the thread it answers", [m(1, "a", "", "foo"), m(2, "b", "", "foo", reply=True)], "(1 2)"),
    (
        "5.B the original, not an earlier reply, holds the subject",
        [m(1, "a", "", "foo", reply=True), m(2, "b", "", "foo")],
        "(2 1)",
    ),
    ("5.C two originals meet under a dummy", [m(1, "a", "", "foo"), m(2, "b", "", "foo")], "((1)(2))"),
    ("5.B an empty subject never merges", [m(1, "a"), m(2, "b")], "(1)(2)"),
    (
        "5.C a message joins a dummy's thread of the same subject",
        [m(1, "a", "x", "bar"), m(2, "b", "x", "bar"), m(3, "c", "", "bar")],
        "((1)(2)(3))",
    ),
    (
        "5.C two dummies' children become siblings",
        [m(1, "a", "x", "bar"), m(2, "b", "x", "bar"), m(3, "c", "y", "bar"), m(4, "d", "y", "bar")],
        "((1)(2)(3)(4))",
    ),
    (
        "5 only the first message's subject counts",
        [m(1, "a", "", "foo"), m(2, "b", "a", "other"), m(3, "c", "", "other", reply=True)],
        "(1 2)(3)",
    ),
]


@pytest.mark.parametrize(("case", "messages", "expected"), REFERENCES, ids=[c[0] for c in REFERENCES])
def test_references_algorithm(case: str, messages: list[ThreadMessage], expected: str) -> None:
    """RFC 5256 §4 REFERENCES, step by step (the case names the step)."""
    assert render(references(messages)) == expected


def test_references_survive_a_long_reply_chain() -> None:
    """No recursion: a chain of 5,000 replies threads and renders (one thread, 5,000 numbers)."""
    chain = [m(1, "m1")] + [m(i, f"m{i}", f"m{i - 1}", minute=0) for i in range(2, 5001)]
    text = render(references(chain))
    assert text == "(" + " ".join(str(i) for i in range(1, 5001)) + ")"


ORDERED = [
    (
        "one thread per base subject; the first by sent date is the root, the rest its children",
        [m(1, subject="a", minute=10), m(2, subject="b", minute=9), m(3, subject="a", minute=8)],
        "(3 1)(2)",
    ),
    (
        "three or more: every later message a child of the first (ImapTest thread-orderedsubject2)",
        [
            m(1, subject="a", minute=10),
            m(2, subject="b", minute=9),
            m(3, subject="a", minute=8),
            m(4, subject="b", minute=7),
            m(5, subject="a", minute=30),
            m(6, subject="b", minute=29),
            m(7, subject="a", minute=28),
            m(8, subject="b", minute=27),
        ],
        "(4 (2)(8)(6))(3 (1)(7)(5))",
    ),
    ("equal dates keep mailbox order; empty subjects are one thread too", [m(1), m(2, subject="x"), m(3)], "(1 3)(2)"),
]


@pytest.mark.parametrize(("case", "messages", "expected"), ORDERED, ids=[c[0] for c in ORDERED])
def test_orderedsubject_algorithm(case: str, messages: list[ThreadMessage], expected: str) -> None:
    """RFC 5256 §4 ORDEREDSUBJECT."""
    assert render(ordered_subject([*messages])) == expected


def test_parents_come_from_references_else_in_reply_to() -> None:
    """RFC 5256 §4 REFERENCES step 1.A: References when it has an ID, else the first of In-Reply-To."""
    both = mime.parse(b"Message-ID: <me@x>\r\nReferences: <a@x> <b@x>\r\nIn-Reply-To: <c@x> <d@x>\r\n\r\n")
    assert thread_ids(both) == ("me@x", ["a@x", "b@x"])
    reply = mime.parse(b"Message-Id: <me@x>\r\nReferences: garbage\r\nIn-Reply-To: <c@x> <d@x>\r\n\r\n")
    assert thread_ids(reply) == ("me@x", ["c@x"])
    assert thread_ids(mime.parse(b"Message-ID: not-an-id\r\n\r\n")) == (None, [])


# ---- over the wire -------------------------------------------------------------------------------
def _mail(mid: str, subject: str, date: str, refs: str = "") -> bytes:
    ref_line = f"References: {refs}\r\n" if refs else ""
    return (
        f"From: a@example.org\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{mid}>\r\n{ref_line}\r\nbody\r\n"
    ).encode()


MAILS = [
    _mail("root@x", "Plans", "Mon, 2 Nov 2026 09:00:00 +0000"),
    _mail("other@x", "=?utf-8?q?=C3=A9t=C3=A9?=", "Mon, 2 Nov 2026 09:30:00 +0000"),
    _mail("r1@x", "Re: Plans", "Mon, 2 Nov 2026 10:00:00 +0000", "<root@x>"),
    _mail("r2@x", "Re: Plans", "Mon, 2 Nov 2026 09:45:00 +0000", "<root@x>"),
    _mail("r3@x", "Re: Plans", "Mon, 2 Nov 2026 11:00:00 +0000", "<root@x> <r1@x>"),
    _mail("lost@x", "RE: ÉTÉ", "Mon, 2 Nov 2026 12:00:00 +0000", "<gone@x>"),
]


@pytest.fixture
def thread_box(imap):
    with selected_after_appends(imap, [(raw, None) for raw in MAILS]) as raw:
        yield raw


def test_thread_references_over_the_wire(thread_box) -> None:
    """RFC 5256 §3 THREAD REFERENCES: replies under their parents by sent date; a reply whose parent is
    missing joins the thread of its (decoded, case-blind) base subject."""
    lines = thread_box.command("t THREAD REFERENCES UTF-8 ALL")
    assert lines == [b"* THREAD (1 (4)(3 5))(2 6)\r\n", b"t OK THREAD completed\r\n"]


def test_thread_orderedsubject_over_the_wire(thread_box) -> None:
    """RFC 5256 §3 THREAD ORDEREDSUBJECT: grouped by base subject only."""
    assert thread_box.command("t THREAD ORDEREDSUBJECT US-ASCII ALL")[0] == b"* THREAD (1 (4)(3)(5))(2 6)\r\n"


def test_uid_thread_and_search_criteria(thread_box) -> None:
    """RFC 5256 §3: UID THREAD answers UIDs; the search criteria choose the messages threaded."""
    assert thread_box.command("x STORE 2 +FLAGS (\\Deleted)")[-1].startswith(b"x OK")
    assert thread_box.command("y EXPUNGE")[-1].startswith(b"y OK")
    assert thread_box.command("t1 THREAD REFERENCES UTF-8 ALL")[0] == b"* THREAD (1 (3)(2 4))(5)\r\n"
    assert thread_box.command("t2 UID THREAD REFERENCES UTF-8 ALL")[0] == b"* THREAD (1 (4)(3 5))(6)\r\n"
    assert thread_box.command("t3 THREAD REFERENCES UTF-8 NOT SUBJECT plans")[0] == b"* THREAD (5)\r\n"
    assert thread_box.command("t4 THREAD REFERENCES UTF-8 SUBJECT nothing")[0] == b"* THREAD\r\n"


def test_thread_bad_input(thread_box) -> None:
    """RFC 5256 §3: BAD for an unknown algorithm or bad syntax; NO [BADCHARSET] for an unknown charset."""
    assert thread_box.command("b1 THREAD TOPICS UTF-8 ALL")[-1].startswith(b"b1 BAD")
    assert thread_box.command("b2 THREAD REFERENCES ALL")[-1].startswith(b"b2 BAD")
    assert thread_box.command("b3 THREAD REFERENCES X-UNKNOWN ALL")[-1] == (
        b"b3 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
    )
    assert thread_box.command("b4 THREAD REFERENCES UTF-8 ALL")[-1].startswith(b"b4 OK")
