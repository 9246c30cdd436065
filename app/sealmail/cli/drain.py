"""``sealmail drain on|off``: take this host out of service for a rollout, and back in.

See ``sealmail.net.drain``: new connections are turned away with the protocols' temporary
refusals, open sessions go on. ``--wait`` bounds how long ``on`` waits for them to end.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from sealmail.cli.common import Context, common_options

_POLL = 0.25


def _open_sessions(ctx: Context) -> dict[str, int]:
    """Open connections per running component that counts them (its ready file, ``runtime``)."""
    from sealmail import components
    from sealmail.runtime import ready_file
    from sealmail.services.status import _alive

    found: dict[str, int] = {}
    for name in components.here(ctx.settings):
        marker = ready_file(ctx.settings.run_dir, name)
        try:
            data = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        if "sessions" not in data or not _alive(int(data.get("pid", 0))):
            continue
        # Not yet seen the flag (it looks once a second): count it as busy until it has.
        found[name] = int(data["sessions"]) if data.get("draining") else max(1, int(data["sessions"]))
    return found


@click.command("drain")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="With on: seconds to wait for the open sessions to end (the rest end when the components stop).",
)
@common_options
def drain(ctx: Context, state: str, wait: float) -> None:
    """Turn new connections away (on: MX and submission 421 4.3.2, IMAP BYE [UNAVAILABLE],
    POP3 -ERR [SYS/TEMP]) while open sessions finish, or take connections again (off)."""
    from sealmail.net.drain import set_draining

    on = state == "on"
    set_draining(ctx.settings.run_dir, on)
    sessions = _open_sessions(ctx)
    if on and wait:
        deadline = time.monotonic() + wait
        while any(sessions.values()) and time.monotonic() < deadline:
            time.sleep(_POLL)
            sessions = _open_sessions(ctx)
    result: dict[str, Any] = {"draining": on, "sessions": sessions, "drained": on and not any(sessions.values())}

    def human() -> None:
        if not on:
            click.echo("taking connections again")
            return
        click.echo("draining: new connections are turned away")
        busy = {k: v for k, v in sessions.items() if v}
        if busy:
            click.echo("open sessions: " + ", ".join(f"{k} {v}" for k, v in sorted(busy.items())))
        else:
            click.echo("no open sessions")

    ctx.emit(result, human)
