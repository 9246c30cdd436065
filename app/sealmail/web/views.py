"""The web admin's pages: first-run wizard, sign-in with two-factor, dashboard, domains with their
DNS check, aliases and passwords, who is at a sending limit or blocked, the deliverability report
(``sealmail doctor`` on a page), the DMARC and TLS reports other servers send, delivery and error
logs, API tokens, the admin's own account; and the users' self-service area under ``/account``
(``sealmail.web.selfservice``, with sessions of its own).

One module per room under ``sealmail.web.pages``; this router mounts them all, in this order.
Forms are plain HTML POSTs (the gate has checked their CSRF token before a handler runs); every
write goes through ``sealmail.services`` (the ones the REST API makes too: ``services.operations``)
and is recorded in the audit log. A handler parses its form, calls a service and renders the page.
"""

from __future__ import annotations

from fastapi import APIRouter

from sealmail.web import selfservice
from sealmail.web.pages import (
    account,
    aliases,
    dashboard,
    deliverability,
    domains,
    logs,
    reports,
    sending,
    signin,
    tokens,
)

PAGES = (signin, dashboard, domains, aliases, sending, deliverability, reports, logs, tokens, account)
router = APIRouter()
for page in PAGES:
    router.include_router(page.router)
router.include_router(selfservice.router)
