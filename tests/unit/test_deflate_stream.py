"""COMPRESS=DEFLATE's stream halves (RFC 4978, raw DEFLATE of RFC 1951), without a socket: what they
read and write, and what they hold in memory when a few compressed octets inflate to a great many."""

from __future__ import annotations

import asyncio
import random
import zlib

import pytest

from sealmail.net.deflate import STEP, CorruptStream, Deflater, Inflater


def _feed(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def _deflate(*pieces: bytes) -> bytes:
    """What a client sends: each piece compressed and flushed (Z_SYNC_FLUSH) on its own."""
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    return b"".join(z.compress(p) + z.flush(zlib.Z_SYNC_FLUSH) for p in pieces)


async def test_inflater_reads_lines_and_exact_counts_across_flushes() -> None:
    """Lines and literals come out exactly as sent, however the compressed stream was cut."""
    literal = random.Random(7).randbytes(200_000)
    wire = _deflate(b"a LOGIN x {200000}\r\n", literal[:1000], literal[1000:], b"\r\nb NOOP\r\n")
    inflater = Inflater(_feed(wire), limit=64 * 1024)
    assert await inflater.readuntil(b"\n") == b"a LOGIN x {200000}\r\n"
    assert await inflater.readexactly(200_000) == literal
    assert await inflater.readuntil(b"\n") == b"\r\n"
    assert await inflater.readuntil(b"\n") == b"b NOOP\r\n"
    with pytest.raises(asyncio.IncompleteReadError):
        await inflater.readuntil(b"\n")


async def test_inflater_holds_at_most_the_line_limit_of_a_decompression_bomb() -> None:
    """RFC 4978 §6: 64 MiB without a line end compress to some 64 KiB; the reader inflates a bounded
    step at a time, so it holds the line limit (plus one step) before it refuses, as a plain
    connection would, and the line can be skipped to its end the same way."""
    limit = 64 * 1024
    bomb = _deflate(bytes(64 << 20) + b"\r\nnext\r\n")
    assert len(bomb) < 100_000
    inflater = Inflater(_feed(bomb), limit=limit)
    with pytest.raises(asyncio.LimitOverrunError) as overrun:
        await inflater.readuntil(b"\n")
    assert inflater.buffered <= limit + STEP
    consumed = overrun.value.consumed
    while True:  # what Connection._discard_line does
        await inflater.readexactly(consumed)
        assert inflater.buffered <= limit + STEP
        try:
            assert await inflater.readuntil(b"\n") == b"\r\n"
            break
        except asyncio.LimitOverrunError as again:
            consumed = again.consumed
    assert await inflater.readuntil(b"\n") == b"next\r\n"


async def test_a_broken_stream_is_a_connection_error() -> None:
    """Octets that are not DEFLATE end the connection: nothing after them can be understood."""
    inflater = Inflater(_feed(b"\xff" * 64), limit=1024)
    with pytest.raises(CorruptStream):
        await inflater.readuntil(b"\n")
    assert issubclass(CorruptStream, ConnectionError)


def test_deflater_flushes_whole_responses_and_only_when_something_was_written() -> None:
    """Each flush ends in a sync-flush point, so the client inflates every response written so far."""
    deflater = Deflater()
    client = zlib.decompressobj(-15)
    wire = deflater.compress(b"* 1 EXISTS\r\n") + deflater.compress(b"+ idling\r\n") + deflater.flush()
    assert wire.endswith(b"\x00\x00\xff\xff")
    assert client.decompress(wire) == b"* 1 EXISTS\r\n+ idling\r\n"
    assert deflater.flush() == b""
    assert client.decompress(deflater.compress(b"a OK done\r\n") + deflater.flush()) == b"a OK done\r\n"


async def test_deflater_drops_its_state_when_quiet_and_the_stream_goes_on() -> None:
    """A connection quiet for a while gives up its compressor (most of its memory); the next response
    starts a new one after the last sync point, and the client's one inflater reads on unaware."""
    deflater = Deflater(release_after=0.05)
    client = zlib.decompressobj(-15)
    first = b"* OK [HIGHESTMODSEQ 7] Highest\r\n" * 20
    assert client.decompress(deflater.compress(first) + deflater.flush()) == first
    assert deflater.holding
    await asyncio.sleep(0.2)
    assert not deflater.holding
    later = b"* 8 EXISTS\r\n"
    assert client.decompress(deflater.compress(later) + deflater.flush()) == later
    assert deflater.holding
    deflater.close()
