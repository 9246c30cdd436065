"""Search helpers: RFC 2047 decoded headers, the sent date, decoded body text, attachment ranges."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
from pathlib import Path

import pytest

from sealmail import mime

_spec = importlib.util.spec_from_file_location(
    "mime_corpus", Path(__file__).resolve().parents[1] / "data" / "mime" / "corpus.py"
)
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)
CORPUS = corpus.load()
UTC = dt.UTC


def parsed(name: str) -> tuple[bytes, mime.ParsedMessage]:
    return CORPUS[name], mime.parse(CORPUS[name])


def test_encoded_words_in_several_charsets_rfc2047() -> None:
    _, msg = parsed("encoded-words.eml")
    headers = mime.search_headers(msg)
    # adjacent encoded-words join without the space between them (RFC 2047 §6.2); unknown charsets fall back
    assert headers["subject"] == "Café müsli and żaba plus 日本語ok"
    assert headers["from"] == "André Pirard <PIRARD@vm1.ulg.ac.be>"
    assert headers["to"] == "Клавдия <klava@example.ru>, Привет <privet@example.ru>"
    assert headers["cc"] == "François “Fran” <f@example.fr>"
    assert "bcc" not in headers
    assert msg.root.description == "=?utf-8?q?d=C3=A9tails?="  # raw for IMAP


def test_address_fields_are_indexed_with_the_addresses_they_denote() -> None:
    """RFC 9051 §6.4.4 FROM/TO...: the text as written, then each address it denotes that the text hides
    (comments inside the address, group syntax); nothing is repeated that the text already shows."""
    msg = mime.parse(
        b"From: <user-from (comment)@ (comment) domain.org>\r\n"
        b"To: team: a@x.org, =?utf-8?q?B=C3=A9a?= <b@x.org>;\r\n\r\n"
    )
    headers = mime.search_headers(msg)
    assert headers["from"] == "<user-from (comment)@ (comment) domain.org>\nuser-from@domain.org"
    assert headers["to"] == "team: a@x.org, Béa <b@x.org>;"  # the group and both addresses show already


def test_header_field_gives_every_occurrence_unfolded() -> None:
    raw = b"Received: a\r\n b\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nreceived: c\r\n\r\n"
    msg = mime.parse(raw)
    assert msg.header_field("RECEIVED") == [mime.HeaderValue("a b", "a b"), mime.HeaderValue("c", "c")]
    assert msg.header_field("subject") == [mime.HeaderValue("=?utf-8?q?caf=C3=A9?=", "café")]
    assert msg.header_field("x-none") == []
    assert mime.decoded_header(msg, "received") == "a b, c"
    assert mime.decoded_header(msg, "x-none") is None


def test_utf8_and_latin1_header_octets_are_decoded() -> None:
    raw = "Subject: Réunion\r\nX-Latin: ".encode() + b"caf\xe9\r\n\r\n"
    msg = mime.parse(raw)
    assert mime.decoded_header(msg, "subject") == "Réunion"
    assert mime.decoded_header(msg, "x-latin") == "café"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 02 Sep 2024 10:11:12 +0200", dt.datetime(2024, 9, 2, 8, 11, 12, tzinfo=UTC)),
        ("2 Sep 2024 10:11 +0200", dt.datetime(2024, 9, 2, 8, 11, tzinfo=UTC)),  # no weekday, no seconds
        (
            "Thu,\r\n 13\r\n Feb\r\n 1969\r\n 23:32\r\n -0330 (Newfoundland Time)",
            dt.datetime(1969, 2, 14, 3, 2, tzinfo=UTC),
        ),
        ("Mon, 7 Feb 94 21:52 EST", dt.datetime(1994, 2, 8, 2, 52, tzinfo=UTC)),  # two-digit year, named zone
        ("Tue, 3 Sep 2024 08:00:00 -0000", dt.datetime(2024, 9, 3, 8, 0, tzinfo=UTC)),  # RFC 5322 §3.3: -0000
        ("Fri, 6 Sep 2024 06:00:00", dt.datetime(2024, 9, 6, 6, 0, tzinfo=UTC)),  # no zone
        ("Mittwoch, 4 Sep 2024 12:00:00 +0000", dt.datetime(2024, 9, 4, 12, 0, tzinfo=UTC)),
        ("2024-01-02T03:04:05Z", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("garbage", None),
        ("Mon, 32 Feb 1994 21:52:25 -0800", None),
        ("", None),
        (None, None),
        ("9" * 500, None),
    ],
)
def test_parse_date_rfc5322_3_3(value, expected) -> None:
    assert mime.parse_date(value) == expected


def test_sent_date_comes_from_the_date_header() -> None:
    _, msg = parsed("simple-text.eml")
    assert mime.sent_date(msg) == dt.datetime(2024, 9, 2, 8, 11, 12, tzinfo=UTC)
    _, missing = parsed("missing-headers.eml")
    assert mime.sent_date(missing) is None


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("Sun, 25 Mar 2007 00:00:00 +0200", dt.date(2007, 3, 25)),  # 24 Mar in UTC: the written date counts
        ("Mon, 26 Mar 2007 00:00:00 +0300", dt.date(2007, 3, 26)),
        ("Sun, 28 Oct 2007 23:00:00 -1100", dt.date(2007, 10, 28)),  # 29 Oct in UTC
        ("Fri, 6 Sep 2024 06:00:00", dt.date(2024, 9, 6)),  # no zone
        ("garbage", None),
    ],
)
def test_sent_day_is_the_date_as_written(value, day) -> None:
    """RFC 9051 §6.4.4 SENTON etc.: the Date: header's date "disregarding time and timezone"."""
    msg = mime.parse(f"Date: {value}\r\n\r\nx\r\n".encode())
    assert mime.sent_day(msg) == day


def test_search_text_decodes_and_strips_html() -> None:
    raw, msg = parsed("alternative.eml")
    text = mime.search_text(raw, msg)
    assert "Café crème brûlée is on its way." in text  # quoted-printable, UTF-8
    assert "Your order has shipped . Estimated delivery: 5 Sep – 7 Sep." in text  # HTML, entities decoded
    assert "do not index" not in text  # script
    assert "color: red" not in text  # style
    assert "hidden comment" not in text
    assert "<p>" not in text


def test_search_text_uses_declared_charsets_and_lists_filenames() -> None:
    raw, msg = parsed("mixed-attachments.eml")
    text = mime.search_text(raw, msg)
    assert "Résumé attached" in text  # iso-8859-1, 8bit
    assert "north,12" not in text  # text/csv: only text/plain and text/html are indexed, and every file name
    assert text.endswith("chart.png\nQ3 report.pdf\nfigures.csv")


def test_search_text_of_koi8_and_rfc2231_names() -> None:
    raw, msg = parsed("encoded-words.eml")
    assert mime.search_text(raw, msg) == "Привет, мир"
    raw, msg = parsed("rfc2231.eml")
    assert "€ rates.txt" in mime.search_text(raw, msg)
    assert "файл.txt" in mime.search_text(raw, msg)


def test_search_text_includes_forwarded_messages() -> None:
    raw, msg = parsed("nested-rfc822.eml")
    text = mime.search_text(raw, msg)
    assert "budget approved — ship in Q4." in text
    assert "Just text." in text


def test_search_text_is_capped() -> None:
    raw = b"Content-Type: text/plain\r\n\r\n" + b"word " * 100_000
    text = mime.search_text(raw, mime.parse(raw), limit=1000)
    assert len(text) == 1000


def test_search_text_survives_unknown_charsets_and_encodings() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nna\xc3\xafve\r\n"
        b"--b\r\nContent-Type: text/plain; charset=unicode_escape\r\n\r\n\\N{BULLET}\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n"
        b"--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\ncaf\xe9\r\n--b--\r\n"
    )
    assert mime.search_text(raw, mime.parse(raw)).split("\n") == ["naïve", "\\N{BULLET}", "begin", "café"]


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>a</p><p>b</p>", "\na\n\nb\n"),
        ("x < y &amp;&amp; y > z", "x < y && y > z"),
        ("<SCRIPT type=x>alert(1)</script >after", " after"),
        ("<style>p{}</STYLE>shown", " shown"),
        ("a<!-- never closed", "a"),
        ("a<b unterminated", "a"),
        ("a<script>never closed", "a "),
        ("<!DOCTYPE html>x<?xml y?>", " x "),
        ("caf&eacute; &#x263A; &#9731;", "café ☺ ☃"),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert mime.html_to_text(markup) == text


@pytest.mark.timeout(20)
@pytest.mark.parametrize("unit", ["<a ", "<!--", "<![", "</", "<script>", "&#", "<"])
def test_html_to_text_is_linear_on_hostile_markup(unit: str) -> None:
    """html.parser.HTMLParser takes minutes on 60 kB of '<a ': this must not."""
    mime.html_to_text(unit * 500_000)


def test_attachments_are_leaves_worth_deduplicating() -> None:
    raw, msg = parsed("mixed-attachments.eml")
    found = mime.attachments(msg)
    assert [(a.section, a.media_type, a.filename, a.encoding) for a in found] == [
        ("1.2", "image/png", "chart.png", "base64"),
        ("2", "application/pdf", "Q3 report.pdf", "base64"),
    ]
    for a in found:
        assert a.end - a.start >= mime.ATTACHMENT_MIN_SIZE
        assert raw[a.start : a.end] == mime.section_bytes(raw, msg, a.section)


def test_text_attachments_count_when_disposition_says_so() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nshort\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=log.txt\r\n\r\n"
        + b"log line\r\n" * 1000
        + b"--b--\r\n"
    )
    found = mime.attachments(mime.parse(raw))
    assert [(a.section, a.filename) for a in found] == [("2", "log.txt")]
    assert mime.attachments(mime.parse(raw), min_size=10**9) == []


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_attachment_ranges_splice_back_byte_identical(name: str) -> None:
    """The store cuts ranges out, keeps them by SHA-256, and puts them back: the message must not change."""
    raw = CORPUS[name]
    msg = mime.parse(raw)
    ranges = mime.attachments(msg, min_size=1)
    blobs: dict[str, bytes] = {}
    skeleton: list[bytes | str] = []
    pos = 0
    for a in ranges:
        assert a.start >= pos  # sorted, not overlapping
        skeleton.append(raw[pos : a.start])
        digest = hashlib.sha256(raw[a.start : a.end]).hexdigest()
        blobs[digest] = raw[a.start : a.end]
        skeleton.append(digest)
        pos = a.end
    skeleton.append(raw[pos:])
    rebuilt = b"".join(blobs[piece] if isinstance(piece, str) else piece for piece in skeleton)
    assert rebuilt == raw
