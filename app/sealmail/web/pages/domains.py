"""Domains: list, add (with DKIM keys), remove with confirmation, the live DNS check, and each
domain's spam thresholds."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.config.models import AdminAccount
from sealmail.errors import InvalidInput, NotFound, SealmailError
from sealmail.services import aliases, domains, operations
from sealmail.web.state import Admin, admin_actor, flash, form_fields, redirect, render, web

router = APIRouter()


async def add_domain(request: Request, admin: AdminAccount, name: str) -> str:
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
        name = await add_domain(request, admin, fields.get("name", ""))
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
    records = await state.call(records_for, state.settings, domain.name, state.ctx.config)
    checks = await check_records(state.lookup, records)
    summary = {s: sum(1 for c in checks if c.status == s) for s in ("pass", "missing", "wrong", "error")}
    return render(
        request, "domain_dns.html", admin=admin, domain=domain, checks=checks, summary=summary, setup=bool(setup)
    )


@router.get("/admin/domains/{name}/spam")
async def domain_spam(request: Request, name: str, admin: Admin) -> Response:
    state = web(request)
    try:
        domain = await state.call(domains.get_domain, state.ctx.config, name)
    except (NotFound, InvalidInput):
        return render(request, "message.html", 404, admin=admin, title="Not found", text=f"{name} is not hosted here.")
    form = {key: "" if value is None else f"{value:g}" for key, value in domains.spam_thresholds(domain).items()}
    return render(request, "domain_spam.html", admin=admin, domain=domain, form=form, spam_on=state.settings.rspamd_url)


@router.post("/admin/domains/{name}/spam")
async def domain_spam_save(request: Request, name: str, admin: Admin) -> Response:
    """An empty field clears that threshold: rspamd's own action decides that band."""
    state = web(request)
    fields = await form_fields(request)
    form = {key: fields.get(key, "").strip() for key in domains.SPAM_THRESHOLDS}
    try:
        domain = await state.call(domains.get_domain, state.ctx.config, name)
    except (NotFound, InvalidInput):
        return render(request, "message.html", 404, admin=admin, title="Not found", text=f"{name} is not hosted here.")
    try:
        changes = {key: _score(key, text) for key, text in form.items()}
        who = admin_actor(request, admin)
        await state.call(operations.set_spam_thresholds, state.ctx.config, who, domain.name, changes)
    except SealmailError as exc:  # nothing was changed: the form comes back as typed, with the reason
        return render(
            request,
            "domain_spam.html",
            422,
            admin=admin,
            domain=domain,
            form=form,
            error=str(exc),
            spam_on=state.settings.rspamd_url,
        )
    flash(request, f"Spam thresholds of {domain.unicode_name} saved.")
    return redirect(f"/admin/domains/{domain.name}/spam")


def _score(key: str, text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text.replace(",", "."))  # a decimal comma, as many keyboards type it
    except ValueError:
        raise InvalidInput(f"the {key} threshold must be a number, such as 12 or 5.5") from None
