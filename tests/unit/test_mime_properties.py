"""Properties of the MIME parser over arbitrary and structured-random input (hypothesis).

Whatever arrives, ``parse`` returns (without falling back to its catch-all), every offset is inside the
message and properly nested, every section is a slice of the message, the JSON form round-trips
exactly, and the IMAP values serialise.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealmail import mime
from sealmail.imap.wire import imap_serialize
from sealmail.mime import Part

_spec = importlib.util.spec_from_file_location(
    "mime_corpus", Path(__file__).resolve().parents[1] / "data" / "mime" / "corpus.py"
)
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)
CORPUS = corpus.load()
SMALL_CORPUS = sorted(name for name, raw in CORPUS.items() if len(raw) < 20_000)


def check_everything(raw: bytes) -> None:
    msg = mime.parse(raw)
    assert "error" not in msg.limits, "the parser fell back to its catch-all"
    assert msg.size == len(raw)

    def nested(part: Part, lo: int, hi: int) -> None:
        assert lo <= part.header_start <= part.header_end == part.body_start <= part.body_end <= hi
        for child in part.children:
            nested(child, part.body_start, part.body_end)
        if part.message is not None:
            nested(part.message, part.body_start, part.body_end)

    nested(msg.root, 0, len(raw))
    assert mime.ParsedMessage.from_json(msg.to_json()) == msg
    imap_serialize(mime.bodystructure(msg))
    imap_serialize(mime.body(msg))
    imap_serialize(mime.envelope_value(msg))
    for number, part in mime.numbered_parts(msg):
        for suffix in ("", ".MIME", ".HEADER", ".TEXT", ".HEADER.FIELDS (SUBJECT FROM)"):
            data = mime.section_bytes(raw, msg, number + suffix)
            assert data is None or len(data) <= len(raw)
        assert raw[part.body_start : part.body_end] == mime.section_bytes(raw, msg, number)
        with contextlib.suppress(mime.UnknownTransferEncoding):
            mime.binary_bytes(raw, msg, number)
    for spec in ("", "HEADER", "TEXT", "HEADER.FIELDS.NOT (RECEIVED)"):
        assert mime.section_bytes(raw, msg, spec) is not None
    mime.search_text(raw, msg)
    mime.search_headers(msg)
    mime.sent_date(msg)
    for a in mime.attachments(msg, min_size=0):
        assert 0 <= a.start <= a.end <= len(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes(raw: bytes) -> None:
    check_everything(raw)


# --- structured-random MIME ---------------------------------------------------------------------------

_newline = st.sampled_from([b"\r\n", b"\n"])
_token = st.text("abcxyzABC0123-_.=+", min_size=1, max_size=12).map(str.encode)
_boundary = st.sampled_from([b"b", b"bb", b"b1", b"outer", b"=_x", b"a b", b"--", b"bb--"]) | _token
_text = st.binary(max_size=60) | st.sampled_from([b"", b"--", b"--b", b"--bb--", b"=?utf-8?q?x?=", b"\xff\xfe"])
_ctype = st.sampled_from(
    [
        b"text/plain",
        b"text/html; charset=utf-8",
        b"text/plain; charset*=utf-8''%E2%82%AC",
        b"application/octet-stream",
        b"message/rfc822",
        b"message/global",
        b"multipart/digest",
        b"text",
        b"",
    ]
)
_encoding = st.sampled_from([b"7bit", b"base64", b"quoted-printable", b"x-unknown", b"BINARY"])
_field = st.sampled_from(
    [b"Subject", b"From", b"To", b"Cc", b"Date", b"Content-Disposition", b"Content-Language", b"Content-ID"]
)


@st.composite
def entity(draw, depth: int = 0) -> bytes:
    nl = draw(_newline)
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 3))):
        lines.append(draw(_field) + b": " + draw(_text).replace(b"\n", b" "))
    multipart = depth < 4 and draw(st.booleans())
    if multipart:
        boundary = draw(_boundary)
        sub = draw(st.sampled_from([b"mixed", b"alternative", b"digest"]))
        quoted = draw(st.booleans())
        value = b'"' + boundary + b'"' if quoted else boundary
        lines.append(b"Content-Type: multipart/" + sub + b"; boundary=" + value)
        children = draw(st.lists(entity(depth + 1), max_size=4))
        body = draw(_text) + nl
        for child in children:
            body += b"--" + boundary + draw(st.sampled_from([b"", b"  ", b"junk"])) + nl + child + nl
        if draw(st.booleans()):
            body += b"--" + boundary + b"--" + nl + draw(_text)
    else:
        if draw(st.booleans()):
            lines.append(b"Content-Type: " + draw(_ctype))
        if draw(st.booleans()):
            lines.append(b"Content-Transfer-Encoding: " + draw(_encoding))
        body = draw(_text)
        if depth < 4 and draw(st.booleans()):
            body = draw(entity(depth + 1))
    separator = draw(st.sampled_from([nl, nl, nl, b""]))
    header = b"".join(line + nl for line in lines)
    return header + separator + body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entity())
def test_structured_random_mime(raw: bytes) -> None:
    check_everything(raw)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SMALL_CORPUS),
    st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 40), st.binary(max_size=8)), max_size=6),
)
def test_mutated_corpus_messages(name: str, edits: list[tuple[int, int, bytes]]) -> None:
    """Corpus messages with bytes cut, replaced or inserted anywhere (truncation included)."""
    raw = CORPUS[name]
    for offset, length, insert in edits:
        pos = offset % (len(raw) + 1)
        raw = raw[:pos] + insert + raw[pos + length :]
    check_everything(raw)
