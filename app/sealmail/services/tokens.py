"""API tokens: random bearer secrets shown once, kept as SHA-256 digests, scoped and revocable.

A token is ``sm_`` followed by 256 random bits (URL-safe base64). It is high-entropy, so a fast
hash is enough to store it (unlike passwords, it cannot be guessed from a dictionary).

Two kinds: an administrator's token holds scopes from ``SCOPES``; a token a user made for their
own alias (``alias_id`` set, ``services.selfservice``) holds only ``ACCOUNT_SCOPE`` and is good
for that alias's own operations (``/v1/me``), never for an administrator's, whatever its record
says. A new password for the alias revokes its user's tokens (``revoke_alias_tokens``, called by
``credentials.set_password``): whoever feared for the password fears for what was made with it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from sealmail.config.models import ApiToken, now
from sealmail.errors import InvalidInput, SealmailError
from sealmail.services.credentials import AuthenticationFailed

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sealmail.config.base import ConfigStore

PREFIX = "sm_"
# scope -> what it allows (shown in the web admin and the OpenAPI document)
SCOPES: dict[str, str] = {
    "domains:read": "list domains and their DNS records",
    "domains:write": "add and remove domains",
    "aliases:read": "list aliases, their recipients, quota and usage",
    "aliases:write": "create, change and remove aliases",
    "passwords:write": "generate alias passwords (returned once)",
    "logs:read": "read the delivery, error and audit logs",
    "reports:read": "read the DMARC and TLS reports other mail servers sent",
    "tokens:read": "list API tokens",
    "tokens:write": "create and revoke API tokens",
}
ACCOUNT_SCOPE = "account"  # a user's own token: their own alias's operations only
MAX_NAME = 100
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = []
    for given in scopes:
        scope = given.strip()
        if scope not in SCOPES:
            raise InvalidInput(f"unknown scope {scope!r}; scopes are: {', '.join(SCOPES)}")
        if scope not in chosen:
            chosen.append(scope)
    if not chosen:
        raise InvalidInput("a token needs at least one scope")
    return [s for s in SCOPES if s in chosen]


class ScopeEscalation(SealmailError):
    """A token asked to mint scopes it does not hold itself."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"a token can only grant scopes it holds itself; this one lacks {', '.join(missing)}")
        self.missing = missing


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("give the token a name (what or who uses it)")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"a token name can have at most {MAX_NAME} characters")
    return name


def create_token(
    store: ConfigStore, name: str, scopes: Iterable[str], *, granted_by: ApiToken | None = None
) -> tuple[ApiToken, str]:
    """A new token and its secret (shown once; only its digest is stored).

    ``granted_by`` is the token making it (the API): the new token's scopes must be a subset of
    its own, or ``ScopeEscalation``. The web admin and the CLI (an administrator) pass None.
    """
    name = _check_name(name)
    chosen = check_scopes(scopes)
    if granted_by is not None:
        missing = [s for s in chosen if not allows(granted_by, s)]
        if missing:
            raise ScopeEscalation(missing)
    secret = PREFIX + secrets.token_urlsafe(32)
    token = store.add_token(ApiToken(name=name, token_hash=digest(secret), scopes=chosen))
    return token, secret


def create_alias_token(store: ConfigStore, alias_id: str, name: str) -> tuple[ApiToken, str]:
    """A user's token for their own alias and its secret (shown once)."""
    name = _check_name(name)
    store.get_alias(alias_id)
    secret = PREFIX + secrets.token_urlsafe(32)
    token = store.add_token(ApiToken(name=name, token_hash=digest(secret), scopes=[ACCOUNT_SCOPE], alias_id=alias_id))
    return token, secret


def revoke_alias_tokens(store: ConfigStore, alias_id: str) -> list[ApiToken]:
    """Revoke every live token the alias's user made (an administrator's tokens are not theirs) and
    return them; revoked, not deleted, so the audit log's entries keep naming tokens that existed."""
    return [store.revoke_token(t.id) for t in store.list_alias_tokens(alias_id) if t.revoked_at is None]


def list_tokens(store: ConfigStore) -> list[ApiToken]:
    return store.list_tokens()


def revoke_token(store: ConfigStore, token_id: str) -> ApiToken:
    return store.revoke_token(token_id)


def authenticate(store: ConfigStore, secret: str) -> ApiToken:
    """The live token for ``secret``; ``AuthenticationFailed`` for unknown, malformed or revoked ones."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        raise AuthenticationFailed()
    token = store.find_token_by_hash(digest(secret))
    if token is None or token.revoked_at is not None:
        raise AuthenticationFailed()
    moment = now()
    if token.last_used_at is None or moment - token.last_used_at >= _TOUCH_EVERY:
        token = store.update_token(replace(token, last_used_at=moment))
    return token


def allows(token: ApiToken, scope: str) -> bool:
    if token.alias_id is not None:  # a user's own token never holds an administrator's scope
        return scope == ACCOUNT_SCOPE
    return scope in token.scopes and scope != ACCOUNT_SCOPE
