"""SCRAM verifiers (RFC 5802) of an alias's password, kept beside its Argon2id verifier.

A verifier holds the salt, the iteration count, StoredKey and ServerKey: enough to check a client's
proof and to prove the server to it, never enough to sign in or to recover the password without
guessing it. scramp computes them (with SASLprep of the password, RFC 5802 §2.2). The stored text
is one RFC 5803 value per mechanism, one per line:
``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (base64).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from scramp import ScramException, ScramMechanism

MECHANISMS = ("SCRAM-SHA-1", "SCRAM-SHA-256")


@dataclass(frozen=True, slots=True)
class Verifier:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def auth_info(self) -> tuple[bytes, bytes, bytes, int]:
        """As scramp's ``auth_fn`` returns it."""
        return self.salt, self.stored_key, self.server_key, self.iterations


def make(password: str, iterations: int, salt: bytes | None = None) -> str | None:
    """The verifiers of ``password`` for every mechanism (each with its own random salt unless one is
    given), or None when SASLprep refuses the password (RFC 4013 §2.3 prohibited characters: no SCRAM
    client could send it either)."""
    lines = []
    try:
        for name in MECHANISMS:
            made = ScramMechanism(name).make_auth_info(password, iteration_count=iterations, salt=salt)
            salt_used, stored, server, count = made
            lines.append(f"{name}${count}:{_b64(salt_used)}${_b64(stored)}:{_b64(server)}")
    except ScramException:
        return None
    return "\n".join(lines)


def parse(text: str | None) -> dict[str, Verifier]:
    """The verifiers stored in ``text`` by mechanism; a damaged line is left out."""
    found: dict[str, Verifier] = {}
    for line in (text or "").splitlines():
        try:
            name, params, keys = line.split("$")
            count, salt = params.split(":")
            stored, server = keys.split(":")
            found[name] = Verifier(_unb64(salt), _unb64(stored), _unb64(server), int(count))
        except (ValueError, binascii.Error):
            continue
    return found


def iterations_of(text: str | None) -> int | None:
    """The iteration count the stored verifiers were made with (None: none stored)."""
    counts = {v.iterations for v in parse(text).values()}
    return counts.pop() if len(counts) == 1 else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
