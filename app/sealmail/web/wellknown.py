"""Public documents the web component serves to other servers and mail clients (no sign-in):

- ``https://mta-sts.<domain>/.well-known/mta-sts.txt``: the MTA-STS policy (RFC 8461 §3.3);
- Thunderbird's autoconfig, at ``https://autoconfig.<domain>/mail/config-v1.1.xml`` and
  ``https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from sealmail.addresses import normalize_domain
from sealmail.errors import InvalidInput
from sealmail.services.clientconfig import autoconfig_xml
from sealmail.services.dnsrecords import mta_sts_policy

router = APIRouter()


def _host(request: Request) -> str:
    return (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]").lower()


async def _hosted(request: Request, name: str) -> str | None:
    from sealmail.web.app import web

    state = web(request)
    try:
        ascii_name = normalize_domain(name).ascii
    except InvalidInput:
        return None
    found = await state.call(state.ctx.config.find_domain, ascii_name)
    return found.name if found else None


@router.get("/.well-known/mta-sts.txt", include_in_schema=False)
async def mta_sts(request: Request) -> Response:
    host = _host(request)
    # RFC 8461 §3.3: the policy host is mta-sts.<policy domain>; other names get nothing.
    if not host.startswith("mta-sts.") or await _hosted(request, host.removeprefix("mta-sts.")) is None:
        return PlainTextResponse("no MTA-STS policy for this name\n", status_code=404)
    from sealmail.web.app import web

    return PlainTextResponse(mta_sts_policy(web(request).settings), headers={"cache-control": "max-age=3600"})


@router.get("/mail/config-v1.1.xml", include_in_schema=False)
@router.get("/.well-known/autoconfig/mail/config-v1.1.xml", include_in_schema=False)
async def autoconfig(request: Request, emailaddress: str = "") -> Response:
    from sealmail.web.app import web

    candidates = []
    if "@" in emailaddress:
        candidates.append(emailaddress.rsplit("@", 1)[1])
    host = _host(request)
    candidates.append(host.removeprefix("autoconfig."))
    for name in candidates:
        domain = await _hosted(request, name)
        if domain is not None:
            return Response(autoconfig_xml(web(request).settings, domain), media_type="application/xml")
    return PlainTextResponse("no such domain here\n", status_code=404)
