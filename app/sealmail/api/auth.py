"""Bearer-token authentication for the REST API (RFC 6750): each operation needs one scope.

Failures from one address count toward the same per-IP lockout as every other login. A route
names its scope in its signature: ``token: AliasesRead``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sealmail.api.problems import problem
from sealmail.config.models import ApiToken
from sealmail.http.state import actor, peer, state_of
from sealmail.net.limits import Refused
from sealmail.services import tokens
from sealmail.services.credentials import AuthenticationFailed
from sealmail.services.eventlog import Actor


class ApiError(Exception):
    """Answer with ``response`` (a problem document) instead of the route's own."""

    def __init__(self, response: Response) -> None:
        self.response = response


bearer = HTTPBearer(auto_error=False, description="an API token made in the web admin or with POST /v1/tokens")


def require(scope: str) -> Callable[..., Awaitable[ApiToken]]:
    async def check(
        request: Request, given: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> ApiToken:
        state = state_of(request)
        ip = peer(request)
        limiter = state.ctx.limiter
        attempt = await limiter.reserve(ip, None)
        if isinstance(attempt, Refused):
            detail = (
                "too many authentications in progress from this address; try again in a moment"
                if attempt.busy
                else "too many failed authentications from this address; wait 15 minutes"
            )
            raise ApiError(problem(429, detail))
        if given is None:
            await attempt.cancel()
            raise ApiError(
                problem(401, "send an API token: Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
            )
        try:
            token = await state.call(tokens.authenticate, state.ctx.config, given.credentials)
        except AuthenticationFailed:
            await attempt.failed()
            raise ApiError(
                problem(
                    401,
                    "the token is unknown or revoked",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            ) from None
        await attempt.succeeded()
        if token.alias_id is not None and scope != tokens.ACCOUNT_SCOPE:
            raise ApiError(
                problem(
                    403,
                    "a token made for one address can only use that address's own operations (/v1/me)",
                    required_scope=scope,
                    headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
                )
            )
        if token.alias_id is None and scope == tokens.ACCOUNT_SCOPE:
            raise ApiError(
                problem(
                    403,
                    "this operation is for a token a user made for their own address, in the self-service area",
                    required_scope=scope,
                )
            )
        if not tokens.allows(token, scope):
            raise ApiError(
                problem(
                    403,
                    f"this token lacks the {scope} scope",
                    required_scope=scope,
                    headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
                )
            )
        return token

    return check


# One type per scope (``tokens.SCOPES``): the token that was checked for it.
DomainsRead = Annotated[ApiToken, Depends(require("domains:read"))]
DomainsWrite = Annotated[ApiToken, Depends(require("domains:write"))]
AliasesRead = Annotated[ApiToken, Depends(require("aliases:read"))]
AliasesWrite = Annotated[ApiToken, Depends(require("aliases:write"))]
PasswordsWrite = Annotated[ApiToken, Depends(require("passwords:write"))]
LogsRead = Annotated[ApiToken, Depends(require("logs:read"))]
ReportsRead = Annotated[ApiToken, Depends(require("reports:read"))]
TokensRead = Annotated[ApiToken, Depends(require("tokens:read"))]
TokensWrite = Annotated[ApiToken, Depends(require("tokens:write"))]
# A user's own token (``/v1/me``): good for its alias only.
OwnToken = Annotated[ApiToken, Depends(require(tokens.ACCOUNT_SCOPE))]


def token_actor(request: Request, token: ApiToken) -> Actor:
    """A token's changes are recorded under its name and id."""
    return actor(request, "api", f"token {token.name} ({token.id})")
