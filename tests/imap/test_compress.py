"""COMPRESS=DEFLATE (RFC 4978) over real sockets, negotiated by a test client that speaks raw DEFLATE
(RFC 1951, no zlib header) with Python's zlib, as Thunderbird and K-9 do on mobile links."""

from __future__ import annotations

import re
import ssl
import time
import zlib

import pytest

from .conftest import RawClient
from mailgen import message


class Deflated:
    """The raw client's connection after COMPRESS DEFLATE: every command compressed and flushed
    (Z_SYNC_FLUSH, so the server can act on it at once), every response inflated."""

    def __init__(self, raw: RawClient) -> None:
        self.raw = raw
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)
        self.buffer = bytearray()
        self.wire_in = 0  # compressed octets received
        self.plain_in = 0  # what they inflated to

    def send(self, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        self.raw.sock.sendall(self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH))

    def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.raw.file.read1(65536)  # what the line reader had buffered comes first
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.wire_in += len(chunk)
            plain = self.inflate.decompress(chunk)
            self.plain_in += len(plain)
            self.buffer += plain
        end = self.buffer.index(b"\n") + 1
        line = bytes(self.buffer[:end])
        del self.buffer[:end]
        return line

    def response(self) -> bytes:
        out = bytearray(self.readline())
        while out.endswith(b"}\r\n"):
            size = int(out[out.rfind(b"{") + 1 : -3].decode().rstrip("+"))
            while len(self.buffer) < size:
                self.buffer += self._more()
            out += self.buffer[:size]
            del self.buffer[:size]
            out += self.readline()
        return bytes(out)

    def _more(self) -> bytes:
        chunk = self.raw.file.read1(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.wire_in += len(chunk)
        plain = self.inflate.decompress(chunk)
        self.plain_in += len(plain)
        return plain

    def command(self, line: str | bytes, tag: str | None = None) -> list[bytes]:
        data = line.encode() if isinstance(line, str) else line
        self.send(data + b"\r\n")
        return self.until(tag or data.split(b" ", 1)[0].decode())

    def until(self, tag: str) -> list[bytes]:
        lines = []
        while True:
            lines.append(self.response())
            if lines[-1].startswith(tag.encode() + b" "):
                return lines


def _assert_closed(z: Deflated) -> None:
    """The server ended the connection (not merely went quiet: the socket has a timeout)."""
    with pytest.raises((ConnectionError, ssl.SSLError)):
        z.readline()


def _compressed(imap) -> Deflated:
    raw = imap.raw()
    raw.login(imap.account())
    # RFC 4978 §3: the tagged OK is the last thing sent in clear, in both directions
    assert raw.command("z COMPRESS DEFLATE") == [b"z OK DEFLATE active\r\n"]
    return Deflated(raw)


def test_compress_is_offered_after_login_only(imap) -> None:
    """RFC 4978 §3/§4: COMPRESS is valid once authenticated (BAD before, and the session goes on), an
    unknown mechanism is BAD, and COMPRESS=DEFLATE is among the capabilities after login."""
    raw = imap.raw()
    assert b"COMPRESS=DEFLATE" not in raw.greeting
    lines = raw.command("a COMPRESS DEFLATE")
    assert [line[:6] for line in lines] == [b"a BAD "], lines
    raw.login(imap.account())
    assert b" COMPRESS=DEFLATE" in raw.command("b CAPABILITY")[0]
    lines = raw.command("c COMPRESS X-UNKNOWN")
    assert [line[:6] for line in lines] == [b"c BAD "], lines
    assert raw.command("d NOOP") == [b"d OK NOOP completed\r\n"]  # not compressing: both refused
    raw.close()


def test_a_compressed_session_select_fetch_idle_append_logout(imap, monkeypatch) -> None:
    """RFC 4978 §3: after COMPRESS DEFLATE both directions are raw DEFLATE. Every response is flushed
    whole: what IMAP says compressed is byte for byte what it says in clear, IDLE's continuation and a
    message delivered meanwhile reach the client at once (RFC 2177), so does the continuation request
    for a synchronizing literal; a second COMPRESS is NO [COMPRESSIONACTIVE] (RFC 4978 §3). The server
    drops its compressor when the connection is quiet (here after 50 ms, so during IDLE): the stream
    goes on all the same."""
    monkeypatch.setattr("sealmail.net.server.DEFLATE_RELEASE_AFTER", 0.05)
    for n in range(1, 4):
        imap.deliver(message(n, body="Compressible text. " * 200 + "\r\n"))
    clear = imap.raw()
    clear.login(imap.account())
    clear.command("s EXAMINE INBOX")
    expected = clear.command("f FETCH 1:* (UID FLAGS BODY.PEEK[])")
    clear.close()

    z = _compressed(imap)
    z.raw.sock.settimeout(10)  # a response held in the compressor would time out here
    assert z.command("c SELECT INBOX")[-1] == b"c OK [READ-WRITE] SELECT completed\r\n"
    before = z.wire_in, z.plain_in
    assert z.command("f FETCH 1:* (UID FLAGS BODY.PEEK[])") == expected
    wire, plain = z.wire_in - before[0], z.plain_in - before[1]
    assert wire * 4 < plain, (wire, plain)  # compressed indeed
    assert z.command("d COMPRESS DEFLATE") == [b"d NO [COMPRESSIONACTIVE] DEFLATE is active already\r\n"]

    z.send("i IDLE\r\n")
    assert z.readline() == b"+ idling\r\n"
    time.sleep(0.2)
    imap.deliver(message(4))
    assert z.readline() == b"* 4 EXISTS\r\n"
    assert z.readline() == b"* 4 RECENT\r\n"  # the three it selected, and this one
    z.send("DONE\r\n")
    assert z.until("i") == [b"i OK IDLE terminated\r\n"]

    msg = message(5)
    z.send(b"a APPEND INBOX {%d}\r\n" % len(msg))
    assert z.readline() == b"+ Ready for literal data\r\n"
    lines = z.command(msg, tag="a")
    assert lines[-1].startswith(b"a OK [APPENDUID "), lines
    assert z.command("l LOGOUT") == [b"* BYE Sealmail logging out\r\n", b"l OK LOGOUT completed\r\n"]
    _assert_closed(z)
    z.raw.close()


def test_literal_and_line_limits_apply_to_inflated_data(imap) -> None:
    """RFC 4978 §6 (a small compressed input can inflate hugely) with RFC 7888 §4 and RFC 9051 §7.1
    TOOBIG: the limits count inflated octets, judged from the announcement before any is read; a line
    that inflates past the line limit is refused without the session ending."""
    z = _compressed(imap)
    z.raw.sock.settimeout(10)
    assert z.command("x SELECT {2000000}") == [b"x BAD [TOOBIG] Literal too large\r\n"]
    # a megabyte and more of one character without a line end: a few kilobytes compressed
    z.send(b"y NOOP " + b"a" * 3_000_000 + b"\r\n")
    assert z.readline() == b"* BAD Line too long\r\n"
    assert z.command("n NOOP") == [b"n OK NOOP completed\r\n"]
    match = re.search(rb" APPENDLIMIT=(\d+)", z.command("c CAPABILITY")[0])
    assert match
    limit = int(match.group(1))
    # LITERAL+ over APPENDLIMIT, its octets (zeros: a few kilobytes compressed per megabyte) on the way
    z.send(b"a APPEND INBOX {%d+}\r\n" % (limit + 1) + bytes(1 << 20))
    assert z.readline() == b"a NO [TOOBIG] Message larger than APPENDLIMIT %d\r\n" % limit
    assert z.readline() == b"* BYE Literal too large\r\n"
    _assert_closed(z)
    z.raw.close()
    other = imap.raw()  # the server goes on
    other.login(imap.account())
    assert other.command("n NOOP") == [b"n OK NOOP completed\r\n"]
    other.close()
