"""The REST API's routes: ``/v1`` domains, aliases, passwords, tokens, logs, spam statistics, and the
DMARC and TLS reports other mail servers sent.

Each route checks its scope (``sealmail.api.auth``), parses its body, calls a service (the changes
through ``services.operations``, which writes the audit entry with the token's name) and answers
with a schema from ``sealmail.api.schemas``.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from sealmail.api.auth import (
    AliasesRead,
    AliasesWrite,
    ApiError,
    DomainsRead,
    DomainsWrite,
    LogsRead,
    PasswordsWrite,
    ReportsRead,
    TokensRead,
    TokensWrite,
    token_actor,
)
from sealmail.api.problems import PROBLEM_RESPONSES, problem
from sealmail.api.schemas import (
    AliasIn,
    AliasOut,
    AliasPatch,
    DmarcReportOut,
    DmarcSummaryOut,
    DnsRecordOut,
    DomainIn,
    DomainOut,
    DomainPatch,
    LogPageOut,
    PasswordIn,
    PasswordOut,
    SendingOut,
    SpamStatsOut,
    TlsReportOut,
    TlsSummaryOut,
    TokenCreated,
    TokenIn,
    TokenOut,
)
from sealmail.config.models import ApiToken, DmarcReport, TlsReport
from sealmail.errors import InvalidInput
from sealmail.http.state import HttpState, state_of
from sealmail.services import aliases, credentials, domains, eventlog, operations, selfservice, sendlimits, tokens
from sealmail.services.credentials import AuthenticationFailed
from sealmail.services.eventlog import LogFilters
from sealmail.services.operations import AliasFields

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.config.models import Alias, LogKind
    from sealmail.settings import Settings


def _alias_out(store: ConfigStore, settings: Settings, alias: Alias) -> AliasOut:
    info = aliases.describe_alias(store, alias)
    credential = store.get_credential(alias.id)
    return AliasOut.model_validate(
        {
            **{k: info[k] for k in ("id", "address", "kind", "recipients", "storage", "enabled", "disabled_reply")},
            "domain": alias.domain,
            "quota": alias.quota,
            "quota_effective": credentials.quota_of(alias, settings),
            "usage_bytes": credential.usage_bytes if credential else None,
            "description": alias.description,
            "has_password": info["has_password"],
            "two_factor": bool(credential and credential.totp_secret),
            "sending_blocked": alias.sending_blocked,
            "created_at": alias.created_at,
            "updated_at": alias.updated_at,
        }
    )


def _token_out(token: ApiToken) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        scopes=token.scopes,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
        alias_id=token.alias_id,
    )


async def _alias(state: HttpState, alias_id: str) -> Alias:
    return await state.call(state.ctx.config.get_alias, alias_id)


router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


# ---- domains ---------------------------------------------------------------------------------------
@router.get("/domains", tags=["domains"], summary="List domains")
async def list_domains(request: Request, token: DomainsRead) -> list[DomainOut]:
    state = state_of(request)
    found = await state.call(domains.list_domains, state.ctx.config)
    return [DomainOut.model_validate(asdict(d)) for d in found]


@router.post("/domains", tags=["domains"], status_code=201, summary="Add a domain (makes its DKIM keys)")
async def add_domain(request: Request, body: DomainIn, token: DomainsWrite) -> DomainOut:
    state = state_of(request)
    who = token_actor(request, token)
    domain = await state.call(operations.add_domain, state.ctx.config, state.settings, who, body.name)
    return DomainOut.model_validate(asdict(domain))


@router.get("/domains/{name}", tags=["domains"], summary="One domain")
async def get_domain(request: Request, name: str, token: DomainsRead) -> DomainOut:
    state = state_of(request)
    return DomainOut.model_validate(asdict(await state.call(domains.get_domain, state.ctx.config, name)))


@router.patch(
    "/domains/{name}",
    tags=["domains"],
    summary="Change a domain's spam thresholds (only the fields given)",
    description="Scores from rspamd at or above `spam_reject` are refused (550 5.7.1), `spam_defer` deferred "
    "(451 4.7.1), `spam_junk` filed in Junk. An explicit null clears one: rspamd's own action decides that band.",
)
async def update_domain(request: Request, name: str, body: DomainPatch, token: DomainsWrite) -> DomainOut:
    state = state_of(request)
    changes = {key.removeprefix("spam_"): getattr(body, key) for key in body.model_fields_set}
    who = token_actor(request, token)
    domain = await state.call(operations.set_spam_thresholds, state.ctx.config, who, name, changes)
    return DomainOut.model_validate(asdict(domain))


@router.delete(
    "/domains/{name}", tags=["domains"], status_code=204, summary="Remove a domain, its aliases and mailboxes"
)
async def remove_domain(request: Request, name: str, token: DomainsWrite) -> Response:
    state = state_of(request)
    domain = await state.call(domains.get_domain, state.ctx.config, name)
    await state.call(operations.remove_domain, state.ctx.config, state.settings, token_actor(request, token), domain)
    return Response(status_code=204)


@router.get("/domains/{name}/dns", tags=["domains"], summary="The DNS records a domain needs")
async def dns_records(
    request: Request,
    name: str,
    token: DomainsRead,
    check: Annotated[bool, Query(description="also check each record live through the server's resolver")] = False,
) -> list[DnsRecordOut]:
    from sealmail.services.dnscheck import check_records
    from sealmail.services.dnsrecords import records_for

    state = state_of(request)
    domain = await state.call(domains.get_domain, state.ctx.config, name)
    records = await state.call(records_for, state.settings, domain.name, state.ctx.config)
    if not check:
        return [DnsRecordOut.model_validate(r.as_dict()) for r in records]
    return [DnsRecordOut.model_validate(c.as_dict()) for c in await check_records(state.lookup, records)]


# ---- aliases ---------------------------------------------------------------------------------------
@router.get("/aliases", tags=["aliases"], summary="List or search aliases")
async def list_aliases(
    request: Request,
    token: AliasesRead,
    domain: Annotated[str | None, Query(max_length=253)] = None,
    q: Annotated[str, Query(max_length=200, description="part of an address, recipient or note")] = "",
) -> list[AliasOut]:
    state = state_of(request)
    store = state.ctx.config

    def build() -> list[AliasOut]:
        return [_alias_out(store, state.settings, a) for a in aliases.search_aliases(store, q, domain)]

    return await state.call(build)


@router.post("/aliases", tags=["aliases"], status_code=201, summary="Create an alias")
async def create_alias(request: Request, body: AliasIn, token: AliasesWrite) -> AliasOut:
    state = state_of(request)
    store = state.ctx.config
    fields = AliasFields(
        recipients=body.recipients,
        storage=body.storage,
        enabled=body.enabled,
        disabled_reply=body.disabled_reply,
        quota=aliases.parse_quota(body.quota),
        description=body.description,
    )
    who = token_actor(request, token)
    alias = await state.call(operations.create_alias, store, state.settings, who, body.address, fields)
    return await state.call(_alias_out, store, state.settings, alias)


@router.get("/aliases/{alias_id}", tags=["aliases"], summary="One alias, with quota and usage")
async def get_alias(request: Request, alias_id: str, token: AliasesRead) -> AliasOut:
    state = state_of(request)
    return await state.call(_alias_out, state.ctx.config, state.settings, await _alias(state, alias_id))


@router.patch("/aliases/{alias_id}", tags=["aliases"], summary="Change an alias (only the fields given)")
async def update_alias(request: Request, alias_id: str, body: AliasPatch, token: AliasesWrite) -> AliasOut:
    state = state_of(request)
    store = state.ctx.config
    alias = await _alias(state, alias_id)
    given = body.model_fields_set
    fields = AliasFields(
        recipients=body.recipients,
        storage=body.storage,
        enabled=body.enabled,
        disabled_reply=body.disabled_reply,
        quota=aliases.parse_quota(body.quota),
        description=body.description,
    )
    updated = alias
    if given - {"sending_blocked"}:
        updated = await state.call(
            operations.update_alias,
            store,
            state.settings,
            token_actor(request, token),
            alias,
            fields,
            clear_quota="quota" in given and body.quota is None,
            detail=", ".join(sorted(given - {"sending_blocked"})),
        )
    if body.sending_blocked is not None and body.sending_blocked != updated.sending_blocked:
        who = token_actor(request, token)
        updated = await state.call(operations.set_sending, store, who, updated, body.sending_blocked)
    return await state.call(_alias_out, store, state.settings, updated)


@router.get(
    "/sending",
    tags=["aliases"],
    summary="Aliases at an hourly sending limit, or blocked from sending",
    description="What the web admin's Sending page shows. The counts live in Redis: without SEALMAIL_REDIS_URL "
    "each submission process counts on its own and only blocked aliases are listed.",
)
async def sending(request: Request, token: AliasesRead) -> list[SendingOut]:
    state = state_of(request)
    rows = await sendlimits.listing(state.ctx.config, state.ctx.redis, state.settings, state.call)
    return [SendingOut.model_validate(asdict(row)) for row in rows]


@router.delete("/aliases/{alias_id}", tags=["aliases"], status_code=204, summary="Remove an alias and its mailbox")
async def remove_alias(request: Request, alias_id: str, token: AliasesWrite) -> Response:
    state = state_of(request)
    alias = await _alias(state, alias_id)
    await state.call(operations.remove_alias, state.ctx.config, state.settings, token_actor(request, token), alias)
    return Response(status_code=204)


@router.post(
    "/aliases/{alias_id}/password",
    tags=["aliases"],
    summary="Generate a new password (returned once)",
    description="An alias whose mailbox has keys keeps its mail only with `current_password` or `recovery_key`; "
    "`reset_mailbox` deletes the mailbox instead. The sessions signed in with the old password end and the "
    "tokens the alias's user made for `/v1/me` are revoked.",
)
async def generate_password(
    request: Request, alias_id: str, token: PasswordsWrite, body: PasswordIn | None = None
) -> JSONResponse:
    state = state_of(request)
    body = body or PasswordIn.model_validate({})
    alias = await _alias(state, alias_id)
    try:
        made = await state.call(
            operations.new_password,
            state.ctx.config,
            state.settings,
            token_actor(request, token),
            alias,
            current_password=body.current_password,
            recovery_key=body.recovery_key,
            reset_mailbox=body.reset_mailbox,
        )
    except AuthenticationFailed:
        raise InvalidInput("the current password or recovery key is wrong") from None
    out = PasswordOut.model_validate(
        {"address": made.address, "password": made.password, "client_settings": [asdict(c) for c in made.client]}
    )
    return JSONResponse(out.model_dump(), headers={"Cache-Control": "no-store"})


@router.delete(
    "/aliases/{alias_id}/two-factor",
    tags=["aliases"],
    status_code=204,
    summary="Turn off the user's two-factor authentication (they lost the app)",
    description="The alias's password alone signs in to the account pages again; the user can turn it on anew. "
    "Nothing is needed from the user: the secret is simply dropped. Answers 204 when it was off already.",
)
async def turn_off_two_factor(request: Request, alias_id: str, token: AliasesWrite) -> Response:
    state = state_of(request)
    alias = await _alias(state, alias_id)
    who = token_actor(request, token)
    await state.call(selfservice.turn_off_two_factor, state.ctx.config, aliases.own_address(alias), who)
    return Response(status_code=204)


# ---- tokens ----------------------------------------------------------------------------------------
@router.get("/tokens", tags=["tokens"], summary="List API tokens (never their secrets)")
async def list_tokens(request: Request, token: TokensRead) -> list[TokenOut]:
    state = state_of(request)
    return [_token_out(t) for t in await state.call(tokens.list_tokens, state.ctx.config)]


@router.post("/tokens", tags=["tokens"], status_code=201, summary="Create a token (its secret is returned once)")
async def create_token(request: Request, body: TokenIn, token: TokensWrite) -> JSONResponse:
    state = state_of(request)
    who = token_actor(request, token)
    try:
        made, secret = await state.call(
            operations.create_token, state.ctx.config, who, body.name, body.scopes, granted_by=token
        )
    except tokens.ScopeEscalation as exc:
        raise ApiError(problem(403, str(exc), missing_scopes=exc.missing)) from None
    out = TokenCreated.model_validate({**_token_out(made).model_dump(), "token": secret})
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"})


@router.delete("/tokens/{token_id}", tags=["tokens"], summary="Revoke a token (it stops working at once)")
async def revoke_token(request: Request, token_id: str, token: TokensWrite) -> TokenOut:
    state = state_of(request)
    revoked = await state.call(operations.revoke_token, state.ctx.config, token_actor(request, token), token_id)
    return _token_out(revoked)


# ---- logs ------------------------------------------------------------------------------------------
async def _logs(request: Request, kind: LogKind, filters: LogFilters) -> LogPageOut:
    state = state_of(request)
    page = await state.call(eventlog.read, state.ctx.config, kind, filters)
    return LogPageOut.model_validate({"entries": [asdict(e) for e in page.entries], "next_cursor": page.next_cursor})


Limit = Annotated[int, Query(ge=1, le=1000, description="entries per page")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
Since = Annotated[datetime | None, Query(description="inclusive, ISO 8601")]
Until = Annotated[datetime | None, Query(description="exclusive, ISO 8601")]
Text = Annotated[str | None, Query(max_length=600)]


def _page_filters(
    domain: Text = None,
    address: Text = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> LogFilters:
    """The query parameters every log shares; each route adds its own ``status`` (and ``direction``)."""
    return LogFilters(domain=domain, address=address, since=since, until=until, limit=limit, cursor=cursor)


PageFilters = Annotated[LogFilters, Depends(_page_filters)]


@router.get("/logs/delivery", tags=["logs"], summary="Delivery log, newest first")
async def delivery_log(
    request: Request,
    token: LogsRead,
    page: PageFilters,
    direction: Annotated[str | None, Query(pattern="^(outbound|inbound)$")] = None,
    status: Text = None,
) -> LogPageOut:
    return await _logs(request, "delivery", replace(page, direction=direction, status=status))


@router.get("/logs/errors", tags=["logs"], summary="Error log, newest first")
async def error_log(request: Request, token: LogsRead, page: PageFilters, status: Text = None) -> LogPageOut:
    return await _logs(request, "error", replace(page, status=status))


@router.get("/logs/audit", tags=["logs"], summary="Audit log (changes through the API and the web admin)")
async def audit_log(
    request: Request,
    token: LogsRead,
    page: PageFilters,
    status: Annotated[str | None, Query(max_length=100, description="the action, e.g. alias.create")] = None,
) -> LogPageOut:
    return await _logs(request, "audit", replace(page, status=status))


# ---- statistics ------------------------------------------------------------------------------------
@router.get(
    "/stats/spam",
    tags=["stats"],
    summary="The spam filter's numbers per UTC day, and its top symbols",
    description="Counts only, summed by every MX host: no address, no message.",
)
async def spam_stats(
    request: Request,
    token: LogsRead,
    days: Annotated[int, Query(ge=1, le=366, description="UTC days up to today")] = 30,
    top: Annotated[int, Query(ge=1, le=100, description="symbols to list")] = 10,
) -> SpamStatsOut:
    from sealmail.services.dashboard import spam_stats as collect

    state = state_of(request)
    found = await state.call(collect, state.ctx.config, days, top)
    return SpamStatsOut.model_validate(
        {
            "days": [{"day": d.day, **d.counts} for d in found.days],
            "totals": found.totals,
            "top_symbols": [{"symbol": name, "messages": n} for name, n in found.top_symbols],
        }
    )


# ---- DMARC and TLS reports -------------------------------------------------------------------------
ReportDays = Annotated[
    int, Query(ge=1, le=366, description="UTC days up to today; reports whose period begins in them")
]
ReportDomain = Annotated[str | None, Query(max_length=253, description="one hosted domain; absent: all")]


def _dmarc_out(report: DmarcReport, rows: bool) -> DmarcReportOut:
    fields = {k: v for k, v in asdict(report).items() if k != "rows"}
    return DmarcReportOut.model_validate(
        {**fields, "messages": report.messages, "rows": [asdict(r) for r in report.rows] if rows else None}
    )


def _tls_out(report: TlsReport) -> TlsReportOut:
    return TlsReportOut.model_validate({**asdict(report), "domains": report.domains})


async def _domain_name(state: HttpState, domain: str | None) -> str | None:
    if not domain:
        return None
    return (await state.call(domains.get_domain, state.ctx.config, domain)).name


@router.get(
    "/reports/dmarc",
    tags=["reports"],
    summary="DMARC aggregate reports summed: who sent as the domains, and how much passed",
    description="Reports other receivers sent to the rua address (RFC 7489 §7.2), summed over the days: "
    "messages per day that passed and failed DMARC, each source address with its SPF/DKIM/DMARC passes "
    "(failing first; PTR names when DNS answers within 2 s), the reporters, the reports without their rows, and "
    "per domain each reporter's reports summed (the largest failing share first).",
)
async def dmarc_reports(
    request: Request, token: ReportsRead, domain: ReportDomain = None, days: ReportDays = 30
) -> DmarcSummaryOut:
    from sealmail.services import reports

    state = state_of(request)
    found = await state.call(reports.dmarc_summary, state.ctx.config, await _domain_name(state, domain), days)
    names = await reports.ptr_names(state.lookup, [s.source_ip for s in found.sources], 2.0)
    return DmarcSummaryOut.model_validate(
        {
            "domain": found.domain,
            "days": [{"day": d.day, **d.counts} for d in found.days],
            "messages": found.messages,
            "spf_pass": found.spf_pass,
            "dkim_pass": found.dkim_pass,
            "dmarc_pass": found.dmarc_pass,
            "sources": [
                {
                    "source_ip": s.source_ip,
                    "name": names.get(s.source_ip),
                    "messages": s.messages,
                    "spf_pass": s.spf_pass,
                    "dkim_pass": s.dkim_pass,
                    "dmarc_pass": s.dmarc_pass,
                    "failing": s.failing,
                    "dispositions": dict(s.dispositions),
                    "header_from": sorted(s.header_from),
                    "reporters": sorted(s.reporters),
                }
                for s in found.sources
            ],
            "reporters": [asdict(r) for r in found.reporters],
            "reports": [_dmarc_out(r, rows=False) for r in found.reports],
            "by_reporter": {
                name: [
                    {**asdict(r), "emails": sorted(r.emails), "failing": r.failing, "failing_share": r.failing_share}
                    for r in rows
                ]
                for name, rows in found.by_reporter.items()
            },
        }
    )


@router.get("/reports/dmarc/{report_id}", tags=["reports"], summary="One DMARC aggregate report, with its rows")
async def dmarc_report(request: Request, report_id: str, token: ReportsRead) -> DmarcReportOut:
    state = state_of(request)
    return _dmarc_out(await state.call(state.ctx.config.get_dmarc_report, report_id), rows=True)


@router.get(
    "/reports/tls",
    tags=["reports"],
    summary="SMTP TLS reports summed: sessions to this server that were fine and that failed",
    description="Reports other senders sent to the TLS-RPT rua address (RFC 8460), summed over the days: sessions "
    "per day, the failures by receiving domain and result type, the reporters, the reports, and per policy "
    "domain each organisation's reports summed (the largest failing share first).",
)
async def tls_reports(
    request: Request, token: ReportsRead, domain: ReportDomain = None, days: ReportDays = 30
) -> TlsSummaryOut:
    from sealmail.services import reports

    state = state_of(request)
    found = await state.call(reports.tls_summary, state.ctx.config, await _domain_name(state, domain), days)
    return TlsSummaryOut.model_validate(
        {
            "domain": found.domain,
            "days": [{"day": d.day, **d.counts} for d in found.days],
            "successful": found.successful,
            "failed": found.failed,
            "failures": [
                {
                    "domain": g.domain,
                    "result_type": g.result_type,
                    "sessions": g.sessions,
                    "receiving_mx": sorted(g.receiving_mx),
                    "sending_ips": sorted(g.sending_ips),
                    "reasons": sorted(g.reasons),
                    "reporters": sorted(g.reporters),
                }
                for g in found.failures
            ],
            "reporters": [asdict(r) for r in found.reporters],
            "reports": [_tls_out(r) for r in found.reports],
            "by_reporter": {
                name: [{**asdict(r), "contacts": sorted(r.contacts), "failing_share": r.failing_share} for r in rows]
                for name, rows in found.by_reporter.items()
            },
        }
    )


@router.get("/reports/tls/{report_id}", tags=["reports"], summary="One SMTP TLS report")
async def tls_report(request: Request, report_id: str, token: ReportsRead) -> TlsReportOut:
    state = state_of(request)
    return _tls_out(await state.call(state.ctx.config.get_tls_report, report_id))
