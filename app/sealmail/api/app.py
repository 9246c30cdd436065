"""The REST API: ``/v1`` over the shared services, documented at ``/v1/openapi.json``.

Authentication: ``Authorization: Bearer sm_…`` (RFC 6750); each operation needs one scope.
Failures from one address count toward the same per-IP lockout as every other login. Errors are
RFC 9457 problem details. Every write is recorded in the audit log with the token's name.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import asdict
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from sealmail.api.problems import PROBLEM_RESPONSES, problem
from sealmail.api.schemas import (
    AliasIn,
    AliasOut,
    AliasPatch,
    DnsRecordOut,
    DomainIn,
    DomainOut,
    LogPageOut,
    PasswordIn,
    PasswordOut,
    TokenCreated,
    TokenIn,
    TokenOut,
)
from sealmail.config.models import ApiToken
from sealmail.errors import AlreadyExists, InvalidInput, NotFound, SealmailError
from sealmail.services import aliases, credentials, domains, eventlog, tokens
from sealmail.services.credentials import AuthenticationFailed

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.config.models import Alias
    from sealmail.services.dnscheck import Lookup

API_VERSION = "1.0.0"


class ApiError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class ApiState:
    def __init__(self, ctx: AppContext, lookup: Lookup | None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self._lookup = lookup

    @property
    def lookup(self) -> Lookup:
        if self._lookup is None:
            from sealmail.web.dnslookup import make_lookup

            self._lookup = make_lookup(self.settings)
        return self._lookup

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


def state_of(request: Request) -> ApiState:
    return request.app.state.api


def _peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


bearer = HTTPBearer(auto_error=False, description="an API token made in the web admin or with POST /v1/tokens")


def require(scope: str) -> Any:
    async def check(
        request: Request, given: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> ApiToken:
        state = state_of(request)
        ip = _peer(request)
        limiter = state.ctx.limiter
        attempt = await limiter.reserve(ip, None)
        if attempt is None:
            raise ApiError(problem(429, "too many failed authentications from this address; wait 15 minutes"))
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


def Scope(name: str) -> Any:  # noqa: N802 - reads as a type in signatures: token: Scope("aliases:read")
    return Annotated[ApiToken, Depends(require(name))]


async def audit(request: Request, token: ApiToken, action: str, **fields: Any) -> None:
    state = state_of(request)
    actor = f"token {token.name} ({token.id})"
    await state.call(eventlog.audit, state.ctx.config, "api", actor, action, peer=_peer(request), **fields)


def _quota(value: int | str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput("quota must be a number of bytes or text such as 2G")
    if isinstance(value, int):
        if value < 0:
            raise InvalidInput("quota cannot be negative")
        return value
    return aliases.parse_size(value)


def _alias_out(store: Any, settings: Any, alias: Alias) -> AliasOut:
    info = aliases.describe_alias(store, alias)
    credential = store.get_credential(alias.id)
    return AliasOut(
        **{k: info[k] for k in ("id", "address", "kind", "recipients", "storage", "enabled", "disabled_reply")},
        domain=alias.domain,
        quota=alias.quota,
        quota_effective=credentials.quota_of(alias, settings),
        usage_bytes=credential.usage_bytes if credential else None,
        description=alias.description,
        has_password=info["has_password"],
        created_at=alias.created_at,
        updated_at=alias.updated_at,
    )


def _token_out(token: ApiToken) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        scopes=token.scopes,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


async def _alias(state: ApiState, alias_id: str) -> Alias:
    return await state.call(state.ctx.config.get_alias, alias_id)


def _address(alias: Alias) -> str:
    return f"{alias.name}@{alias.domain}"


router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


# ---- domains ---------------------------------------------------------------------------------------
@router.get("/domains", tags=["domains"], summary="List domains")
async def list_domains(request: Request, token: Scope("domains:read")) -> list[DomainOut]:
    state = state_of(request)
    found = await state.call(domains.list_domains, state.ctx.config)
    return [DomainOut(**asdict(d)) for d in found]


@router.post("/domains", tags=["domains"], status_code=201, summary="Add a domain (makes its DKIM keys)")
async def add_domain(request: Request, body: DomainIn, token: Scope("domains:write")) -> DomainOut:
    state = state_of(request)
    domain = await state.call(domains.add_domain, state.ctx.config, body.name, state.settings)
    await audit(request, token, "domain.add", domain=domain.name)
    return DomainOut(**asdict(domain))


@router.get("/domains/{name}", tags=["domains"], summary="One domain")
async def get_domain(request: Request, name: str, token: Scope("domains:read")) -> DomainOut:
    state = state_of(request)
    return DomainOut(**asdict(await state.call(domains.get_domain, state.ctx.config, name)))


@router.delete(
    "/domains/{name}", tags=["domains"], status_code=204, summary="Remove a domain, its aliases and mailboxes"
)
async def remove_domain(request: Request, name: str, token: Scope("domains:write")) -> Response:
    state = state_of(request)
    domain = await state.call(domains.get_domain, state.ctx.config, name)
    await state.call(domains.remove_domain, state.ctx.config, state.settings, domain.name)
    await audit(request, token, "domain.remove", domain=domain.name)
    return Response(status_code=204)


@router.get("/domains/{name}/dns", tags=["domains"], summary="The DNS records a domain needs")
async def dns_records(
    request: Request,
    name: str,
    token: Scope("domains:read"),
    check: Annotated[bool, Query(description="also check each record live through the server's resolver")] = False,
) -> list[DnsRecordOut]:
    from sealmail.services.dnscheck import check_records
    from sealmail.services.dnsrecords import records_for

    state = state_of(request)
    domain = await state.call(domains.get_domain, state.ctx.config, name)
    records = await state.call(records_for, state.settings, domain.name)
    if not check:
        return [DnsRecordOut(**r.as_dict()) for r in records]
    return [DnsRecordOut(**c.as_dict()) for c in await check_records(state.lookup, records)]


# ---- aliases ---------------------------------------------------------------------------------------
@router.get("/aliases", tags=["aliases"], summary="List or search aliases")
async def list_aliases(
    request: Request,
    token: Scope("aliases:read"),
    domain: Annotated[str | None, Query(max_length=253)] = None,
    q: Annotated[str, Query(max_length=200, description="part of an address, recipient or note")] = "",
) -> list[AliasOut]:
    state = state_of(request)
    store = state.ctx.config

    def build() -> list[AliasOut]:
        return [_alias_out(store, state.settings, a) for a in aliases.search_aliases(store, q, domain)]

    return await state.call(build)


@router.post("/aliases", tags=["aliases"], status_code=201, summary="Create an alias")
async def create_alias(request: Request, body: AliasIn, token: Scope("aliases:write")) -> AliasOut:
    state = state_of(request)
    store = state.ctx.config
    alias = await state.call(
        aliases.add_alias,
        store,
        body.address,
        recipients=body.recipients,
        storage=body.storage,
        enabled=body.enabled,
        disabled_reply=body.disabled_reply,
        quota=_quota(body.quota),
        description=body.description,
        allow_private_webhooks=state.settings.webhook_allow_private,
    )
    await audit(request, token, "alias.create", domain=alias.domain, address=_address(alias))
    return await state.call(_alias_out, store, state.settings, alias)


@router.get("/aliases/{alias_id}", tags=["aliases"], summary="One alias, with quota and usage")
async def get_alias(request: Request, alias_id: str, token: Scope("aliases:read")) -> AliasOut:
    state = state_of(request)
    return await state.call(_alias_out, state.ctx.config, state.settings, await _alias(state, alias_id))


@router.patch("/aliases/{alias_id}", tags=["aliases"], summary="Change an alias (only the fields given)")
async def update_alias(request: Request, alias_id: str, body: AliasPatch, token: Scope("aliases:write")) -> AliasOut:
    state = state_of(request)
    store = state.ctx.config
    alias = await _alias(state, alias_id)
    given = body.model_fields_set
    updated = await state.call(
        aliases.update_alias,
        store,
        _address(alias),
        recipients=body.recipients,
        storage=body.storage,
        enabled=body.enabled,
        disabled_reply=body.disabled_reply,
        quota=_quota(body.quota),
        clear_quota="quota" in given and body.quota is None,
        description=body.description,
        allow_private_webhooks=state.settings.webhook_allow_private,
        settings=state.settings,
    )
    await audit(
        request,
        token,
        "alias.update",
        domain=updated.domain,
        address=_address(updated),
        detail=", ".join(sorted(given)),
    )
    return await state.call(_alias_out, store, state.settings, updated)


@router.delete("/aliases/{alias_id}", tags=["aliases"], status_code=204, summary="Remove an alias and its mailbox")
async def remove_alias(request: Request, alias_id: str, token: Scope("aliases:write")) -> Response:
    state = state_of(request)
    alias = await _alias(state, alias_id)
    await state.call(aliases.remove_alias, state.ctx.config, state.settings, _address(alias))
    await audit(request, token, "alias.remove", domain=alias.domain, address=_address(alias))
    return Response(status_code=204)


@router.post(
    "/aliases/{alias_id}/password",
    tags=["aliases"],
    summary="Generate a new password (returned once)",
    description="An alias whose mailbox has keys keeps its mail only with `current_password` or `recovery_key`; "
    "`reset_mailbox` deletes the mailbox instead.",
)
async def generate_password(
    request: Request, alias_id: str, token: Scope("passwords:write"), body: PasswordIn | None = None
) -> JSONResponse:
    from sealmail.services.clientconfig import client_settings

    state = state_of(request)
    body = body or PasswordIn()
    alias = await _alias(state, alias_id)
    try:
        password = await state.call(
            credentials.set_password,
            state.ctx.config,
            state.settings,
            _address(alias),
            old_password=body.current_password,
            recovery_key=body.recovery_key,
            reset_mailbox=body.reset_mailbox,
        )
    except AuthenticationFailed:
        raise InvalidInput("the current password or recovery key is wrong") from None
    shown = await state.call(aliases.alias_address, state.ctx.config, alias)
    how = "reset mailbox" if body.reset_mailbox else "generated"
    await audit(request, token, "alias.password", domain=alias.domain, address=_address(alias), detail=how)
    out = PasswordOut(
        address=shown,
        password=password,
        client_settings=[asdict(c) for c in client_settings(state.settings, shown)],  # type: ignore[misc]
    )
    return JSONResponse(out.model_dump(), headers={"Cache-Control": "no-store"})


# ---- tokens ----------------------------------------------------------------------------------------
@router.get("/tokens", tags=["tokens"], summary="List API tokens (never their secrets)")
async def list_tokens(request: Request, token: Scope("tokens:read")) -> list[TokenOut]:
    state = state_of(request)
    return [_token_out(t) for t in await state.call(tokens.list_tokens, state.ctx.config)]


@router.post("/tokens", tags=["tokens"], status_code=201, summary="Create a token (its secret is returned once)")
async def create_token(request: Request, body: TokenIn, token: Scope("tokens:write")) -> JSONResponse:
    state = state_of(request)
    try:
        made, secret = await state.call(tokens.create_token, state.ctx.config, body.name, body.scopes, granted_by=token)
    except tokens.ScopeEscalation as exc:
        raise ApiError(problem(403, str(exc), missing_scopes=exc.missing)) from None
    await audit(request, token, "token.create", detail=f"{made.name} ({', '.join(made.scopes)})")
    out = TokenCreated(**_token_out(made).model_dump(), token=secret)
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"})


@router.delete("/tokens/{token_id}", tags=["tokens"], summary="Revoke a token (it stops working at once)")
async def revoke_token(request: Request, token_id: str, token: Scope("tokens:write")) -> TokenOut:
    state = state_of(request)
    revoked = await state.call(tokens.revoke_token, state.ctx.config, token_id)
    await audit(request, token, "token.revoke", detail=revoked.name)
    return _token_out(revoked)


# ---- logs ------------------------------------------------------------------------------------------
async def _logs(request: Request, kind: str, **filters: Any) -> LogPageOut:
    state = state_of(request)
    page = await state.call(eventlog.query, state.ctx.config, kind, **filters)
    return LogPageOut(entries=[asdict(e) for e in page.entries], next_cursor=page.next_cursor)  # type: ignore[misc]


Limit = Annotated[int, Query(ge=1, le=1000, description="entries per page")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
Since = Annotated[datetime | None, Query(description="inclusive, ISO 8601")]
Until = Annotated[datetime | None, Query(description="exclusive, ISO 8601")]
Text = Annotated[str | None, Query(max_length=600)]


@router.get("/logs/delivery", tags=["logs"], summary="Delivery log, newest first")
async def delivery_log(
    request: Request,
    token: Scope("logs:read"),
    direction: Annotated[str | None, Query(pattern="^(outbound|inbound)$")] = None,
    status: Text = None,
    domain: Text = None,
    address: Text = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> LogPageOut:
    return await _logs(
        request,
        "delivery",
        direction=direction,
        status=status,
        domain=domain,
        address=address,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )


@router.get("/logs/errors", tags=["logs"], summary="Error log, newest first")
async def error_log(
    request: Request,
    token: Scope("logs:read"),
    status: Text = None,
    domain: Text = None,
    address: Text = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> LogPageOut:
    return await _logs(
        request,
        "error",
        status=status,
        domain=domain,
        address=address,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )


@router.get("/logs/audit", tags=["logs"], summary="Audit log (changes through the API and the web admin)")
async def audit_log(
    request: Request,
    token: Scope("logs:read"),
    status: Annotated[str | None, Query(max_length=100, description="the action, e.g. alias.create")] = None,
    domain: Text = None,
    address: Text = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> LogPageOut:
    return await _logs(
        request,
        "audit",
        status=status,
        domain=domain,
        address=address,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )


# ---- the application -------------------------------------------------------------------------------
def _pointer(loc: tuple[Any, ...]) -> dict[str, str]:
    where, *path = loc or ("body",)
    if where == "body":
        return {"pointer": "#/" + "/".join(str(p) for p in path)}
    return {where if where in ("query", "header", "path") else "location": ".".join(str(p) for p in path)}


def create_app(ctx: AppContext, *, lookup: Lookup | None = None) -> FastAPI:
    from sealmail.services.tokens import SCOPES

    scopes = "\n".join(f"- `{s}`: {what}" for s, what in SCOPES.items())
    app = FastAPI(
        title="Sealmail API",
        version=API_VERSION,
        description="Domains, aliases, passwords, API tokens and the delivery/error/audit logs of a Sealmail "
        f"server. Authenticate with `Authorization: Bearer <token>`. Scopes:\n\n{scopes}\n\n"
        "Errors are RFC 9457 problem details (`application/problem+json`).",
        openapi_url="/v1/openapi.json",
        docs_url=None,  # the interactive docs load scripts from a CDN; the document itself is enough
        redoc_url=None,
    )
    app.state.api = ApiState(ctx, lookup)
    app.include_router(router)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return exc.response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"detail": e.get("msg", "invalid").removeprefix("Value error, "), **_pointer(tuple(e.get("loc", ())))}
            for e in exc.errors()
        ]
        summary = "; ".join(
            f"{next(iter(v for k, v in e.items() if k != 'detail'), '')}: {e['detail']}".lstrip(": ") for e in errors
        )
        return problem(422, summary or "invalid request", title="Invalid input", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else ""
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(SealmailError)
    async def _service(request: Request, exc: SealmailError) -> Response:
        if isinstance(exc, NotFound):
            return problem(404, str(exc))
        if isinstance(exc, AlreadyExists):
            return problem(409, str(exc))
        if isinstance(exc, InvalidInput):
            return problem(422, str(exc), title="Invalid input")
        return problem(400, str(exc))

    return app
