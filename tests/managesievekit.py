"""Helpers for the ManageSieve tests: the server on its own loop thread, and a client that shows the wire.

``Wire`` speaks RFC 5804 over a real socket the way a client does (STARTTLS with the test CA, SASL
PLAIN) and reads every response whole, literals included, so tests can assert on exact answers.
It parses what it reads on its own, not with the server's code.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from scramp import ScramClient

from support import ComponentThread

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_FINAL = re.compile(rb'^(OK|NO|BYE)(?: \((.*?)\))?(?: "((?:[^"\\]|\\.)*)"| \{(\d+)\})?\r\n$', re.IGNORECASE | re.DOTALL)


class Running(ComponentThread):
    """The managesieve component on its own loop thread (settings with port 0 on 127.0.0.1)."""

    def __init__(self, settings: Any) -> None:
        super().__init__("managesieve", settings)

    @property
    def port(self) -> int:
        return self.ports["managesieve"]


@dataclass
class Reply:
    """One server response: the lines before the result (literals inlined) and the result line."""

    status: str  # OK, NO, BYE
    code: str | None
    text: str | None
    lines: list[bytes] = field(default_factory=list)
    raw: bytes = b""  # the result line as sent

    @property
    def capabilities(self) -> dict[str, str | None]:
        """The capability lines, names upper case (RFC 5804 §1.7: names are case-insensitive)."""
        found: dict[str, str | None] = {}
        for line in self.lines:
            match = re.fullmatch(rb'"([^"]+)"(?: "((?:[^"\\]|\\.)*)")?\r\n', line)
            assert match, f"not a capability line: {line!r}"
            name = match.group(1).decode().upper()
            assert name not in found, f"capability {name} twice (RFC 5804 §1.7)"
            value = match.group(2)
            found[name] = None if value is None else _unquote(value)
        return found


def _unquote(value: bytes) -> str:
    return re.sub(rb"\\(.)", rb"\1", value).decode("utf-8")


class Wire:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    @classmethod
    def connect(cls, running: Running, timeout: float = 30) -> Wire:
        return cls(socket.create_connection(("127.0.0.1", running.port), timeout=timeout))

    # ---- reading ---------------------------------------------------------------------------------
    def line(self) -> bytes:
        """One line with any literal it announces (and the rest of the line after it)."""
        line = self.file.readline()
        while (found := _LITERAL.search(line)) is not None:
            line += self.file.read(int(found.group(1)))
            line += self.file.readline()
        return line

    def reply(self) -> Reply:
        lines = []
        while True:
            line = self.line()
            assert line, f"connection closed; read so far: {lines!r}"
            final = _FINAL.match(line)
            if final is not None:
                status, code, quoted, size = final.groups()
                text = None
                if quoted is not None:
                    text = _unquote(quoted)
                elif size is not None:
                    text = line[line.index(b"}\r\n") + 3 : -2].decode("utf-8")
                return Reply(
                    status.decode().upper(), code.decode("utf-8", "replace") if code else None, text, lines, line
                )
            lines.append(line)

    def closed(self) -> bool:
        """Whether the server has hung up (EOF without anything more)."""
        return self.file.read(1) == b""

    # ---- writing ---------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, text: str | bytes) -> Reply:
        self.send((text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.reply()

    def starttls(self, context: ssl.SSLContext) -> Reply:
        """STARTTLS, the handshake, and the capabilities the server must send at once (RFC 5804 §2.2)."""
        answer = self.cmd("STARTTLS")
        assert answer.status == "OK", answer
        self.file.close()
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")
        return self.reply()

    def authenticate(self, address: str, password: str, authzid: str = "") -> Reply:
        """AUTHENTICATE "PLAIN" with the initial response as a literal, as sieve-connect sends it."""
        token = base64.b64encode(f"{authzid}\0{address}\0{password}".encode())
        self.send(b'AUTHENTICATE "PLAIN" {%d+}\r\n%s\r\n' % (len(token), token))
        return self.reply()

    def scram(self, mechanism: str, address: str, password: str, *, initial: bool = True) -> tuple[Reply, ScramClient]:
        """AUTHENTICATE with SCRAM (RFC 5804 §2.1, RFC 5802 §3) as scramp's client computes it: the
        client-first as the initial response (or after the empty challenge), then the client-final.
        The client checks the server-final in the SASL code of the OK (``client.set_server_final``)."""
        client = ScramClient([mechanism], address, password)
        first = base64.b64encode(client.get_client_first().encode())
        if initial:
            self.send(b'AUTHENTICATE "%s" "%s"\r\n' % (mechanism.encode(), first))
        else:
            self.send(b'AUTHENTICATE "%s"\r\n' % mechanism.encode())
            assert self.line() == b'""\r\n'  # the empty challenge
            self.send(b'"%s"\r\n' % first)
        challenge = self.line()
        if _FINAL.match(challenge):
            return self._final(challenge), client  # refused before the exchange
        server_first = base64.b64decode(challenge.strip().strip(b'"')).decode()
        client.set_server_first(server_first)
        self.send(b'"%s"\r\n' % base64.b64encode(client.get_client_final().encode()))
        answer = self.reply()
        if answer.status == "OK":
            found = re.fullmatch(r'SASL "([^"]*)"', answer.code or "")
            assert found, f"no server-final in the OK: {answer.raw!r}"
            client.set_server_final(base64.b64decode(found.group(1)).decode())  # raises unless it proves the server
        return answer, client

    def _final(self, line: bytes) -> Reply:
        final = _FINAL.match(line)
        assert final is not None
        status, code, quoted, _size = final.groups()
        text = _unquote(quoted) if quoted is not None else None
        return Reply(status.decode().upper(), code.decode() if code else None, text, [], line)

    def putscript(self, name: str, content: str | bytes, plus: bool = True) -> Reply:
        data = content.encode() if isinstance(content, str) else content
        head = b"{%d+}" % len(data) if plus else b"{%d}" % len(data)
        self.send(b"PUTSCRIPT " + quoted(name) + b" " + head + b"\r\n" + data + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def quoted(text: str) -> bytes:
    return b'"' + text.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def signed_in(running: Running, context: ssl.SSLContext, address: str, password: str) -> Wire:
    """A connection past STARTTLS and AUTHENTICATE."""
    wire = Wire.connect(running)
    assert wire.reply().status == "OK"
    wire.starttls(context)
    answer = wire.authenticate(address, password)
    assert answer.status == "OK", answer
    return wire
