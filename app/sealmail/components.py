"""The components ``sealmail serve`` can run, and the ports each one exports.

A component is an object with ``async start() -> {port_key: port}`` (it returns once listening)
and ``async stop()``. Only components that really exist are registered: the others arrive with
their own work and join ``sealmail dev`` by being added here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from sealmail.errors import InvalidInput

if TYPE_CHECKING:
    from sealmail.settings import Settings

# Every component the architecture has (one systemd unit each).
ALL = ("mx", "smtp", "imap", "pop3", "managesieve", "dav", "web", "api", "store", "jobs")

# The port keys each component exports (as written to dev.json) and the setting behind each.
PORTS: dict[str, dict[str, str]] = {
    "mx": {"mx": "mx_port"},
    "smtp": {"submission_tls": "submission_tls_port", "submission": "submission_port"},
    "imap": {"imaps": "imaps_port", "imap": "imap_port"},
    "pop3": {"pop3s": "pop3s_port", "pop3": "pop3_port"},
    "managesieve": {"managesieve": "managesieve_port"},
    "dav": {"caldav": "caldav_port", "carddav": "carddav_port"},
    "web": {"web": "web_port", "http": "http_port"},
    "api": {"api": "api_port"},
    "store": {"store": "store_port"},
    "jobs": {},
}

# How each port key is reached: its TLS (implicit, or STARTTLS inside the protocol) and whether it
# serves the world or only the deployment's own hosts (the firewall opens the public ones).
TLS_MODE: dict[str, Literal["implicit", "starttls", "none"]] = {
    "mx": "starttls",
    "submission_tls": "implicit",
    "submission": "starttls",
    "imaps": "implicit",
    "imap": "starttls",
    "pop3s": "implicit",
    "pop3": "starttls",
    "managesieve": "starttls",  # RFC 5804 §2.2: STARTTLS only, no implicit-TLS port
    "caldav": "implicit",
    "carddav": "implicit",
    "web": "implicit",
    "http": "none",  # redirects to HTTPS and answers ACME HTTP-01 challenges
    "api": "implicit",
    "store": "implicit",
}
PRIVATE_PORTS = frozenset({"store"})


@dataclass(frozen=True, slots=True)
class Listener:
    key: str  # as in dev.json
    setting: str
    port: int
    tls: str
    public: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def listeners(name: str, settings: Settings) -> list[Listener]:
    """Where component ``name`` listens with these settings."""
    return [
        Listener(key, setting, int(getattr(settings, setting)), TLS_MODE[key], key not in PRIVATE_PORTS)
        for key, setting in PORTS[name].items()
    ]


# Component name -> "module:factory"; factory(settings) returns a Component.
REGISTRY: dict[str, str] = {
    "mx": "sealmail.smtp.mx:MxComponent",
    "smtp": "sealmail.smtp.submission:SubmissionComponent",
    "imap": "sealmail.imap.server:ImapComponent",
    "jobs": "sealmail.jobs.component:JobsComponent",
    "pop3": "sealmail.pop3.server:Pop3Component",
    "managesieve": "sealmail.managesieve.server:ManageSieveComponent",
    "dav": "sealmail.dav.component:DavComponent",
    "web": "sealmail.web.component:WebComponent",
    "api": "sealmail.api.component:ApiComponent",
    "store": "sealmail.datahost:DataHostComponent",
}


class Component(Protocol):
    async def start(self) -> dict[str, int]: ...

    async def stop(self) -> None: ...


def available() -> list[str]:
    return [name for name in ALL if name in REGISTRY]


def here(settings: Settings) -> list[str]:
    """The available components this host runs: the deployment's placement (``components``), or all."""
    placed = settings.components
    return [name for name in available() if placed is None or name in placed]


def load(name: str, settings: Settings) -> Component:
    if name not in ALL:
        raise InvalidInput(f"unknown component {name!r}; components are: {', '.join(ALL)}")
    if name not in REGISTRY:
        ready = ", ".join(available()) or "none yet"
        raise InvalidInput(f"component {name!r} is not part of this version of Sealmail (available: {ready})")
    module_name, _, attr = REGISTRY[name].partition(":")
    factory: Callable[[Settings], Component] = getattr(importlib.import_module(module_name), attr)
    return factory(settings)
