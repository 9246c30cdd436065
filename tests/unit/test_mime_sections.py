"""BODY[section] (RFC 9051 §6.4.5) and BINARY[part] (RFC 3516) over the raw octets."""

from __future__ import annotations

import base64

import pytest

from sealmail import mime

NESTED = (
    b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
    b"--o\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
    b"--o\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
    b"--a\r\n\r\nplain\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--a--\r\n"
    b"--o\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\nFrom: x@example.org\r\nX-Extra: 1\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n"
    b"--i\r\n\r\ninner one\r\n--i\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"JVBERi0=\r\n--i--\r\n"
    b"--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: single\r\n\r\nsingle body\r\n"
    b"--o--\r\n"
)


@pytest.fixture(scope="module")
def nested() -> mime.ParsedMessage:
    return mime.parse(NESTED)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("", NESTED),
        ("HEADER", b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"),
        ("TEXT", NESTED[NESTED.index(b"--o\r\n") :]),
        ("1", b"first"),
        ("1.MIME", b"Content-Type: text/plain\r\n\r\n"),
        ("2.1", b"plain"),
        ("2.1.MIME", b"\r\n"),
        ("2.2", b"<p>html</p>"),
        ("3.HEADER.FIELDS (from subject)", b"Subject: inner\r\nFrom: x@example.org\r\n\r\n"),
        ("3.HEADER.FIELDS.NOT (Content-Type X-EXTRA)", b"Subject: inner\r\nFrom: x@example.org\r\n\r\n"),
        ('3.HEADER.FIELDS ("X-Extra")', b"X-Extra: 1\r\n\r\n"),
        ("3.HEADER.FIELDS (X-None)", b"\r\n"),
        ("3.1", b"inner one"),
        ("3.2", b"JVBERi0="),
        ("3.2.MIME", b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
        ("4", b"Subject: single\r\n\r\nsingle body"),
        ("4.HEADER", b"Subject: single\r\n\r\n"),
        ("4.TEXT", b"single body"),
        ("4.1", b"single body"),  # part 1 of a non-multipart message is its body
        ("4.1.MIME", b"Subject: single\r\n\r\n"),  # ... and its MIME header is the message header
        ("header.fields (subject)", b"Subject: outer\r\n\r\n"),  # keywords are case-insensitive
    ],
)
def test_sections_rfc9051_6_4_5(nested, section: str, expected: bytes) -> None:
    assert mime.section_bytes(NESTED, nested, section) == expected


def test_message_part_body_is_the_whole_encapsulated_message(nested) -> None:
    inner = mime.section_bytes(NESTED, nested, "3")
    assert inner.startswith(b"Subject: inner\r\n")
    assert inner.endswith(b"--i--\r\n")
    assert mime.section_bytes(NESTED, nested, "3.HEADER") + mime.section_bytes(NESTED, nested, "3.TEXT") == inner


@pytest.mark.parametrize("section", ["5", "1.1", "2.3", "1.HEADER", "2.TEXT", "3.3", "4.2", "4.1.1", "99.MIME"])
def test_missing_sections_are_none(nested, section: str) -> None:
    """RFC 9051 §6.4.5: HEADER/TEXT need a message/rfc822 part; a part that is not there is NIL/empty."""
    assert mime.section_bytes(NESTED, nested, section) is None


@pytest.mark.parametrize(
    "section", ["MIME", "0", "1.0", "01", "TEXT (a)", "HEADER.FIELDS", "HEADER.FIELDS ()", "1..2", "BOGUS"]
)
def test_invalid_section_syntax(nested, section: str) -> None:
    with pytest.raises(mime.InvalidSection):
        mime.section_bytes(NESTED, nested, section)


def test_parse_section() -> None:
    assert mime.parse_section('1.2.HEADER.FIELDS.NOT (A "B C")') == mime.Section(
        (1, 2), "HEADER.FIELDS.NOT", ("A", "B C")
    )
    assert mime.parse_section("") == mime.Section()


def test_single_part_message() -> None:
    raw = b"Subject: s\r\n\r\nbody\r\n"
    msg = mime.parse(raw)
    assert mime.section_bytes(raw, msg, "1") == mime.section_bytes(raw, msg, "TEXT") == b"body\r\n"
    assert mime.section_bytes(raw, msg, "1.MIME") == mime.section_bytes(raw, msg, "HEADER") == b"Subject: s\r\n\r\n"
    assert mime.section_bytes(raw, msg, "2") is None


def test_header_fields_keep_folding_and_order() -> None:
    raw = b"To: a@x\r\nSubject: one\r\n two\r\nto: b@x\r\n\r\nbody"
    msg = mime.parse(raw)
    assert mime.section_bytes(raw, msg, "HEADER.FIELDS (TO SUBJECT)") == raw[: raw.index(b"\r\n\r\n") + 4]
    assert mime.section_bytes(raw, msg, "HEADER.FIELDS (TO)") == b"To: a@x\r\nto: b@x\r\n\r\n"


def test_header_fields_without_a_blank_line_rfc9051_6_4_5() -> None:
    """No body and no blank line: the fields as written, no blank line added."""
    raw = b"From: a@x\r\nSubject: s"
    msg = mime.parse(raw)
    assert mime.section_bytes(raw, msg, "HEADER.FIELDS (SUBJECT)") == b"Subject: s"
    assert mime.section_bytes(raw, msg, "HEADER.FIELDS.NOT (SUBJECT)") == b"From: a@x\r\n"


def test_bare_lf_header_fields_end_with_a_bare_lf_blank_line() -> None:
    raw = b"From: a@x\nSubject: s\n\nbody\n"
    msg = mime.parse(raw)
    assert mime.section_bytes(raw, msg, "HEADER.FIELDS (FROM)") == b"From: a@x\n\n"


def test_every_section_lies_inside_the_message(nested) -> None:
    for number, _part in mime.numbered_parts(nested):
        for suffix in ("", ".MIME", ".HEADER", ".TEXT"):
            data = mime.section_bytes(NESTED, nested, number + suffix)
            assert data is None or data in NESTED


def test_numbered_parts_follow_rfc9051_numbering(nested) -> None:
    numbers = [(n, p.media_type) for n, p in mime.numbered_parts(nested)]
    assert numbers == [
        ("1", "text/plain"),
        ("2", "multipart/alternative"),
        ("2.1", "text/plain"),
        ("2.2", "text/html"),
        ("3", "message/rfc822"),
        ("3.1", "text/plain"),
        ("3.2", "application/pdf"),
        ("4", "message/rfc822"),
        ("4.1", "text/plain"),
    ]
    for number, part in mime.numbered_parts(nested):
        assert mime.find_part(nested, tuple(int(n) for n in number.split("."))) is part


# --- BINARY ---------------------------------------------------------------------------------------------


def _binary_message(encoding: str, body: bytes) -> tuple[bytes, mime.ParsedMessage]:
    raw = (
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: "
        + encoding.encode()
        + b"\r\n\r\n"
        + body
    )
    return raw, mime.parse(raw)


def test_binary_base64_rfc3516() -> None:
    payload = bytes(range(256)) * 3
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    raw, msg = _binary_message("Base64", encoded)
    assert mime.binary_bytes(raw, msg, "1") == payload
    assert mime.binary_size(raw, msg, "1") == len(payload)
    assert mime.binary_bytes(raw, msg, "") == raw  # BINARY[]: the message as stored


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        (b"aGVsbG8gd29y\r\nbGQ=\r\n", b"hello world"),
        (b"aGVs!!bG8=junk after padding", b"hello"),
        (b"aGVsbG8gd29yb", b"hello wor"),  # a lone trailing sextet carries no octet
        (b"aGVsbG8", b"hello"),  # missing padding
        (b"", b""),
    ],
)
def test_damaged_base64_is_decoded_leniently_rfc2045_6_8(encoded: bytes, decoded: bytes) -> None:
    raw, msg = _binary_message("base64", encoded)
    assert mime.binary_bytes(raw, msg, "1") == decoded


def test_quoted_printable_rfc2045_6_7() -> None:
    raw, msg = _binary_message("quoted-printable", b"h=C3=A9llo  =20  \r\nsoft=\r\nbreak =3D done\t\r\n=XYbad")
    assert mime.binary_bytes(raw, msg, "1") == b"h\xc3\xa9llo   \r\nsoftbreak = done\r\n=XYbad"


@pytest.mark.parametrize("encoding", ["7bit", "8BIT", "binary"])
def test_identity_encodings(encoding: str) -> None:
    raw, msg = _binary_message(encoding, b"as \xe9 is")
    assert mime.binary_bytes(raw, msg, (1,)) == b"as \xe9 is"


def test_unknown_encoding_is_signalled_for_unknown_cte() -> None:
    raw, msg = _binary_message("x-uuencode", b"begin 644 x\r\n")
    with pytest.raises(mime.UnknownTransferEncoding) as info:
        mime.binary_bytes(raw, msg, "1")
    assert info.value.encoding == "x-uuencode"


def test_binary_of_composite_parts_is_as_stored(nested) -> None:
    assert mime.binary_bytes(NESTED, nested, "2") == mime.section_bytes(NESTED, nested, "2")
    assert mime.binary_bytes(NESTED, nested, "3") == mime.section_bytes(NESTED, nested, "3")
    assert mime.binary_bytes(NESTED, nested, "3.2") == b"%PDF-"
    assert mime.binary_bytes(NESTED, nested, "9") is None
    with pytest.raises(mime.InvalidSection):
        mime.binary_bytes(NESTED, nested, "1.MIME")
