"""TLS for the servers: one context per process, built from the settings' certificate and key.

The certificate is re-read when its file changes (the tls role's deploy hook renews it), so a
renewed certificate is served without dropping connections — checked at most every few seconds
on new handshakes.
"""

from __future__ import annotations

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


class TLSUnavailable(SealmailError):
    pass


class ServerTLS:
    """Holds the current server context; ``context()`` returns a fresh one after a renewal."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file, self.key_file = cert_file, key_file
        self._context = self._load()
        self._stamp = self._mtime()
        self._checked = time.monotonic()

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerTLS:
        if settings.tls_cert_file is None or settings.tls_key_file is None:
            raise TLSUnavailable("SEALMAIL_TLS_CERT_FILE and SEALMAIL_TLS_KEY_FILE are required to serve TLS")
        return cls(settings.tls_cert_file, settings.tls_key_file)

    def _mtime(self) -> tuple[float, float]:
        return (os.stat(self.cert_file).st_mtime, os.stat(self.key_file).st_mtime)

    def _load(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TLSUnavailable(f"cannot load {self.cert_file} / {self.key_file}: {exc}") from None
        context.set_alpn_protocols(["imap", "pop3", "smtp"])
        return context

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
