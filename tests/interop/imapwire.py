"""A small reader for IMAP FETCH responses (RFC 9051 §7.5.2), for comparing with a real server.

Strings (quoted, literal, literal8) become ``bytes``, numbers ``int``, NIL ``None``, lists ``list``.
"""

from __future__ import annotations

from typing import Any


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def skip_spaces(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in b" \r\n":
            self.pos += 1

    def value(self) -> Any:
        self.skip_spaces()
        data = self.data
        c = data[self.pos : self.pos + 1]
        if c == b"(":
            self.pos += 1
            items = []
            while True:
                self.skip_spaces()
                if data[self.pos : self.pos + 1] == b")":
                    self.pos += 1
                    return items
                items.append(self.value())
        if c == b'"':
            out = bytearray()
            self.pos += 1
            while data[self.pos] != ord('"'):
                if data[self.pos] == ord("\\"):
                    self.pos += 1
                out.append(data[self.pos])
                self.pos += 1
            self.pos += 1
            return bytes(out)
        if c in (b"{", b"~"):
            if c == b"~":
                self.pos += 1
            end = data.index(b"}", self.pos)
            size = int(data[self.pos + 1 : end].rstrip(b"+"))
            start = end + 3  # "}\r\n"
            self.pos = start + size
            return data[start : self.pos]
        start = self.pos
        while self.pos < len(data) and data[self.pos : self.pos + 1] not in (b" ", b")", b"(", b"\r", b"\n"):
            self.pos += 1
        atom = data[start : self.pos]
        if atom.upper() == b"NIL":
            return None
        if atom.isdigit():
            return int(atom)
        return atom

    def key(self) -> str:
        """A FETCH item name, with its [section] and <partial> if any."""
        self.skip_spaces()
        start = self.pos
        depth = 0
        while self.pos < len(self.data):
            c = self.data[self.pos : self.pos + 1]
            if c == b"[":
                depth += 1
            elif c == b"]":
                depth -= 1
            elif c == b" " and depth == 0:
                break
            self.pos += 1
        return self.data[start : self.pos].decode("ascii")


def parse_fetch(response: bytes) -> dict[str, Any]:
    """``1 (KEY value KEY value ...)`` → ``{"KEY": value}`` (keys upper-cased)."""
    reader = Reader(response)
    reader.value()  # the sequence number
    reader.skip_spaces()
    assert reader.data[reader.pos : reader.pos + 1] == b"(", response[:80]
    reader.pos += 1
    out: dict[str, Any] = {}
    while True:
        reader.skip_spaces()
        if reader.data[reader.pos : reader.pos + 1] == b")":
            return out
        key = reader.key().upper()
        out[key] = reader.value()


def parse_value(data: bytes) -> Any:
    return Reader(data).value()


def join_imaplib(data: list) -> bytes:
    """Rebuild the wire octets of one FETCH response from imaplib's (prefix, literal) pieces."""
    out = bytearray()
    for item in data:
        if isinstance(item, tuple):
            out += item[0] + b"\r\n" + item[1]
        elif item is not None:
            out += item
    return bytes(out)
