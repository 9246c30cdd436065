"""The MIME tree with byte offsets (RFC 2045, RFC 2046, RFC 5322), its limits and its JSON form."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sealmail import mime
from sealmail.mime import Part

_spec = importlib.util.spec_from_file_location(
    "mime_corpus", Path(__file__).resolve().parents[1] / "data" / "mime" / "corpus.py"
)
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)
CORPUS = corpus.load()


def parsed(name: str) -> tuple[bytes, mime.ParsedMessage]:
    raw = CORPUS[name]
    return raw, mime.parse(raw)


def shape(part: Part) -> object:
    """type/subtype with children or encapsulated message, for compact structure assertions."""
    if part.children:
        return (part.media_type, [shape(c) for c in part.children])
    if part.message is not None:
        return (part.media_type, shape(part.message))
    return part.media_type


def body(raw: bytes, part: Part) -> bytes:
    return raw[part.body_start : part.body_end]


def header(raw: bytes, part: Part) -> bytes:
    return raw[part.header_start : part.header_end]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_corpus_message_round_trips_through_json(name: str) -> None:
    msg = mime.parse(CORPUS[name])
    again = mime.ParsedMessage.from_json(msg.to_json())
    assert again == msg
    assert again.to_json() == msg.to_json()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_offsets_nest_and_stay_inside_the_message(name: str) -> None:
    raw, msg = parsed(name)
    assert msg.size == len(raw)

    def check(part: Part, lo: int, hi: int) -> None:
        assert lo <= part.header_start <= part.header_end == part.body_start <= part.body_end <= hi
        previous = part.body_start
        for child in part.children:
            assert child.header_start >= previous  # children in order, not overlapping
            check(child, part.body_start, part.body_end)
            previous = child.body_end
        if part.message is not None:
            assert (part.message.header_start, part.message.body_end) == (part.body_start, part.body_end)
            check(part.message, part.body_start, part.body_end)

    check(msg.root, 0, len(raw))


def test_simple_text_message_rfc5322() -> None:
    raw, msg = parsed("simple-text.eml")
    root = msg.root
    assert (root.type, root.subtype, root.encoding) == ("text", "plain", "7bit")
    assert root.params == (("charset", "us-ascii"), ("format", "flowed"))
    assert header(raw, root).endswith(b"Content-Transfer-Encoding: 7bit\r\n\r\n")
    assert body(raw, root).startswith(b"Hi Bob,\r\n")
    assert body(raw, root).endswith(b"Alice\r\n")
    assert root.lines == body(raw, root).count(b"\n") == 6
    assert msg.limits == ()


def test_multipart_alternative_rfc2046_5_1_4() -> None:
    raw, msg = parsed("alternative.eml")
    assert shape(msg.root) == ("multipart/alternative", ["text/plain", "text/html"])
    plain, html = msg.root.children
    # RFC 2046 §5.1.1: the CRLF before a delimiter belongs to the delimiter
    assert body(raw, plain).endswith(b" broken.\r\n")
    assert raw[plain.body_end : plain.body_end + 14] == b"\r\n--=_alt_001\r"
    assert (
        header(raw, html)
        == b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    )
    assert html.encoding == "quoted-printable"


def test_mixed_with_related_and_attachments() -> None:
    raw, msg = parsed("mixed-attachments.eml")
    assert shape(msg.root) == (
        "multipart/mixed",
        [("multipart/related", ["text/html", "image/png"]), "application/pdf", "text/csv"],
    )
    related, pdf, csv = msg.root.children
    png = related.children[1]
    assert png.id == "<chart@example.org>"
    assert (png.disposition, png.filename) == ("inline", "chart.png")
    assert pdf.description == "Q3 report"
    assert pdf.disposition_params == (("filename", "Q3 report.pdf"), ("size", "6016"))
    assert csv.filename == "figures.csv"
    assert body(raw, csv) == b"region,total\r\nnorth,12\r\nsouth,7\r\n"
    # the preamble is no part of anything
    assert b"multi-part message" not in b"".join(header(raw, c) + body(raw, c) for c in msg.root.children)


def test_nested_message_rfc822_rfc2046_5_2_1() -> None:
    raw, msg = parsed("nested-rfc822.eml")
    assert shape(msg.root) == (
        "multipart/mixed",
        [
            "text/plain",
            ("message/rfc822", ("multipart/alternative", ["text/plain", "text/html"])),
            ("message/rfc822", "text/plain"),
        ],
    )
    forwarded = msg.root.children[1]
    assert forwarded.envelope.subject == "Meeting notes"
    assert forwarded.envelope.sender[0].name == "Assistant"
    assert body(raw, forwarded).startswith(b"Date: Wed, 4 Sep 2024 17:00:00 +0000\r\n")
    assert body(raw, forwarded).endswith(b"--inner--\r\n")
    assert forwarded.lines == body(raw, forwarded).count(b"\n")
    assert msg.envelope.in_reply_to == "<notes-0@example.org>"


def test_digest_children_default_to_message_rfc822_rfc2046_5_1_5() -> None:
    _, msg = parsed("digest.eml")
    digest = msg.root.children[1]
    assert shape(digest) == (
        "multipart/digest",
        [("message/rfc822", "text/plain"), ("message/rfc822", "text/plain"), "text/plain"],
    )
    assert [c.envelope.subject for c in digest.children[:2]] == ["Hello", "Re: Hello"]
    assert digest.children[1].message.params == (("charset", "utf-8"),)


def test_rfc2231_continuations_and_charsets() -> None:
    _, msg = parsed("rfc2231.eml")
    stuff, euro, long_name, outlook = msg.root.children
    assert stuff.param("title") == "This is even more ***fun*** isn't it!"
    assert stuff.params == (("title*", "us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn%27t%20it!"),)
    assert euro.params == (("charset", "utf-8"), ("name*", "utf-8''%E2%82%AC%20rates.txt"))
    assert euro.param("name") == euro.filename == "€ rates.txt"
    assert euro.disposition_params == (("filename*", "utf-8''%E2%82%AC%20rates.txt"),)
    assert long_name.params == (("name", "very long file name that goes on and on.bin"),)
    assert long_name.filename == "very long file name that goes on and on.bin"
    # RFC 2047 words inside a quoted parameter are not standard, but common (Outlook): decoded for people only
    assert outlook.params == (("name", "=?utf-8?B?0YTQsNC50LsudHh0?="),)
    assert outlook.filename == "файл.txt"


def test_parameter_names_are_case_insensitive_when_merging() -> None:
    raw = b"Content-Type: text/plain; NAME*1=b; name*0=a; Charset=UTF-8\r\n\r\nx"
    part = mime.parse(raw).root
    assert part.params == (("Charset", "UTF-8"), ("name", "ab"))
    assert part.param("charset") == "UTF-8"


def test_missing_content_type_is_text_plain_us_ascii_rfc2045_5_2() -> None:
    _, msg = parsed("missing-headers.eml")
    assert (msg.root.type, msg.root.subtype, msg.root.params) == ("text", "plain", ())
    assert mime.bodystructure(msg)[:3] == ["text", "plain", ["charset", "us-ascii"]]


def test_invalid_content_type_is_text_plain_rfc2045_5_2() -> None:
    _, msg = parsed("invalid-content-type.eml")
    assert (msg.root.type, msg.root.subtype) == ("text", "plain")


def test_bare_lf_gives_the_same_tree_as_crlf() -> None:
    raw, lf = parsed("bare-lf.eml")
    crlf = mime.parse(mime.canonical_line_ends(raw))
    assert shape(lf.root) == shape(crlf.root) == ("multipart/mixed", ["text/plain", "text/plain"])
    assert [body(raw, c) for c in lf.root.children] == [b"line one\nline two", b"attached"]
    assert lf.root.children[1].filename == crlf.root.children[1].filename == "notes.txt"
    assert lf.envelope == crlf.envelope


def test_canonical_line_ends() -> None:
    assert mime.canonical_line_ends(b"a\nb\r\nc\rd\n") == b"a\r\nb\r\nc\rd\r\n"
    assert mime.canonical_line_ends(b"no newline") == b"no newline"


def test_no_header_body_separator_means_all_header() -> None:
    raw, msg = parsed("no-separator.eml")
    assert (msg.root.header_end, msg.root.body_end) == (len(raw), len(raw))
    assert msg.envelope.subject == "headers only, no blank line"
    assert [h.name for h in msg.headers] == ["From", "Subject", "X-Last"]


def test_missing_close_delimiter_ends_parts_at_the_end() -> None:
    raw, msg = parsed("missing-end-boundary.eml")
    first, second = msg.root.children
    assert body(raw, first) == b"first\r\n"
    assert body(raw, second) == b"<p>second, and the message just stops\r\n"
    assert msg.root.body_end == len(raw)


def test_preamble_and_epilogue_are_skipped_rfc2046_5_1_1() -> None:
    raw, msg = parsed("preamble-epilogue.eml")
    implicit, explicit = msg.root.children
    assert header(raw, implicit) == b"\r\n"
    assert body(raw, implicit) == b"This is implicitly typed plain US-ASCII text.\r\nIt does NOT end with a linebreak."
    assert body(raw, explicit).endswith(b"It DOES end with a linebreak.\r\n")
    assert msg.root.body_end == len(raw)  # the multipart's body runs through its epilogue


def test_boundary_prefixes_longest_match_wins() -> None:
    raw, msg = parsed("boundary-prefix.eml")
    alternative, last = msg.root.children
    assert [body(raw, c) for c in alternative.children] == [b"inner one", b"inner two"]
    assert body(raw, last) == b"trailing whitespace after the delimiter is transport padding"


def test_outer_delimiter_closes_unterminated_inner_multipart() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\n"
        b"Content-Type: multipart/alternative; boundary=in\r\n\r\n--in\r\n\r\ninner\r\n"
        b"--out\r\n\r\nsecond\r\n--out--\r\n"
    )
    msg = mime.parse(raw)
    inner, second = msg.root.children
    assert body(raw, inner.children[0]) == b"inner"
    assert body(raw, second) == b"second"


def test_multipart_without_boundary_or_delimiters_has_no_children() -> None:
    for name in ("empty-multipart.eml", "no-boundary-param.eml"):
        _, msg = parsed(name)
        assert msg.root.is_multipart
        assert msg.root.children == ()
        # RFC 9051 needs 1*body: one empty text/plain, as Dovecot answers
        assert mime.body(msg)[0] == ["text", "plain", ["charset", "us-ascii"], None, None, "7bit", 0, 0]


def test_header_cut_short_by_a_delimiter() -> None:
    raw, msg = parsed("header-edge-cases.eml")
    no_header, cut, blank_then_delimiter, message = msg.root.children
    assert header(raw, no_header) == b"\r\n"
    assert header(raw, cut) == b"Content-Type: text/plain"
    assert cut.size == 0
    # the blank line's CRLF is the delimiter's (RFC 2046 §5.1.1), as Dovecot serves BODY[3.MIME]
    assert header(raw, blank_then_delimiter) == b"Content-Type: text/plain\r\n"
    assert header(raw, message.message) == b"Subject: inner without body separator"
    assert message.envelope.subject == "inner without body separator"


def test_8bit_utf8_headers_rfc6532() -> None:
    _, msg = parsed("utf8-headers.eml")
    env = msg.envelope
    assert env.subject == "Réunion demain — 会议"
    assert env.from_[0] == mime.Address("Rémi Dupont", None, "rémi", "universitéxyz.fr")
    assert env.to[1] == mime.Address("李雷", None, "lilei", "例子.测试")
    assert msg.root.children[1].filename == "compte-rendu été.txt"


def test_message_global_is_encapsulated_rfc6532_3_7() -> None:
    _, msg = parsed("message-global.eml")
    part = msg.root.children[1]
    assert part.media_type == "message/global"
    assert part.is_message
    assert part.envelope.from_[0].mailbox == "zoë"


def test_non_utf8_header_octets_survive_exactly() -> None:
    raw = b'Subject: caf\xe9 \xff\r\nContent-Type: text/plain; name="\xe9t\xe9"\r\n\r\nx'
    msg = mime.parse(raw)
    assert msg.envelope.subject.encode("utf-8", "surrogateescape") == b"caf\xe9 \xff"
    assert mime.envelope_value(msg)[1] == b"caf\xe9 \xff"  # bytes: not UTF-8, the IMAP layer sends a literal
    assert mime.bodystructure(msg)[2] == ["name", b"\xe9t\xe9", "charset", "us-ascii"]
    assert mime.ParsedMessage.from_json(msg.to_json()) == msg


def test_deep_nesting_within_the_limit() -> None:
    _, msg = parsed("gen-deep-multipart-40")
    depth, part = 0, msg.root
    while part.children:
        part, depth = part.children[0], depth + 1
    assert depth == 41
    assert part.media_type == "text/plain"


def test_nesting_beyond_the_limit_becomes_opaque() -> None:
    raw = corpus.deep_multipart(mime.MAX_DEPTH + 20)
    msg = mime.parse(raw)
    assert msg.limits == ("depth",)
    depth, part = 0, msg.root
    while part.children:
        part, depth = part.children[0], depth + 1
    assert depth == mime.MAX_DEPTH
    assert part.opaque
    assert part.media_type == "application/octet-stream"
    # the opaque part ends where its parent's delimiter says: the outer structure is intact
    assert raw[part.body_end : part.body_end + 8] == b"\r\n--b%03d" % (mime.MAX_DEPTH - 1)
    assert msg.root.body_end == len(raw)


def test_message_rfc822_nesting_beyond_the_limit() -> None:
    msg = mime.parse(corpus.deep_rfc822(mime.MAX_DEPTH + 10))
    assert msg.limits == ("depth",)
    chain = 0
    part = msg.root
    while part.message is not None:
        part, chain = part.message, chain + 1
    assert chain == mime.MAX_DEPTH
    assert part.opaque


def test_parts_beyond_the_limit_become_one_opaque_part() -> None:
    raw = corpus.many_parts(mime.MAX_PARTS + 50)
    msg = mime.parse(raw)
    assert msg.limits == ("parts",)
    children = msg.root.children
    assert len(children) == mime.MAX_PARTS  # the root and 9,999 parts, then the opaque rest
    rest = children[-1]
    assert rest.opaque
    assert body(raw, rest).startswith(b"Content-Type: text/plain\r\n\r\npart 9999\r\n--m\r\n")
    assert body(raw, rest).endswith(b"part %d" % (mime.MAX_PARTS + 49))
    assert sum(1 for _ in msg.root.walk()) == mime.MAX_PARTS + 1


def test_huge_header_within_the_field_limit() -> None:
    _, msg = parsed("gen-huge-header")
    assert msg.envelope.subject == "huge header"
    assert msg.root.params == (("charset", "utf-8"),)
    assert msg.limits == ()


def test_header_beyond_the_field_limit_is_kept_but_not_read() -> None:
    raw = corpus.huge_header(mime.MAX_HEADER_BYTES + 10_000)
    msg = mime.parse(raw)
    assert msg.limits == ("header",)
    assert msg.envelope.subject is None  # it sits after the limit
    assert raw[msg.root.body_start :] == b"body\r\n"  # offsets are still exact


def test_garbage_gets_a_structure() -> None:
    raw, msg = parsed("garbage.bin")
    assert msg.root.body_end == len(raw)
    assert mime.bodystructure(msg)[0] == "text"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n",
        b"\n",
        b"-",
        b"--",
        b"\r\n--",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x",
        b"\x00" * 10,
    ],
)
def test_degenerate_inputs(raw: bytes) -> None:
    msg = mime.parse(raw)
    assert msg.size == len(raw)
    assert msg.root.body_end <= len(raw)
    assert mime.ParsedMessage.from_json(msg.to_json()) == msg


def test_from_json_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="format"):
        mime.ParsedMessage.from_json('{"v": 99}')


def test_json_form_is_compact_and_versioned() -> None:
    _, msg = parsed("simple-text.eml")
    data = msg.to_json()
    assert data.startswith('{"v":1,"size":551,"root":{"hs":0,"he":491,"bs":491,"be":551,"t":["text","plain"]')
