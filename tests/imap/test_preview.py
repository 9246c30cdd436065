"""PREVIEW (RFC 8970) over real sockets: FETCH PREVIEW and PREVIEW (LAZY).

The preview is made from the decrypted message the first time it is asked for and kept inside the
encrypted mailbox file; the table below pins what it says for the usual kinds of message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .conftest import RawClient

ALTERNATIVE = (
    b"Subject: alt\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=X\r\n\r\n"
    b"--X\r\nContent-Type: text/html\r\n\r\n<p>The <b>HTML</b> one</p>\r\n"
    b"--X\r\nContent-Type: text/plain\r\n\r\nThe plain one\r\n--X--\r\n"
)
HTML = (
    b"Subject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<html><head><style>p {color: red}</style><script>alert(1)</script></head>"
    b"<body><p>Hi <b>there</b> &amp; welcome</p><!-- hidden --></body></html>\r\n"
)
LATIN1 = (
    b"Subject: qp\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n"
    b"\r\nCaf=E9 cr=E8me,\r\n  tr=E8s   bien.\r\n"
)
REPLY = (
    b"Subject: re\r\n\r\nSounds good.\r\n\r\nOn Monday someone wrote:\r\n> the old\r\n> text\r\n  >  more\r\nBye\r\n"
)
ATTACHED_TEXT = (
    b"Subject: att\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=Y\r\n\r\n"
    b"--Y\r\nContent-Type: text/plain; name=notes.txt\r\nContent-Disposition: attachment\r\n\r\nnot this\r\n"
    b"--Y\r\nContent-Type: text/plain\r\n\r\nbut this\r\n--Y--\r\n"
)
CASES = [
    # message, the PREVIEW for a client without UTF8=ACCEPT
    (b"Subject: s\r\n\r\nHello   world,\r\n\r\n  this is\ta test.\r\n", b'"Hello world, this is a test."'),
    (ALTERNATIVE, b'"The plain one"'),  # text/plain preferred
    (HTML, b'"Hi there & welcome"'),  # HTML stripped to its visible text
    (LATIN1, b"{25}\r\nCaf\xc3\xa9 cr\xc3\xa8me, tr\xc3\xa8s bien."),  # decoded to UTF-8: a literal for rev1
    (REPLY, b'"Sounds good. On Monday someone wrote: Bye"'),  # quoted lines left out
    (ATTACHED_TEXT, b'"but this"'),
    (b"Subject: img\r\nContent-Type: image/png\r\n\r\niVBORw0KGgo=\r\n", b'""'),  # no text: empty, not NIL
    (b"Subject: long\r\n\r\n" + b"word " * 100 + b"\r\n", b'"' + b" ".join([b"word"] * 40) + b'"'),  # 199 chars
]


@pytest.fixture
def raw(imap) -> Iterator[RawClient]:
    client = imap.raw()
    client.login(imap.account())
    for msg, _ in CASES:
        assert client.command(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg)[-1].startswith(b"a OK")
    client.command("s SELECT INBOX")
    try:
        yield client
    finally:
        client.close()


def _previews(lines: list[bytes]) -> list[bytes]:
    return [line.split(b"PREVIEW ", 1)[1].rsplit(b")", 1)[0] for line in lines if b"PREVIEW " in line]


def test_preview_of_each_kind_of_message(raw: RawClient) -> None:
    """RFC 8970 §3: PREVIEW is text made from the message, at most 256 characters (here 200), in UTF-8;
    an empty string when the message has nothing to show. The capability is advertised (§2)."""
    assert b" PREVIEW" in raw.command("c CAPABILITY")[0]
    lines = raw.command("f FETCH 1:* (PREVIEW)")
    assert lines[-1] == b"f OK FETCH completed\r\n"
    assert _previews(lines) == [want for _, want in CASES]


def test_lazy_gives_nil_until_made_then_the_same_text(raw: RawClient) -> None:
    """RFC 8970 §3.1: with LAZY the server may answer NIL for a preview it has not made yet; one made before
    (by a FETCH PREVIEW without LAZY) comes back as it was."""
    assert _previews(raw.command("f FETCH 1:2 (PREVIEW (LAZY))")) == [b"NIL", b"NIL"]
    assert _previews(raw.command("g FETCH 2 PREVIEW")) == [CASES[1][1]]
    assert _previews(raw.command("h FETCH 1:2 (UID PREVIEW (LAZY))")) == [b"NIL", CASES[1][1]]
    assert _previews(raw.command("i FETCH 1:2 PREVIEW (LAZY)")) == [b"NIL", CASES[1][1]]


def test_preview_does_not_set_seen_and_utf8_clients_get_quoted_text(raw: RawClient) -> None:
    """RFC 8970 §3: fetching a preview is not reading the message (no \\Seen); after ENABLE UTF8=ACCEPT
    (RFC 6855 §4) the UTF-8 text travels as a quoted string."""
    raw.command("f FETCH 1:* (PREVIEW)")
    assert all(b"\\Seen" not in line for line in raw.command("g FETCH 1:* (FLAGS)"))
    raw.command("u ENABLE UTF8=ACCEPT")
    assert _previews(raw.command("h FETCH 4 (PREVIEW)")) == ['"Café crème, très bien."'.encode()]


@pytest.mark.parametrize("command", ["FETCH 1 (PREVIEW (FOO))", "FETCH 1 PREVIEW (LAZY FOO)", "FETCH 1 (PREVIEW ())"])
def test_unknown_preview_modifier_is_bad(raw: RawClient, command: str) -> None:
    """RFC 8970 §6: preview-mod is LAZY; anything else is a syntax error, and the session goes on."""
    assert raw.command("b " + command)[-1].startswith(b"b BAD")
    assert raw.command("n NOOP")[-1] == b"n OK NOOP completed\r\n"


def test_preview_goes_with_changedsince(raw: RawClient) -> None:
    """A PREVIEW without modifiers followed by FETCH's own modifier list (RFC 7162 CHANGEDSINCE) parses."""
    lines = raw.command("f FETCH 1 PREVIEW (CHANGEDSINCE 1)")
    assert lines[-1] == b"f OK FETCH completed\r\n"
    fetched = [line for line in lines if line.startswith(b"* 1 FETCH")]
    assert len(fetched) == 1
    assert re.match(rb"\* 1 FETCH \(PREVIEW \"Hello world, this is a test.\" MODSEQ \(\d+\)\)", fetched[0])
