"""TLS for the servers: one context per process, built from the settings' certificate and key.

The certificate is re-read when its file changes (the tls role's deploy hook renews it), so a
renewed certificate is served without dropping connections — checked at most every few seconds
on new handshakes.

asyncio's TLS transport gives each connection a 256 KiB read buffer (``SSLProtocol.max_size``),
zero-filled when the connection is accepted, before any handshake: 1,000 idle TLS connections
cost 250 MiB of RSS (measured with ``tests/load``). A TLS record carries at most 16 KiB of
plaintext (RFC 8446 §5.1, RFC 5246 §6.2.1), so this module sets reads of 32 KiB for every TLS
connection of the process: the same bytes, an eighth of the memory.
"""

from __future__ import annotations

import asyncio.sslproto
import logging
import os
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sealmail.errors import SealmailError

if TYPE_CHECKING:
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.tls")
_RECHECK_SECONDS = 5.0
TLS_READ_BUFFER = 32 * 1024

asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


class TLSUnavailable(SealmailError):
    pass


class ServerTLS:
    """Holds the current server context; ``context()`` returns a fresh one after a renewal."""

    def __init__(self, cert_file: Path, key_file: Path, *, alpn: tuple[str, ...] = ("imap", "pop3", "smtp")) -> None:
        self.cert_file, self.key_file = cert_file, key_file
        self.alpn = alpn
        self._context = self._load()
        self._stamp = self._mtime()
        self._checked = time.monotonic()

    @classmethod
    def from_settings(cls, settings: Settings, *, alpn: tuple[str, ...] | None = None) -> ServerTLS:
        if settings.tls_cert_file is None or settings.tls_key_file is None:
            raise TLSUnavailable("SEALMAIL_TLS_CERT_FILE and SEALMAIL_TLS_KEY_FILE are required to serve TLS")
        if alpn is None:
            return cls(settings.tls_cert_file, settings.tls_key_file)
        return cls(settings.tls_cert_file, settings.tls_key_file, alpn=alpn)

    def _mtime(self) -> tuple[float, float]:
        return (os.stat(self.cert_file).st_mtime, os.stat(self.key_file).st_mtime)

    def _load(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TLSUnavailable(f"cannot load {self.cert_file} / {self.key_file}: {exc}") from None
        context.set_alpn_protocols(list(self.alpn))
        return context

    def listening_context(self) -> ssl.SSLContext:
        """A context to hand a server once, at listen time (uvicorn, implicit TLS), that still serves a
        renewed certificate: every handshake switches to the current context. OpenSSL calls the SNI
        callback for every ClientHello, with or without a server name."""
        front = self._load()

        def switch(conn: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, ctx: ssl.SSLContext) -> None:
            conn.context = self.context()

        front.sni_callback = switch
        return front

    def context(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now - self._checked >= _RECHECK_SECONDS:
            self._checked = now
            try:
                stamp = self._mtime()
                if stamp != self._stamp:
                    self._context = self._load()
                    self._stamp = stamp
                    log.info("reloaded the TLS certificate from %s", self.cert_file)
            except (OSError, TLSUnavailable):
                log.warning("could not reload the TLS certificate; still serving the previous one", exc_info=True)
        return self._context
