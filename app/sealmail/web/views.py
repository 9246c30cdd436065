"""The web admin's pages: first-run wizard, sign-in with two-factor, dashboard, domains with their
DNS check, aliases and passwords, delivery and error logs, API tokens, the admin's own account.

Forms are plain HTML POSTs (the gate has checked their CSRF token before a handler runs); every
write goes through ``sealmail.services`` (the ones the REST API makes too: ``services.operations``)
and is recorded in the audit log. A handler parses its form, calls a service and renders the page.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from sealmail.config.models import AdminAccount
from sealmail.errors import AlreadyExists, InvalidInput, NotFound, SealmailError
from sealmail.http.state import address, audit, peer
from sealmail.services import admins, aliases, credentials, domains, eventlog, operations, tokens
from sealmail.services.credentials import AuthenticationFailed
from sealmail.services.eventlog import LogFilters
from sealmail.services.operations import AliasFields
from sealmail.web.state import (
    PENDING_SECONDS,
    admin_actor,
    current_admin,
    flash,
    redirect,
    render,
    safe_next,
    session,
    web,
)

if TYPE_CHECKING:
    from sealmail.config.models import Alias, LogKind

router = APIRouter()
Admin = Annotated[AdminAccount, Depends(current_admin)]
LOCKED_OUT = "Too many failed attempts. Wait 15 minutes, then try again."


async def form_fields(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: (v if isinstance(v, str) else "") for k, v in data.items()}


# ---- first run -------------------------------------------------------------------------------------
@router.get("/")
async def home(request: Request) -> Response:
    return redirect("/admin" if await web(request).admin_exists() else "/setup")


@router.get("/setup")
async def setup(request: Request) -> Response:
    if await web(request).admin_exists():
        return redirect("/admin/login")
    return render(request, "setup_admin.html", step=1, form={})


@router.post("/setup")
async def setup_create(request: Request) -> Response:
    state = web(request)
    if await state.admin_exists():
        return redirect("/admin/login")
    fields = await form_fields(request)
    try:
        admin = await state.call(
            admins.create_admin,
            state.ctx.config,
            state.settings,
            fields.get("email", ""),
            fields.get("password", ""),
            confirm=fields.get("confirm", ""),
            first=True,
        )
    except (InvalidInput, AlreadyExists) as exc:
        return render(request, "setup_admin.html", 422, step=1, error=str(exc), form={"email": fields.get("email")})
    state.note_admin_created()
    _sign_in(request, admin)
    await state.call(admins.record_login, state.ctx.config, admin)
    await audit(request, admin_actor(request, admin), "admin.create", detail="first-run wizard")
    return redirect("/setup/domain")


@router.get("/setup/domain")
async def setup_domain(request: Request, admin: Admin) -> Response:
    return render(request, "setup_domain.html", admin=admin, step=2, form={})


@router.post("/setup/domain")
async def setup_domain_add(request: Request, admin: Admin) -> Response:
    fields = await form_fields(request)
    try:
        domain = await _add_domain(request, admin, fields.get("name", ""))
    except SealmailError as exc:
        return render(request, "setup_domain.html", 422, admin=admin, step=2, error=str(exc), form=fields)
    return redirect(f"/admin/domains/{domain}/dns?setup=1")


# ---- sign-in ---------------------------------------------------------------------------------------
def _sign_in(request: Request, admin: AdminAccount) -> None:
    s = session(request)
    s.rotate()  # a new id once privileged: a planted or stolen pre-login id is worthless (session fixation)
    s.pop("pending_admin_id")
    s.pop("pending_at")
    s["admin_id"] = admin.id
    s["auth"] = admins.session_stamp(admin)  # other sessions end when the password changes
    s["signed_in_at"] = int(time.time())


@router.get("/admin/login")
async def login(request: Request, next: str = "/admin") -> Response:
    if not await web(request).admin_exists():
        return redirect("/setup")
    return render(request, "login.html", next=safe_next(next), form={})


@router.post("/admin/login")
async def login_submit(request: Request) -> Response:
    state = web(request)
    fields = await form_fields(request)
    email, password, target = fields.get("email", "").strip(), fields.get("password", ""), safe_next(fields.get("next"))
    ip = peer(request)
    limiter = state.ctx.limiter
    attempt = await limiter.reserve(ip, email)
    if attempt is None:
        return render(request, "login.html", 429, error=LOCKED_OUT, next=target, form={"email": email})
    try:
        admin = await state.call(admins.authenticate, state.ctx.config, state.settings, email, password)
    except AuthenticationFailed:
        await attempt.failed()
        return render(
            request, "login.html", 401, error="Wrong email address or password.", next=target, form={"email": email}
        )
    s = session(request)
    if admin.totp_secret:
        # The password was right: refund this slot, but keep the account's failures (the second
        # factor is counted on the same account; a right password must not reset its guesses).
        await attempt.cancel()
        s.rotate()
        s["pending_admin_id"] = admin.id
        s["pending_at"] = int(time.time())
        s["pending_next"] = target
        return redirect("/admin/login/2fa")
    await attempt.succeeded()
    _sign_in(request, admin)
    await state.call(admins.record_login, state.ctx.config, admin)
    return redirect(target)


async def _pending(request: Request) -> AdminAccount | None:
    s = session(request)
    admin_id, started = s.get("pending_admin_id"), s.get("pending_at", 0)
    if not admin_id or time.time() - started > PENDING_SECONDS:
        return None
    state = web(request)
    return await state.call(admins.admin_by_id, state.ctx.config, admin_id)


@router.get("/admin/login/2fa")
async def second_factor(request: Request) -> Response:
    if await _pending(request) is None:
        return redirect("/admin/login")
    return render(request, "login_2fa.html")


@router.post("/admin/login/2fa")
async def second_factor_submit(request: Request) -> Response:
    state = web(request)
    admin = await _pending(request)
    if admin is None:
        flash(request, "That took too long; sign in again.", "error")
        return redirect("/admin/login")
    fields = await form_fields(request)
    ip, limiter = peer(request), state.ctx.limiter
    attempt = await limiter.reserve(ip, admin.email)
    if attempt is None:
        return render(request, "login_2fa.html", 429, error=LOCKED_OUT)
    try:
        factor = await state.call(admins.check_second_factor, state.ctx.config, admin.id, fields.get("code", ""))
        if factor.step is not None and not await state.sessions.first_use(f"totp:{admin.id}:{factor.step}", 120):
            raise AuthenticationFailed()  # RFC 6238 §5.2: a code is accepted once
    except AuthenticationFailed:
        await attempt.failed()
        return render(request, "login_2fa.html", 401, error="That code is wrong or was used already.")
    await attempt.succeeded()
    target = safe_next(session(request).pop("pending_next"))
    _sign_in(request, admin)
    await state.call(admins.record_login, state.ctx.config, admin)
    if factor.method == "recovery":
        flash(request, f"You used a recovery code; {factor.remaining_codes} are left.", "warning")
    return redirect(target)


@router.post("/admin/logout")
async def logout(request: Request) -> Response:
    session(request).end()
    return redirect("/admin/login")


# ---- dashboard -------------------------------------------------------------------------------------
@router.get("/admin")
async def dashboard(request: Request, admin: Admin) -> Response:
    from sealmail.services import dashboard as board
    from sealmail.services.status import collect
    from sealmail.web.charts import legend, traffic_svg

    state = web(request)
    store = state.ctx.config
    usage = await state.call(board.mailbox_usage, store, state.settings)
    days = await state.call(board.traffic, store, 30)
    status = await state.call(collect, store, state.settings)
    totals = {name: sum(d.counts[name] for d in days) for name in board.SERIES}
    return render(
        request,
        "dashboard.html",
        admin=admin,
        usage=usage,
        days=days,
        totals=totals,
        chart=traffic_svg(days),
        legend=legend(),
        health=status,
    )


# ---- domains ---------------------------------------------------------------------------------------
async def _add_domain(request: Request, admin: AdminAccount, name: str) -> str:
    state = web(request)
    who = admin_actor(request, admin)
    domain = await state.call(operations.add_domain, state.ctx.config, state.settings, who, name)
    return domain.name


@router.get("/admin/domains")
async def domain_list(request: Request, admin: Admin) -> Response:
    state = web(request)
    found = await state.call(domains.list_domains, state.ctx.config)
    counts: dict[str, int] = {}
    for alias in await state.call(aliases.list_aliases, state.ctx.config):
        counts[alias.domain] = counts.get(alias.domain, 0) + 1
    return render(request, "domains.html", admin=admin, domains=found, counts=counts, form={})


@router.post("/admin/domains")
async def domain_add(request: Request, admin: Admin) -> Response:
    fields = await form_fields(request)
    try:
        name = await _add_domain(request, admin, fields.get("name", ""))
    except SealmailError as exc:
        state = web(request)
        found = await state.call(domains.list_domains, state.ctx.config)
        return render(request, "domains.html", 422, admin=admin, domains=found, counts={}, error=str(exc), form=fields)
    flash(request, "Domain added. Publish the records below, then check them here.")
    return redirect(f"/admin/domains/{name}/dns")


@router.post("/admin/domains/{name}/delete")
async def domain_remove(request: Request, name: str, admin: Admin) -> Response:
    state = web(request)
    fields = await form_fields(request)
    try:
        domain = await state.call(domains.get_domain, state.ctx.config, name)
        if fields.get("confirm", "").strip().lower() not in (domain.name, domain.unicode_name.lower()):
            raise InvalidInput(f"type the domain's name ({domain.unicode_name}) to confirm the removal")
        who = admin_actor(request, admin)
        await state.call(operations.remove_domain, state.ctx.config, state.settings, who, domain)
    except SealmailError as exc:
        flash(request, str(exc), "error")
        return redirect("/admin/domains")
    flash(request, f"Removed {domain.unicode_name} with its aliases and mailboxes.")
    return redirect("/admin/domains")


@router.get("/admin/domains/{name}/dns")
async def domain_dns(request: Request, name: str, admin: Admin, setup: str = "") -> Response:
    from sealmail.services.dnscheck import check_records
    from sealmail.services.dnsrecords import records_for

    state = web(request)
    try:
        domain = await state.call(domains.get_domain, state.ctx.config, name)
    except (NotFound, InvalidInput):
        return render(request, "message.html", 404, admin=admin, title="Not found", text=f"{name} is not hosted here.")
    records = await state.call(records_for, state.settings, domain.name)
    checks = await check_records(state.lookup, records)
    summary = {s: sum(1 for c in checks if c.status == s) for s in ("pass", "missing", "wrong", "error")}
    return render(
        request, "domain_dns.html", admin=admin, domain=domain, checks=checks, summary=summary, setup=bool(setup)
    )


# ---- aliases ---------------------------------------------------------------------------------------
def _alias_form(alias: Alias | None) -> dict[str, Any]:
    if alias is None:
        return {"storage": True, "enabled": True, "disabled_reply": "reject", "recipients": "", "quota": ""}
    from sealmail.services.dashboard import human_size

    return {
        "recipients": "\n".join(alias.recipients),
        "storage": alias.storage,
        "enabled": alias.enabled,
        "disabled_reply": alias.disabled_reply,
        "quota": human_size(alias.quota).replace(" ", "").replace("iB", "").replace(".0", "") if alias.quota else "",
        "description": alias.description,
    }


def _parse_alias_fields(fields: dict[str, str]) -> AliasFields:
    return AliasFields(
        recipients=[line for line in fields.get("recipients", "").replace(",", "\n").splitlines() if line.strip()],
        storage=fields.get("storage") == "on",
        enabled=fields.get("enabled") == "on",
        disabled_reply=fields.get("disabled_reply", "reject"),
        quota=aliases.parse_quota(fields.get("quota", "").strip() or None),
        description=fields.get("description", ""),
    )


@router.get("/admin/aliases")
async def alias_list(request: Request, admin: Admin, q: str = "", domain: str = "") -> Response:
    state = web(request)
    store = state.ctx.config
    try:
        found = await state.call(aliases.search_aliases, store, q, domain or None)
    except SealmailError as exc:
        found = []
        flash(request, str(exc), "error")
    rows = []
    for alias in found:
        rows.append((alias, await state.call(aliases.describe_alias, store, alias)))
    all_domains = await state.call(domains.list_domains, store)
    return render(request, "aliases.html", admin=admin, rows=rows, q=q, domain=domain, domains=all_domains)


@router.get("/admin/aliases/new")
async def alias_new(request: Request, admin: Admin, domain: str = "") -> Response:
    state = web(request)
    all_domains = await state.call(domains.list_domains, state.ctx.config)
    return render(
        request,
        "alias_form.html",
        admin=admin,
        alias=None,
        form={**_alias_form(None), "address": f"@{domain}" if domain else ""},
        domains=all_domains,
        replies=aliases.DISABLED_REPLIES,
    )


@router.post("/admin/aliases")
async def alias_create(request: Request, admin: Admin) -> Response:
    state = web(request)
    fields = await form_fields(request)
    try:
        values = _parse_alias_fields(fields)
        who = admin_actor(request, admin)
        alias = await state.call(
            operations.create_alias, state.ctx.config, state.settings, who, fields.get("address", ""), values
        )
    except SealmailError as exc:
        all_domains = await state.call(domains.list_domains, state.ctx.config)
        form = {**fields, "storage": fields.get("storage") == "on", "enabled": fields.get("enabled") == "on"}
        return render(
            request,
            "alias_form.html",
            422,
            admin=admin,
            alias=None,
            form=form,
            domains=all_domains,
            replies=aliases.DISABLED_REPLIES,
            error=str(exc),
        )
    flash(request, "Alias created." + (" Generate its password below." if alias.storage else ""))
    return redirect(f"/admin/aliases/{alias.id}")


async def _alias_or_none(request: Request, alias_id: str) -> Alias | None:
    state = web(request)
    try:
        alias: Alias = await state.call(state.ctx.config.get_alias, alias_id)
    except NotFound:
        return None
    return alias


async def _edit_page(request: Request, admin: AdminAccount, alias: Alias, status: int = 200, **extra: Any) -> Response:
    state = web(request)
    store = state.ctx.config
    info = await state.call(aliases.describe_alias, store, alias)
    credential = await state.call(store.get_credential, alias.id)
    extra.setdefault("form", _alias_form(alias))
    return render(
        request,
        "alias_form.html",
        status,
        admin=admin,
        alias=alias,
        info=info,
        has_keys=bool(credential and credential.has_keys),
        has_recovery=bool(credential and credential.recovery_salt),
        usage=credential.usage_bytes if credential else None,
        quota=credentials.quota_of(alias, state.settings),
        replies=aliases.DISABLED_REPLIES,
        **extra,
    )


@router.get("/admin/aliases/{alias_id}")
async def alias_edit(request: Request, alias_id: str, admin: Admin) -> Response:
    alias = await _alias_or_none(request, alias_id)
    if alias is None:
        return render(request, "message.html", 404, admin=admin, title="Not found", text="No such alias.")
    return await _edit_page(request, admin, alias)


@router.get("/admin/aliases/{alias_id}/apple.mobileconfig")
async def alias_apple_profile(request: Request, alias_id: str, admin: Admin) -> Response:
    """An Apple configuration profile (mail, calendars, contacts) for an alias with a mailbox; no
    password inside. A signed-in admin only (the Admin dependency), read-only, so a plain GET."""
    from sealmail.services.clientconfig import apple_profile

    state = web(request)
    alias = await _alias_or_none(request, alias_id)
    if alias is None or alias.kind != "exact" or not alias.storage:
        return render(request, "message.html", 404, admin=admin, title="Not found", text="No such mailbox.")
    shown = await state.call(aliases.alias_address, state.ctx.config, alias)
    body = apple_profile(state.settings, shown, address(alias))
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{alias.name}@{alias.domain}").strip("_") or "mail"
    return Response(
        body,
        media_type="application/x-apple-aspen-config",
        headers={"content-disposition": f'attachment; filename="{name}.mobileconfig"'},
    )


@router.post("/admin/aliases/{alias_id}")
async def alias_update(request: Request, alias_id: str, admin: Admin) -> Response:
    state = web(request)
    alias = await _alias_or_none(request, alias_id)
    if alias is None:
        return render(request, "message.html", 404, admin=admin, title="Not found", text="No such alias.")
    fields = await form_fields(request)
    try:
        values = _parse_alias_fields(fields)
        who = admin_actor(request, admin)
        await state.call(
            operations.update_alias,
            state.ctx.config,
            state.settings,
            who,
            alias,
            values,
            clear_quota=values.quota is None,
        )
    except SealmailError as exc:
        form = {**fields, "storage": fields.get("storage") == "on", "enabled": fields.get("enabled") == "on"}
        return await _edit_page(request, admin, alias, 422, error=str(exc), form=form)
    flash(request, "Saved.")
    return redirect(f"/admin/aliases/{alias_id}")


@router.post("/admin/aliases/{alias_id}/delete")
async def alias_delete(request: Request, alias_id: str, admin: Admin) -> Response:
    state = web(request)
    alias = await _alias_or_none(request, alias_id)
    if alias is not None:
        who = admin_actor(request, admin)
        await state.call(operations.remove_alias, state.ctx.config, state.settings, who, alias)
        flash(request, f"Removed {await state.call(aliases.alias_address, state.ctx.config, alias)}.")
    return redirect("/admin/aliases")


@router.post("/admin/aliases/{alias_id}/password")
async def alias_password(request: Request, alias_id: str, admin: Admin) -> Response:
    state = web(request)
    alias = await _alias_or_none(request, alias_id)
    if alias is None:
        return render(request, "message.html", 404, admin=admin, title="Not found", text="No such alias.")
    fields = await form_fields(request)
    try:
        made = await state.call(
            operations.new_password,
            state.ctx.config,
            state.settings,
            admin_actor(request, admin),
            alias,
            current_password=fields.get("current_password") or None,
            recovery_key=fields.get("recovery_key") or None,
            reset_mailbox=fields.get("reset_mailbox") == "on",
        )
    except AuthenticationFailed:
        return await _edit_page(
            request,
            admin,
            alias,
            422,
            password_error="The current password or recovery key is wrong.",  # noqa: S106 - a message
        )
    except SealmailError as exc:
        return await _edit_page(request, admin, alias, 422, password_error=str(exc))
    return render(
        request,
        "alias_password.html",
        admin=admin,
        alias=alias,
        address=made.address,
        password=made.password,
        client=made.client,
    )


# ---- logs ------------------------------------------------------------------------------------------
async def _log_page(request: Request, admin: AdminAccount, kind: LogKind, template: str, **filters: str) -> Response:
    state = web(request)
    error = None
    page = None
    try:
        page = await state.call(eventlog.read, state.ctx.config, kind, LogFilters.from_text(filters))
    except SealmailError as exc:
        error = str(exc)
    query = {k: v for k, v in filters.items() if v and k != "cursor"}
    return render(
        request,
        template,
        200 if error is None else 422,
        admin=admin,
        kind=kind,
        entries=page.entries if page else [],
        next_cursor=page.next_cursor if page else None,
        filters=filters,
        query=query,
        error=error,
    )


@router.get("/admin/emails")
async def emails(
    request: Request,
    admin: Admin,
    direction: str = "outbound",
    status: str = "",
    domain: str = "",
    address: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
) -> Response:
    if direction == "all":
        direction = ""
    filters = {
        "direction": direction,
        "status": status,
        "domain": domain,
        "address": address,
        "since": since,
        "until": until,
        "cursor": cursor,
    }
    return await _log_page(request, admin, "delivery", "emails.html", **filters)


@router.get("/admin/logs")
async def error_logs(
    request: Request,
    admin: Admin,
    kind: str = "error",
    status: str = "",
    domain: str = "",
    address: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
) -> Response:
    chosen: LogKind = "audit" if kind == "audit" else "error"
    filters = {"status": status, "domain": domain, "address": address, "since": since, "until": until, "cursor": cursor}
    return await _log_page(request, admin, chosen, "logs.html", **filters)


# ---- API tokens ------------------------------------------------------------------------------------
@router.get("/admin/tokens")
async def token_list(request: Request, admin: Admin) -> Response:
    state = web(request)
    found = await state.call(tokens.list_tokens, state.ctx.config)
    return render(request, "tokens.html", admin=admin, tokens=found, scopes=tokens.SCOPES, form={})


@router.post("/admin/tokens")
async def token_create(request: Request, admin: Admin) -> Response:
    state = web(request)
    data = await request.form()
    name = str(data.get("name") or "")
    chosen = [str(s) for s in data.getlist("scopes")]
    try:
        token, secret = await state.call(
            operations.create_token, state.ctx.config, admin_actor(request, admin), name, chosen
        )
    except SealmailError as exc:
        found = await state.call(tokens.list_tokens, state.ctx.config)
        return render(
            request,
            "tokens.html",
            422,
            admin=admin,
            tokens=found,
            scopes=tokens.SCOPES,
            error=str(exc),
            form={"name": name, "scopes": chosen},
        )
    return render(request, "token_created.html", admin=admin, token=token, secret=secret)


@router.post("/admin/tokens/{token_id}/revoke")
async def token_revoke(request: Request, token_id: str, admin: Admin) -> Response:
    state = web(request)
    try:
        token = await state.call(operations.revoke_token, state.ctx.config, admin_actor(request, admin), token_id)
    except NotFound:
        return redirect("/admin/tokens")
    flash(request, f"Revoked {token.name}.")
    return redirect("/admin/tokens")


# ---- the admin's own account -----------------------------------------------------------------------
@router.get("/admin/account")
async def account(request: Request, admin: Admin) -> Response:
    return render(request, "account.html", admin=admin)


@router.post("/admin/account/password")
async def account_password(request: Request, admin: Admin) -> Response:
    state = web(request)
    fields = await form_fields(request)
    try:
        changed = await state.call(
            admins.change_password,
            state.ctx.config,
            state.settings,
            admin.id,
            fields.get("current", ""),
            fields.get("password", ""),
            fields.get("confirm", ""),
        )
    except SealmailError as exc:
        return render(request, "account.html", 422, admin=admin, password_error=str(exc))
    session(request).rotate()
    session(request)["auth"] = admins.session_stamp(changed)  # this session goes on; the others end
    await audit(request, admin_actor(request, admin), "admin.password")
    flash(request, "Password changed.")
    return redirect("/admin/account")


@router.post("/admin/account/totp")
async def totp_start(request: Request, admin: Admin) -> Response:
    if admin.totp_secret:
        return redirect("/admin/account")
    session(request)["totp_setup"] = admins.new_totp_secret()
    return redirect("/admin/account/totp")


def _totp_page(
    request: Request, admin: AdminAccount, secret: str, status: int = 200, error: str | None = None
) -> Response:
    import segno
    from markupsafe import Markup

    uri = admins.totp_uri(secret, admin.email)
    qr = Markup(segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff", title="QR code"))  # noqa: S704 - segno's own SVG
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render(request, "totp_setup.html", status, admin=admin, secret=grouped, uri=uri, qr=qr, error=error)


@router.get("/admin/account/totp")
async def totp_setup(request: Request, admin: Admin) -> Response:
    secret = session(request).get("totp_setup")
    if admin.totp_secret or not secret:
        return redirect("/admin/account")
    return _totp_page(request, admin, secret)


@router.post("/admin/account/totp/confirm")
async def totp_confirm(request: Request, admin: Admin) -> Response:
    state = web(request)
    secret = session(request).get("totp_setup")
    if not secret:
        return redirect("/admin/account")
    fields = await form_fields(request)
    try:
        codes = await state.call(admins.enable_totp, state.ctx.config, admin.id, secret, fields.get("code", ""))
    except SealmailError as exc:
        return _totp_page(request, admin, secret, 422, str(exc))
    session(request).pop("totp_setup")
    session(request).rotate()
    await audit(request, admin_actor(request, admin), "admin.totp-enable")
    return render(request, "recovery_codes.html", admin=admin, codes=codes, first=True)


@router.post("/admin/account/totp/disable")
async def totp_disable(request: Request, admin: Admin) -> Response:
    state = web(request)
    fields = await form_fields(request)
    try:
        await state.call(admins.check_second_factor, state.ctx.config, admin.id, fields.get("code", ""))
    except AuthenticationFailed:
        return render(request, "account.html", 422, admin=admin, totp_error="That code is wrong.")
    await state.call(admins.disable_totp, state.ctx.config, admin.id)
    await audit(request, admin_actor(request, admin), "admin.totp-disable")
    flash(request, "Two-factor authentication is off.", "warning")
    return redirect("/admin/account")


@router.post("/admin/account/recovery-codes")
async def recovery_codes(request: Request, admin: Admin) -> Response:
    state = web(request)
    try:
        codes = await state.call(admins.regenerate_recovery_codes, state.ctx.config, admin.id)
    except SealmailError as exc:
        flash(request, str(exc), "error")
        return redirect("/admin/account")
    await audit(request, admin_actor(request, admin), "admin.recovery-codes")
    return render(request, "recovery_codes.html", admin=admin, codes=codes, first=False)
