"""Public documents the web component serves to other servers and mail clients (no sign-in):

- ``https://mta-sts.<domain>/.well-known/mta-sts.txt``: the MTA-STS policy (RFC 8461 §3.3);
- Thunderbird's autoconfig, at ``https://autoconfig.<domain>/mail/config-v1.1.xml`` and
  ``https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml``;
- Microsoft Autodiscover (POX) at ``/autodiscover/autodiscover.xml`` (any case of the two names) on
  every hosted name, ``autodiscover.<domain>`` included;
- ``/.well-known/caldav`` and ``/.well-known/carddav`` (RFC 6764 §5): a redirect to the context path
  of the CalDAV / CardDAV service on its own port, where DAV:current-user-principal leads on.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from sealmail.addresses import normalize_domain, parse_mailbox
from sealmail.errors import InvalidInput
from sealmail.services.clientconfig import (
    AUTODISCOVER_MAX_REQUEST,
    AutodiscoverError,
    autoconfig_xml,
    autodiscover_error_xml,
    autodiscover_xml,
    dav_url,
    parse_autodiscover_request,
)
from sealmail.services.dnsrecords import mta_sts_policy
from sealmail.web.state import web

router = APIRouter()


def _host(request: Request) -> str:
    return (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]").lower()


async def _hosted(request: Request, name: str) -> str | None:
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
    return PlainTextResponse(mta_sts_policy(web(request).settings), headers={"cache-control": "max-age=3600"})


@router.get("/mail/config-v1.1.xml", include_in_schema=False)
@router.get("/.well-known/autoconfig/mail/config-v1.1.xml", include_in_schema=False)
async def autoconfig(request: Request, emailaddress: str = "") -> Response:
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


# RFC 6764 §5: every method (clients PROPFIND the well-known URI directly) gets the redirect.
DAV_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PROPFIND", "PROPPATCH", "REPORT", "MKCOL"]


@router.api_route("/.well-known/caldav", methods=DAV_METHODS, include_in_schema=False)
@router.api_route("/.well-known/carddav", methods=DAV_METHODS, include_in_schema=False)
async def dav_well_known(request: Request) -> Response:
    kind = "caldav" if request.url.path.endswith("caldav") else "carddav"
    # 301, as Radicale answers on the DAV ports (some clients, e.g. TbSync, mishandle 302 here).
    return RedirectResponse(dav_url(web(request).settings, kind), status_code=301)


def _autodiscover_answer(text: str, status: int = 200) -> Response:
    return Response(text, status_code=status, media_type="text/xml", headers={"cache-control": "no-store"})


@router.api_route("/autodiscover/autodiscover.xml", methods=["GET", "POST"], include_in_schema=False)
@router.api_route("/Autodiscover/Autodiscover.xml", methods=["GET", "POST"], include_in_schema=False)
async def autodiscover(request: Request, emailaddress: str = "") -> Response:
    """Microsoft Autodiscover, "POX" (MS-OXDSCLI): the request names an address, the answer gives IMAP
    and SMTP over implicit TLS with that address as the login name. GET takes ``?emailaddress=``."""
    try:
        if request.method == "POST":
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > AUTODISCOVER_MAX_REQUEST:
                    return _autodiscover_answer(autodiscover_error_xml(AutodiscoverError(600, "Invalid Request")), 413)
            address = parse_autodiscover_request(bytes(body))
        else:
            address = emailaddress.strip()
            if not address:
                raise AutodiscoverError(600, "Invalid Request")
        try:
            mailbox = parse_mailbox(address)
        except InvalidInput:
            raise AutodiscoverError(600, "Invalid Request") from None
        # Only the domain is checked: whether an alias exists is not told to anyone who asks.
        if await _hosted(request, mailbox.domain.ascii) is None:
            raise AutodiscoverError(500, "The e-mail address cannot be found.")
    except AutodiscoverError as exc:
        return _autodiscover_answer(autodiscover_error_xml(exc))
    return _autodiscover_answer(autodiscover_xml(web(request).settings, mailbox.text))
