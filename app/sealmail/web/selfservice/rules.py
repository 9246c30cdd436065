"""Filters and vacation: the vacation reply, forwarding and the filters as forms, and the same
script as Sieve text with Check and Save (``services.sieverules``, ``sieve.rules``).

Each form changes one part of the rules the page read from the stored script and saves them all
(a script edited by hand is shown as text; a form replaces it). When another script is active (from
a mail program, over ManageSieve) saving asks first whether this one should become the active one,
with the form's fields carried in the question.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.errors import SealmailError
from sealmail.services import selfservice, sieverules
from sealmail.sieve import rules as sieve_rules
from sealmail.sieve.errors import SieveError
from sealmail.web.selfservice.rooms import Me, member_actor, render_me
from sealmail.web.state import flash, form_fields, redirect, web

router = APIRouter()
PAGE = "/account/rules"
_LIST_SPLIT = re.compile(r"[\s,;]+")
FIELDS = (("from", "From"), ("to", "To or Cc"), ("subject", "Subject"), ("header", "Another header field"))
MATCHES = (("contains", "contains"), ("is", "is"), ("matches", "matches (* and ? as wildcards)"))
ACTIONS = (
    ("fileinto", "move it to the folder"),
    ("mark_read", "mark it as read"),
    ("discard", "delete it (no forwarding, no reply)"),
    ("stop", "keep it in the Inbox and stop here"),
)


async def _page(request: Request, me: selfservice.Member, status: int = 200, **context: Any) -> Response:
    state = web(request)
    found = await state.call(sieverules.view, state.ctx.config, me)
    rules = found.reading.rules or sieve_rules.Rules()
    context.setdefault("form", {})
    return render_me(
        request,
        "self/rules.html",
        status,
        me=me,
        view=found,
        rules=rules,
        fields=FIELDS,
        matches=MATCHES,
        actions=ACTIONS,
        script_name=sieverules.SCRIPT,
        **context,
    )


@router.get(PAGE)
async def rules_page(request: Request, me: Me) -> Response:
    return await _page(request, me)


def _activate(fields: dict[str, str]) -> bool | None:
    return {"yes": True, "no": False}.get(fields.get("activate", ""))


def _addresses(text: str) -> list[str]:
    return [a for a in _LIST_SPLIT.split(text) if a]


def _date(text: str) -> dt.date | None:
    return dt.date.fromisoformat(text) if text.strip() else None


async def _current(request: Request, me: selfservice.Member) -> sieve_rules.Rules:
    state = web(request)
    found = await state.call(sieverules.view, state.ctx.config, me)
    return found.reading.rules or sieve_rules.Rules()


async def _save(
    request: Request, me: selfservice.Member, fields: dict[str, str], change: dict[str, Any], error_key: str
) -> Response:
    """Apply ``change`` to the stored rules and save them; errors and the question come back on the page."""
    state = web(request)
    current = await _current(request, me)
    try:
        rules = sieve_rules.validate({**current.model_dump(mode="json"), **change})
        await state.call(
            sieverules.save_rules, state.ctx.config, me, rules, member_actor(request, me), activate=_activate(fields)
        )
    except sieverules.OtherScriptActive as exc:
        return _confirm(request, me, exc.name, request.url.path, fields)
    except SealmailError as exc:
        return await _page(request, me, 422, form=fields, **{error_key: _sentence(str(exc))})
    flash(request, "Saved. The rules apply to the next message that arrives.")
    return redirect(PAGE)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _confirm(request: Request, me: selfservice.Member, other: str, action: str, fields: dict[str, str]) -> Response:
    kept = {k: v for k, v in fields.items() if k not in ("csrf", "activate")}
    return render_me(request, "self/rules_confirm.html", 409, me=me, other=other, action=action, fields=kept)


@router.post(f"{PAGE}/vacation")
async def vacation(request: Request, me: Me) -> Response:
    fields = await form_fields(request)
    try:
        change = {
            "vacation": {
                "enabled": fields.get("enabled") == "on",
                "subject": fields.get("subject", ""),
                "message": fields.get("message", ""),
                "days": int(fields.get("days") or sieve_rules.DEFAULT_DAYS),
                "start": _date(fields.get("start", "")),
                "end": _date(fields.get("end", "")),
                "addresses": _addresses(fields.get("addresses", "")),
            }
        }
    except ValueError:
        return await _page(request, me, 422, form=fields, vacation_error="Days and dates must be numbers and dates.")
    return await _save(request, me, fields, change, "vacation_error")


@router.post(f"{PAGE}/forwarding")
async def forwarding(request: Request, me: Me) -> Response:
    fields = await form_fields(request)
    change = {
        "forwarding": {
            "enabled": fields.get("enabled") == "on",
            "to": _addresses(fields.get("to", "")),
            "keep_copy": fields.get("keep_copy") == "on",
        }
    }
    return await _save(request, me, fields, change, "forwarding_error")


@router.post(f"{PAGE}/filters")
async def filter_add(request: Request, me: Me) -> Response:
    fields = await form_fields(request)
    current = await _current(request, me)
    added = {k: fields.get(k, "") for k in ("field", "header", "match", "value", "action", "folder")}
    filters = [*current.model_dump(mode="json")["filters"], added]
    return await _save(request, me, fields, {"filters": filters}, "filter_error")


@router.post(f"{PAGE}/filters/{{number}}/{{move}}")
async def filter_move(request: Request, number: int, move: str, me: Me) -> Response:
    fields = await form_fields(request)
    current = await _current(request, me)
    filters = list(current.model_dump(mode="json")["filters"])
    if not 0 <= number < len(filters) or move not in ("up", "down", "remove"):
        return redirect(PAGE)  # the list changed in another tab: show it as it is
    if move == "remove":
        del filters[number]
    else:
        other = number - 1 if move == "up" else number + 1
        if not 0 <= other < len(filters):
            return redirect(PAGE)
        filters[number], filters[other] = filters[other], filters[number]
    return await _save(request, me, fields, {"filters": filters}, "filter_error")


# ---- the script as text -----------------------------------------------------------------------------------
async def _text_page(
    request: Request, me: selfservice.Member, text: str | None = None, status: int = 200, **context: Any
) -> Response:
    state = web(request)
    found = await state.call(sieverules.view, state.ctx.config, me)
    shown = found.text if text is None else text
    return render_me(
        request,
        "self/rules_sieve.html",
        status,
        me=me,
        view=found,
        text=shown,
        script_name=sieverules.SCRIPT,
        **context,
    )


@router.get(f"{PAGE}/sieve")
async def sieve_text(request: Request, me: Me) -> Response:
    return await _text_page(request, me)


@router.post(f"{PAGE}/sieve")
async def sieve_save(request: Request, me: Me) -> Response:
    state = web(request)
    fields = await form_fields(request)
    text = fields.get("script", "").replace("\r\n", "\n")
    try:
        if fields.get("do") == "check":
            warnings = await state.call(sieverules.check, text)
            return await _text_page(request, me, text, checked=True, warnings=warnings)
        _, warnings = await state.call(
            sieverules.save_text, state.ctx.config, me, text, member_actor(request, me), activate=_activate(fields)
        )
    except SieveError as exc:
        return await _text_page(request, me, text, 422, sieve_error=exc)
    except sieverules.OtherScriptActive as exc:
        return _confirm(request, me, exc.name, request.url.path, fields)
    except SealmailError as exc:  # too long, too many scripts
        return await _text_page(request, me, text, 422, other_error=_sentence(str(exc)))
    flash(request, "Saved." + (" Warnings: " + "; ".join(warnings) if warnings else ""))
    return redirect(f"{PAGE}/sieve")
