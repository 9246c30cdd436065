"""The server side of one SCRAM exchange (RFC 5802 §3) against an alias's stored verifiers.

The protocol code (ManageSieve) moves the messages; scramp checks them; this module finds the
verifier and decides what a result means. An unknown address, a disabled alias or an alias whose
verifiers were not made yet gets a made-up verifier (derived from a per-process key and the name,
so a second try looks the same): the exchange runs to its end and fails at the proof, so the
answers never tell which addresses exist (RFC 5802 §9 leaves that to the server; §5.1 ``e=`` codes
would say it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scramp import ScramException, ScramMechanism

from sealmail.crypto import scram
from sealmail.services import credentials
from sealmail.services.credentials import AuthenticationFailed

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.config.models import Alias, AliasCredential
    from sealmail.settings import Settings

_DECOY_KEY = secrets.token_bytes(32)


class BadMessage(Exception):
    """A SCRAM message that does not follow RFC 5802 §7 (the client's mistake, not a wrong password)."""


@dataclass(frozen=True, slots=True)
class Verified:
    alias: Alias
    credential: AliasCredential
    server_final: str  # RFC 5802 §3 server-final-message: the client checks it proves the server


def mechanisms(settings: Settings) -> tuple[str, ...]:
    return scram.MECHANISMS if settings.managesieve_scram else ()


class Exchange:
    """One exchange; ``first`` and ``final`` read the config store, so run them off the event loop."""

    def __init__(self, store: ConfigStore, settings: Settings, mechanism: str, nonce: str | None = None) -> None:
        """``nonce``: the server's part of the nonce; random unless given (tests replay RFC 5802 §5)."""
        assert mechanism in scram.MECHANISMS
        self.store, self.settings, self.mechanism = store, settings, mechanism
        self._server = ScramMechanism(mechanism).make_server(self._auth_info, s_nonce=nonce)
        self._found: tuple[Alias, AliasCredential] | None = None
        self.address = ""

    def first(self, client_first: str) -> str:
        """The client-first-message in, the server-first-message out. Raises ``BadMessage``
        (and ``StoreUnavailable`` when the config store cannot be read)."""
        try:
            self._server.set_client_first(client_first)
            return str(self._server.get_server_first())
        except ScramException as exc:
            cause = exc.__cause__
            if cause is not None and not isinstance(cause, ScramException):
                raise cause from None  # the store's trouble, raised inside the lookup
            raise BadMessage(str(exc.args[0]) if exc.args else "malformed SCRAM message") from None

    def final(self, client_final: str) -> Verified:
        """The client-final-message in; the signed-in alias out. Raises ``AuthenticationFailed``
        (wrong password, unknown or disabled alias) or ``BadMessage``."""
        try:
            self._server.set_client_final(client_final)
        except ScramException as exc:
            if exc.server_error is not None and exc.server_error.value == "invalid-proof":
                raise AuthenticationFailed() from None
            raise BadMessage(str(exc.args[0]) if exc.args else "malformed SCRAM message") from None
        if self._found is None:
            raise AuthenticationFailed()  # cannot happen: a decoy's proof never verifies
        alias, credential = self._found
        return Verified(alias, credential, str(self._server.get_server_final()))

    def _auth_info(self, username: str) -> tuple[bytes, bytes, bytes, int]:
        self.address = username  # scramp has undone RFC 5802 §5.1's "=2C"/"=3D" and applied SASLprep
        found = credentials.find(self.store, self.address)
        if found is not None:
            verifier = scram.parse(found[1].scram).get(self.mechanism)
            if verifier is not None:
                self._found = found
                return verifier.auth_info()
        return self._decoy(self.address)

    def _decoy(self, address: str) -> tuple[bytes, bytes, bytes, int]:
        def part(label: bytes) -> bytes:
            digest = hashlib.sha1 if self.mechanism == "SCRAM-SHA-1" else hashlib.sha256
            return hmac.new(_DECOY_KEY, label + address.encode("utf-8"), digest).digest()

        return part(b"salt")[:16], part(b"stored"), part(b"server"), self.settings.scram_iterations
