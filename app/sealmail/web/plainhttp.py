"""Port 80 (``http_port``): plain HTTP, no TLS, no sign-in, two jobs only.

- ``GET /.well-known/acme-challenge/<token>`` answers the file certbot's webroot method wrote at
  ``<acme_webroot>/.well-known/acme-challenge/<token>`` (RFC 8555 §8.3, HTTP-01). A token is
  base64url (RFC 8555 §8.1: ``[A-Za-z0-9_-]``); anything else, a missing file or a symbolic link
  is 404, so no request can read outside that directory.
- everything else: ``301`` to the same path on ``https://<Host>`` (the HTTPS port appended when it
  is not 443), so a browser that types the bare name lands on the web admin over TLS.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sealmail.http.server import Receive, Scope, Send

TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
MAX_CHALLENGE_SIZE = 8192  # a key authorization is ~90 octets
# A Host header names a host (RFC 9110 §7.2): a DNS name, an IPv4 address, or a bracketed IPv6 one.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")


def read_challenge(webroot: Path, token: str) -> bytes | None:
    """The key authorization for ``token``, or None (bad token, no such file, a link, too large)."""
    if not TOKEN.fullmatch(token):
        return None
    path = webroot / ".well-known" / "acme-challenge" / token
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EACCES, errno.EISDIR):
            return None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, MAX_CHALLENGE_SIZE + 1)
    finally:
        os.close(fd)
    return data if len(data) <= MAX_CHALLENGE_SIZE else None


def https_location(host_header: str | None, fallback_host: str, https_port: int, target: str) -> str:
    """Where a plain-HTTP request is sent: the same host without its port, the HTTPS port, the path."""
    host = fallback_host
    if host_header and _HOST.fullmatch(host_header):
        host = host_header if host_header.endswith("]") else host_header.rsplit(":", 1)[0]
    authority = host if https_port == 443 else f"{host}:{https_port}"
    return f"https://{authority}{target}"


class PlainHttpApp:
    """The ASGI application of the plain-HTTP port."""

    def __init__(self, webroot: Path, fallback_host: str, https_port: int) -> None:
        self.webroot = webroot
        self.fallback_host = fallback_host
        self.https_port = https_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(CHALLENGE_PREFIX):
            token = path[len(CHALLENGE_PREFIX) :]
            body = None
            if method in ("GET", "HEAD"):
                body = await asyncio.to_thread(read_challenge, self.webroot, token)
            if body is None:
                await _answer(send, 404, b"Not found\n", [])
            else:
                await _answer(send, 200, body if method == "GET" else b"", [], length=len(body))
            return
        host = None
        for key, value in scope.get("headers", []):
            if key == b"host":
                host = value.decode("latin-1")
                break
        raw = scope.get("raw_path") or path.encode()
        query = scope.get("query_string") or b""
        target = raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        location = https_location(host, self.fallback_host, self.https_port, target)
        await _answer(send, 301, b"Moved to HTTPS\n", [(b"location", location.encode("latin-1"))])


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], *, length: int | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8" if status != 200 else b"application/octet-stream"),
                (b"content-length", str(len(body) if length is None else length).encode()),
                (b"cache-control", b"no-store"),
                (b"x-content-type-options", b"nosniff"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
