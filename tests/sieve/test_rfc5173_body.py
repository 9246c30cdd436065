"""RFC 5173 body: :raw, :content and :text on real MIME, and a broken message that must not raise."""

from __future__ import annotations

import pytest

from sievekit import run, summary

MIME = b"""From: Wile E. Coyote <coyote@desert.example.org>\r
To: me@example.com\r
Subject: plans\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary="b1"\r
\r
This is the prologue.\r
--b1\r
Content-Type: text/plain; charset=iso-8859-1\r
Content-Transfer-Encoding: quoted-printable\r
\r
The missile is ready. Caf=E9 at noon.\r
--b1\r
Content-Type: text/html; charset=utf-8\r
\r
<html><body><p>project <b>schedule</b></p><script>var hidden = "nothing";</script></body></html>\r
--b1\r
Content-Type: audio/mp3\r
Content-Transfer-Encoding: base64\r
\r
SUQzBAAAAAAAI1RTU0UAAAAPAAADTGF2ZjU4LjI5LjEwMAAAAAAAAAAAAAAA\r
--b1--\r
The epilogue.\r
"""

CASES = [
    # RFC 5173 §5.2's examples
    ('if body :content "text" :contains ["missile", "coordinates"] { fileinto "secrets"; }', "fileinto:secrets"),
    ('if body :content "audio/mp3" :contains "" { fileinto "jukebox"; }', "fileinto:jukebox"),
    ('if body :content "audio/ogg" :contains "" { fileinto "jukebox"; }', "keep"),
    ('if body :content "text/plain" :contains "Café" { discard; }', "discard"),  # decoded, in its charset
    ('if body :content "multipart" :contains "prologue" { discard; }', "discard"),
    ('if body :content "text/plain" :contains "prologue" { discard; }', "keep"),
    # RFC 5173 §5.1: :raw is not decoded
    ('if body :raw :contains "Caf=E9" { discard; }', "discard"),
    ('if body :raw :contains "Café" { discard; }', "keep"),
    # RFC 5173 §5.3's example: :text reads text parts, HTML as text
    ('if body :text :contains "project schedule" { fileinto "project/schedule"; }', "fileinto:project/schedule"),
    ('if body :contains "missile" { discard; }', "discard"),  # :text is the default
    ('if body :text :contains "hidden" { discard; }', "keep"),  # no script text
    ('if body :text :contains "SUQzBAAA" { discard; }', "keep"),  # no audio
    ('if body :text :matches "*ready*" { discard; }', "discard"),
]


@pytest.mark.parametrize(("test", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rfc5173_body(test: str, expected: str) -> None:
    mailboxes = ("INBOX", "secrets", "jukebox", "project/schedule")
    assert summary(run(f'require ["body", "fileinto"];\n{test}', MIME, mailboxes=mailboxes)) == (expected,)


BROKEN = [
    pytest.param(
        b"Subject: x\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all\r\n", id="multipart without boundary"
    ),
    pytest.param(
        b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n",
        id="bad base64, no closing boundary",
    ),
    pytest.param(
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n\xff\xfe caf\xe9\r\n", id="unknown charset"
    ),
    pytest.param(b"\xff\xfe\x00garbage without a header\r\n", id="no header at all"),
    pytest.param(b"Subject: =?utf-8?b?!!!?=\r\nFrom: <<<@@@>>>\r\nDate: yesterday\r\n\r\nx", id="broken fields"),
    pytest.param(
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
        + b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" * 300
        + b"--a--\r\n",
        id="deep nesting",
    ),
    pytest.param(b"Content-Type: message/rfc822\r\n\r\n" * 3000 + b"x", id="thousands of nested messages"),
]


@pytest.mark.parametrize("raw", BROKEN)
def test_broken_mime_is_filtered_not_raised(raw: bytes) -> None:
    """A malformed message runs every test without an error, and is still kept."""
    script = """require ["body", "date", "envelope", "relational", "comparator-i;ascii-numeric"];
if anyof (body :text :contains "x", body :raw :contains "x", body :content "" :contains "x",
          header :contains "Subject" "x", address :all :contains "From" "x",
          date :value "gt" "Date" "year" "2000", exists "Received", size :over 1) { keep; }
"""
    outcome = run(script, raw)
    assert outcome.error is None
    assert summary(outcome) == ("keep",)
