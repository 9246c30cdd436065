"""The users' self-service area under ``/account``: an alias signs in with its address and
password (and a code, when it turned two-factor authentication on) and looks after its own account.

One module per room (``rooms.ROOMS`` lists them in the area's navigation): ``signin`` (sign-in,
second factor, sign-out), ``overview`` (address, quota), ``security`` (password, recovery key,
two-factor), ``rules`` (vacation reply, forwarding and filters, written as Sieve), ``takeout`` (the export and the latest encrypted backup), ``tokens`` (the user's own
API tokens). Its sessions have a cookie and a store of their own (``web.sessions.AREAS``); every
operation is in ``services.selfservice``, which the API's ``/v1/me`` uses too.
"""

from __future__ import annotations

from fastapi import APIRouter

from sealmail.web.selfservice import overview, security, signin
from sealmail.web.selfservice import rules as rules_room
from sealmail.web.selfservice import takeout as takeout_room
from sealmail.web.selfservice import tokens as tokens_room

MODULES = (signin, overview, security, rules_room, takeout_room, tokens_room)
router = APIRouter()
for room in MODULES:
    router.include_router(room.router)
