"""Per-process state of an HTTP front end (``app.state.http``) and the helpers every router uses:
the peer's address, the actor behind a request and its audit entries.

``HttpState`` is what the REST API needs; the web admin's ``WebState`` adds sessions and the
first-run gate. All blocking work (the config store, Argon2, DKIM key generation) goes through
``call``, which runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar, cast

from fastapi import Request

from sealmail.services import eventlog
from sealmail.services.eventlog import Actor

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.services.dnscheck import Lookup

P = ParamSpec("P")
T = TypeVar("T")


class HttpState:
    def __init__(self, ctx: AppContext, lookup: Lookup | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self._lookup = lookup

    @property
    def lookup(self) -> Lookup:
        if self._lookup is None:
            from sealmail.http.dnslookup import make_lookup

            self._lookup = make_lookup(self.settings)
        return self._lookup

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


def state_of(request: Request) -> HttpState:
    return cast(HttpState, request.app.state.http)


def peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def actor(request: Request, component: str, name: str) -> Actor:
    """Who makes a change, for its audit entry: the component, the admin or token, and the peer."""
    return Actor(component, name, peer(request))


async def audit(request: Request, who: Actor, action: str, *, detail: str = "") -> None:
    """An audit entry for a change made here rather than through ``services.operations``."""
    state = state_of(request)
    await state.call(eventlog.record, state.ctx.config, who, action, detail=detail)
