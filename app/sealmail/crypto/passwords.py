"""Generated passwords and their Argon2id verifiers (argon2-cffi)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

if TYPE_CHECKING:
    from sealmail.settings import Settings

# 31 symbols without look-alikes (0/o, 1/l/i): easy to read aloud and to type on a phone.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_GROUPS, _GROUP_LEN = 5, 5  # 25 symbols: log2(31) * 25 ≈ 124 bits


def generate_password() -> str:
    """A random password such as ``k7m2q-x9dfe-...``, shown to the user once."""
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(_GROUP_LEN)) for _ in range(_GROUPS))
    return "-".join(groups)


def hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


def hash_password(settings: Settings, password: str) -> str:
    return hasher(settings).hash(password)


def verify_password(settings: Settings, verifier: str, password: str) -> bool:
    """Constant-time check; a malformed verifier counts as a mismatch rather than an error."""
    try:
        return hasher(settings).verify(verifier, password)
    except (VerificationError, InvalidHashError):
        return False
