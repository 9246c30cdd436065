"""DATA read as a byte stream (``smtp.dataread``), fed in every split the network could make."""

from __future__ import annotations

import itertools

import pytest

from sealmail.smtp.dataread import DotReader


def _read(pieces: list[bytes], limit: int | None = None) -> tuple[bytes, bytes | None, DotReader]:
    reader = DotReader(limit)
    rest = None
    for index, piece in enumerate(pieces):
        rest = reader.feed(piece)
        if rest is not None:
            rest += b"".join(pieces[index + 1 :])  # what the socket had after the end
            break
    return reader.message(), rest, reader


def _splits(stream: bytes):
    """The stream cut in one and in two places, at every position."""
    yield [stream]
    for i in range(len(stream) + 1):
        yield [stream[:i], stream[i:]]
    for i, j in itertools.combinations(range(len(stream) + 1), 2):
        yield [stream[:i], stream[i:j], stream[j:]]


CASES = [
    # (stream after DATA's 354, message, what follows the end)
    (b"a\r\n.\r\n", b"a\r\n", b""),
    (b".\r\n", b"", b""),  # an empty message: the first line is the end
    (b"..x\r\n.\r\nQUIT\r\n", b".x\r\n", b"QUIT\r\n"),  # the first line is stuffed too
    (b"a\r\n..\r\n...b\r\n.c\r\n.\r\n", b"a\r\n.\r\n..b\r\nc\r\n", b""),
    (b"a\n.\nb\r\n.\r\n", b"a\n.\nb\r\n", b""),  # bare LF: no line end, no end of data
    (b"a\r.\rb\r\n.\r\n", b"a\r.\rb\r\n", b""),  # bare CR neither
    (b"a\n.\r\nb\r\n.\r\n", b"a\n.\r\nb\r\n", b""),  # LF.CRLF is content
    (b"a\r\n.\rx\r\n.\r\n", b"a\r\n\rx\r\n", b""),  # ".\r" then more: a stuffed line
    (b"a\r\n.\r\r\n.\r\nRSET\r\n", b"a\r\n\r\r\n", b"RSET\r\n"),
    (b"\r\n\r\n.\r\n", b"\r\n\r\n", b""),
]


@pytest.mark.parametrize(("stream", "message", "after"), CASES)
def test_end_of_data_and_dot_unstuffing_in_every_split_rfc5321_4_5_2(stream, message, after) -> None:
    """RFC 5321 §4.5.2: <CRLF>.<CRLF> ends the data, a leading dot is removed, wherever TCP cuts."""
    for pieces in _splits(stream):
        got, rest, _ = _read(pieces)
        assert (got, rest) == (message, after), pieces


def test_data_that_has_not_ended_says_so() -> None:
    for stream in (b"a\r\n.", b"a\r\n.\r", b"a\r\n", b"a\n.\n", b"a\r.\r"):
        for pieces in _splits(stream):
            assert _read(pieces)[1] is None, pieces


def test_size_limit_counts_the_unstuffed_message_and_drops_it_when_passed_rfc1870_3() -> None:
    """RFC 1870 §3: the size is the message's octets with CRLFs, without the stuffing dots."""
    got, rest, reader = _read([b"..abc\r\n.\r\n"], limit=6)  # ".abc\r\n" is 6 octets
    assert (got, rest, reader.over) == (b".abc\r\n", b"", False)
    got, rest, reader = _read([b"abcd", b"efg\r\n", b"more\r\n", b".\r\nNOOP\r\n"], limit=6)
    assert (got, rest, reader.over) == (b"", b"NOOP\r\n", True)  # read to the end, nothing kept
    assert reader.size == len(b"abcdefg\r\nmore\r\n")


def test_a_byte_at_a_time_is_gathered_not_kept_per_byte() -> None:
    reader = DotReader(None)
    for byte in b"x" * 200_000:
        reader.feed(bytes([byte]))
    assert len(reader.chunks) <= 4
    assert reader.feed(b"\r\n.\r\n") == b""
    assert reader.message() == b"x" * 200_000 + b"\r\n"
