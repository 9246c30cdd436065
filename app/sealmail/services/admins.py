"""Admin accounts of the web admin: the first-run account, sign-in, TOTP two-factor, recovery codes.

Passwords are Argon2id verifiers (the settings' cost); recovery codes are random 80-bit values of
which only SHA-256 digests are kept, consumed on use. TOTP codes are checked by ``services.totp``
(RFC 6238); an admin's secret is kept in its account record as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sealmail.addresses import parse_mailbox
from sealmail.config.models import AdminAccount, now
from sealmail.crypto.passwords import hash_password, verify_password
from sealmail.errors import AlreadyExists, InvalidInput, NotFound
from sealmail.services import totp
from sealmail.services.credentials import AuthenticationFailed

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.settings import Settings

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
RECOVERY_CODES = 10
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes, as alias passwords
_CODE_GROUPS = 4  # 4 x 4 symbols: log2(31) * 16 ≈ 79 bits


def normalize_email(text: str) -> str:
    try:
        return parse_mailbox(text.strip()).text
    except InvalidInput:
        raise InvalidInput(f"{text.strip() or 'an empty value'} is not an email address") from None


def check_password_rules(password: str, confirm: str | None = None) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password can have at most {MAX_PASSWORD_LENGTH} characters")
    if confirm is not None and not hmac.compare_digest(password.encode(), confirm.encode()):
        raise InvalidInput("the two passwords differ")


def has_admin(store: ConfigStore) -> bool:
    return bool(store.list_admins())


def create_admin(
    store: ConfigStore,
    settings: Settings,
    email: str,
    password: str,
    *,
    confirm: str | None = None,
    first: bool = False,
) -> AdminAccount:
    """Add an admin account. ``first``: only while none exists (the first-run wizard)."""
    address = normalize_email(email)
    check_password_rules(password, confirm)
    if first and has_admin(store):
        raise AlreadyExists("an admin account exists already: sign in instead")
    admin = store.add_admin(AdminAccount(email=address, password_hash=hash_password(settings, password)))
    forget_basic_auth(settings)  # an admin exists: the first-run gate and its secret are over
    return admin


_DUMMY: dict[int, str] = {}


def authenticate(store: ConfigStore, settings: Settings, email: str, password: str) -> AdminAccount:
    """The account for ``email`` if ``password`` is right; else ``AuthenticationFailed`` (same cost and
    message for an unknown address)."""
    try:
        admin = store.find_admin(normalize_email(email))
    except InvalidInput:
        admin = None
    if admin is None:
        key = hash((settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism))
        if key not in _DUMMY:
            _DUMMY[key] = hash_password(settings, secrets.token_urlsafe(16))
        verify_password(settings, _DUMMY[key], password)
        raise AuthenticationFailed()
    if not verify_password(settings, admin.password_hash, password):
        raise AuthenticationFailed()
    return admin


def admin_by_id(store: ConfigStore, admin_id: str) -> AdminAccount | None:
    try:
        return store.get_admin(admin_id)
    except NotFound:
        return None


def session_stamp(admin: AdminAccount) -> str:
    """What a web session remembers of the credentials it was opened with (issue 16).

    A digest of the password verifier: a changed password changes it, so every session opened
    before the change (a stolen password's, on any web host: sessions live in Redis) no longer
    matches the account and must sign in again. The session that made the change takes the new one.
    """
    return hashlib.sha256(b"sealmail-web-session\0" + admin.password_hash.encode()).hexdigest()[:32]


def record_login(store: ConfigStore, admin: AdminAccount) -> AdminAccount:
    current = store.get_admin(admin.id)  # fresh: the sign-in may have used up a recovery code meanwhile
    return store.update_admin(replace(current, last_login_at=now()))


def change_password(
    store: ConfigStore, settings: Settings, admin_id: str, current: str, new: str, confirm: str
) -> AdminAccount:
    admin = store.get_admin(admin_id)
    if not verify_password(settings, admin.password_hash, current):
        raise InvalidInput("the current password is wrong")
    check_password_rules(new, confirm)
    return store.update_admin(replace(admin, password_hash=hash_password(settings, new)))


# ---- two-factor ----------------------------------------------------------------------------------
new_totp_secret = totp.new_secret
totp_uri = totp.uri


def _code_digest(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").replace(" ", "").lower().encode()).hexdigest()


def _new_recovery_codes() -> tuple[list[str], list[str]]:
    codes = [
        "-".join("".join(secrets.choice(_CODE_ALPHABET) for _ in range(4)) for _ in range(_CODE_GROUPS))
        for _ in range(RECOVERY_CODES)
    ]
    return codes, [_code_digest(c) for c in codes]


def enable_totp(store: ConfigStore, admin_id: str, secret: str, code: str) -> list[str]:
    """Turn two-factor on once the user proved their app has ``secret``; returns recovery codes (shown once)."""
    admin = store.get_admin(admin_id)
    if admin.totp_secret:
        raise AlreadyExists("two-factor authentication is on already")
    if totp.step(secret, code) is None:
        raise InvalidInput("that code is not the current one: check the app and the device's clock, then try again")
    codes, digests = _new_recovery_codes()
    store.update_admin(replace(admin, totp_secret=secret, recovery_codes=digests))
    return codes


def disable_totp(store: ConfigStore, admin_id: str) -> AdminAccount:
    admin = store.get_admin(admin_id)
    return store.update_admin(replace(admin, totp_secret=None, recovery_codes=[]))


def regenerate_recovery_codes(store: ConfigStore, admin_id: str) -> list[str]:
    admin = store.get_admin(admin_id)
    if not admin.totp_secret:
        raise InvalidInput("turn on two-factor authentication first")
    codes, digests = _new_recovery_codes()
    store.update_admin(replace(admin, recovery_codes=digests))
    return codes


@dataclass(frozen=True, slots=True)
class SecondFactor:
    method: str  # "totp" or "recovery"
    step: int | None = None  # the TOTP time step used (callers refuse a step used before: RFC 6238 §5.2)
    remaining_codes: int = 0


def check_second_factor(store: ConfigStore, admin_id: str, code: str) -> SecondFactor:
    """A TOTP code or an unused recovery code (which is used up). Raises ``AuthenticationFailed``."""
    try:
        admin = store.get_admin(admin_id)
    except NotFound:
        raise AuthenticationFailed() from None
    if not admin.totp_secret:
        raise AuthenticationFailed()
    step = totp.step(admin.totp_secret, code)
    if step is not None:
        return SecondFactor("totp", step, len(admin.recovery_codes))
    digest = _code_digest(code)
    if any(hmac.compare_digest(stored, digest) for stored in admin.recovery_codes):
        # Spent in one atomic step of the config store: of two requests with the same code at the
        # same moment, only one gets it (a read here and a write later would let both through).
        left = store.consume_recovery_code(admin.id, digest)
        if left is not None:
            return SecondFactor("recovery", None, left)
    raise AuthenticationFailed()


# ---- the first-run gate ---------------------------------------------------------------------------
BASIC_AUTH_FILE = "web-basic-auth.json"


def generate_basic_auth() -> tuple[str, str]:
    from sealmail.crypto.passwords import generate_password

    return "admin-" + secrets.token_hex(3), generate_password()


def basic_auth_credentials(settings: Settings) -> tuple[str, str, bool]:
    """The browser basic-auth gate's (username, password, made_now) in front of the first run.

    ``AUTH_BASIC_USERNAME``/``AUTH_BASIC_PASSWORD`` when set; otherwise generated once and kept in
    ``<data>/web-basic-auth.json`` (mode 0600) so every web process and restart uses the same pair,
    until the first admin account exists (``forget_basic_auth``).
    """
    import json
    import os

    if settings.auth_basic_password is not None:
        return settings.auth_basic_username or "admin", settings.auth_basic_password.get_secret_value(), False
    path = settings.data_dir / BASIC_AUTH_FILE
    made = False
    if not path.exists():
        user, password = generate_basic_auth()
        if settings.auth_basic_username:
            user = settings.auth_basic_username
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"username": user, "password": password}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
            made = True
        except FileExistsError:  # another web process made it first: use theirs
            pass
        finally:
            tmp.unlink(missing_ok=True)
    data = json.loads(path.read_text())
    return data["username"], data["password"], made


def forget_basic_auth(settings: Settings) -> None:
    """Delete the generated gate pair (``web-basic-auth.json``): once an admin exists nothing asks for it.

    A pair set in the environment (``AUTH_BASIC_PASSWORD``) is the operator's to remove from the
    env file; the gate no longer accepts or needs it either way.
    """
    (settings.data_dir / BASIC_AUTH_FILE).unlink(missing_ok=True)
