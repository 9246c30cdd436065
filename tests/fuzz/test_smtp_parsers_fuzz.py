"""Fuzz targets: what the SMTP listeners parse from the network besides aiosmtpd's own grammar.

* addresses (addresses.py): MAIL FROM / RCPT TO paths, alias names; the documented error is
  ``InvalidInput``, which the handlers answer with 553 (RFC 5321 §4.2.2 / §3.3);
* the fast path for ``<dot-atom@domain> params`` (smtp/protocol.py), which must agree with the
  RFC 5322 parser it bypasses;
* the DSN parameters of submission (RFC 3461 §4), the SIZE parameter (RFC 1870 §4), reply codes;
* DATA (smtp/dataread.py, RFC 5321 §4.5.2): however the bytes are cut into reads, the end of data,
  the unstuffed message and what follows are the same;
* SRS addresses in RCPT TO at the MX (mailauth/srs.py): ``InvalidSrs`` (550) or the original.
"""

from __future__ import annotations

import contextlib

from aiosmtpd.smtp import SMTP
from hypothesis import given
from hypothesis import strategies as st

from sealmail import addresses
from sealmail.errors import InvalidInput
from sealmail.mailauth.srs import InvalidSrs, Srs
from sealmail.smtp import protocol, submission
from sealmail.smtp.dataread import DotReader

from .fuzzkit import fuzz, lines_from

ADDRESS_WORDS = [
    "<", ">", "@", ".", "..", '"', "\\", "(", ")", "[", "]", ":", ";", ",", " ", "\t", "+", "-", "=", "*", "/", "%",
    "user", "Alice", "rémi", "example.test", "universitéxyz.fr", "xn--", "xn--universitxyz-jeb.fr", "127.0.0.1",
    "[IPv6:::1]", "a" * 64, "b" * 70, "ß", "\u200b", "\u0301", "\x00", "\r\n", "SIZE=", "BODY=8BITMIME", "SMTPUTF8",
    "RET=", "ENVID=", "NOTIFY=", "ORCPT=", "rfc822;", "FULL", "HDRS", "NEVER", "SUCCESS,FAILURE", "SRS0=", "SRS1=",
]  # fmt: skip
address_text = st.one_of(
    st.text(max_size=80), lines_from(ADDRESS_WORDS, max_size=16).map(lambda b: b.decode("utf-8", "replace"))
)


@fuzz()
@given(address_text)
def test_mailbox_parsing_gives_a_mailbox_or_invalid_input(text: str) -> None:
    for fold_case in (True, False):
        try:
            mailbox = addresses.parse_mailbox(text, fold_case=fold_case)
        except InvalidInput:
            continue
        assert mailbox.local
        assert "." in mailbox.domain.ascii
        assert mailbox.domain.ascii.isascii()
        # A parsed address parses again to itself (the store compares these forms).
        assert addresses.parse_mailbox(mailbox.text, fold_case=fold_case) == mailbox


@fuzz()
@given(address_text)
def test_alias_names_and_patterns_give_a_value_or_invalid_input(text: str) -> None:
    for function in (addresses.parse_alias_address, addresses.normalize_domain, addresses.normalize_local):
        with contextlib.suppress(InvalidInput):
            function(text)
    with contextlib.suppress(InvalidInput):
        addresses.compile_alias_pattern("/" + text + "/")


@fuzz()
@given(address_text)
def test_fast_path_agrees_with_the_rfc5322_parser(arg: str) -> None:
    """``SealmailSMTP._getaddr`` answers like aiosmtpd's wherever its shortcut applies."""

    class Stub:
        local_part_limit = 0

    match = protocol._SIMPLE_PATH.fullmatch(arg)
    if match is None:
        return
    stub = Stub()
    assert protocol.SealmailSMTP._getaddr(stub, arg) == SMTP._getaddr(stub, arg)


@fuzz()
@given(st.lists(address_text, max_size=6))
def test_size_parameter_never_raises(options: list[str]) -> None:
    assert protocol._declared_size(options) >= 0


@fuzz()
@given(st.text(max_size=120))
def test_reply_codes_never_raise(status: str) -> None:
    assert isinstance(protocol.with_enhanced_code(status), str)


@fuzz()
@given(address_text)
def test_dsn_parameters_are_taken_off_whatever_the_argument(arg: str) -> None:
    """RFC 3461 §4: RET/ENVID on MAIL, NOTIFY/ORCPT on RCPT; what is left goes to aiosmtpd."""
    for pattern in (submission._MAIL_DSN, submission._RCPT_DSN):
        found = pattern.findall(arg)
        rest = pattern.sub("", arg)
        assert len(rest) <= len(arg)
        assert all(len(pair) == 2 for pair in found)


def _reference_data(stream: bytes) -> tuple[bytes, bytes] | None:
    """RFC 5321 §4.5.2 written the slow way: lines up to CRLF "." CRLF, leading dots removed."""
    data = b"\r\n" + stream
    end = data.find(b"\r\n.\r\n")
    if end < 0:
        return None
    body = data[2 : end + 2]
    lines = body.split(b"\r\n")
    unstuffed = b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)
    return unstuffed, data[end + 5 :]


DATA_WORDS = ["\r\n", "\r", "\n", ".", "..", "\r\n.\r\n", "\r\n.", ".\r\n", "x", "QUIT\r\n", "\x00"]


@fuzz()
@given(lines_from(DATA_WORDS, max_size=40), st.lists(st.integers(0, 60), max_size=10), st.integers(0, 200))
def test_data_reader_is_independent_of_how_bytes_arrive(stream: bytes, cuts: list[int], limit: int) -> None:
    expected = _reference_data(stream)
    reader = DotReader(None)
    limited = DotReader(limit)
    rest = limited_rest = None
    points = sorted({min(c, len(stream)) for c in cuts} | {len(stream)})
    start = 0
    for point in points:
        piece = stream[start:point]
        start = point
        if rest is None:
            rest = reader.feed(piece)
        elif piece:
            rest += piece
        if limited_rest is None:
            limited_rest = limited.feed(piece)
        elif piece:
            limited_rest += piece
    if expected is None:
        assert rest is None
        assert limited_rest is None
        return
    message, after = expected
    assert rest == after
    assert limited_rest == after
    assert reader.message() == message
    assert limited.size == len(message)
    assert limited.over == (len(message) > limit)
    if not limited.over:
        assert limited.message() == message


SRS = Srs(b"fuzz secret")


@fuzz()
@given(st.one_of(address_text, st.builds(lambda a, b: f"SRS{a}{b}", st.sampled_from("01"), address_text)))
def test_srs_reverse_gives_an_address_or_invalid_srs(address: str) -> None:
    try:
        original = SRS.reverse(address)
    except InvalidSrs:
        return
    assert "@" in original


@fuzz()
@given(st.sampled_from(["a@example.org", "x.y+z@universitéxyz.fr"]), address_text)
def test_srs_round_trip_survives_tampering(sender: str, junk: str) -> None:
    forwarded = SRS.forward(sender, "example.test")
    assert SRS.reverse(forwarded) == sender
    local, _, domain = forwarded.rpartition("@")
    with contextlib.suppress(InvalidSrs):
        SRS.reverse(local + junk + "@" + domain)
