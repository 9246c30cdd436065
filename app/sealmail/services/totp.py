"""Time-based one-time codes (RFC 6238) for the web's second factor: admins and aliases alike.

30-second steps, six digits, SHA-1 (what every authenticator app speaks), one step of clock drift
either side. The caller keeps the secret (an admin's in its account, an alias's sealed with its
mailbox key) and refuses a step used before (RFC 6238 §5.2: a code is accepted once).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

import pyotp

ISSUER = "Sealmail"


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits (RFC 4226 §4 recommends that length)


def uri(secret: str, account: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans (as a QR code) or is given."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def step(secret: str, code: str) -> int | None:
    """The RFC 6238 time step ``code`` is valid for (now, or one step either side), else None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(datetime.now(UTC))
    for candidate in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None
