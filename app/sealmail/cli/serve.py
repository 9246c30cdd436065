"""``sealmail serve <component>`` and ``sealmail dev``."""

from __future__ import annotations

from typing import Any

import click

from sealmail import components
from sealmail.cli.common import Context, common_options


@click.command()
@click.argument("component", type=click.Choice(components.ALL))
@common_options
def serve(ctx: Context, component: str) -> int:
    """Run one COMPONENT in the foreground (what each systemd unit runs).

    Stops cleanly on SIGTERM or SIGINT.
    """
    from sealmail.runtime import serve as run

    return run(component, ctx.settings)


@click.command()
@click.option(
    "--split",
    is_flag=True,
    help="Front-ends reach the mailboxes only through the store component (as on separate hosts).",
)
@common_options
def dev(ctx: Context, split: bool) -> int:
    """Run every component on localhost with a private Redis, a dev CA and a demo alias.

    Writes <data-dir>/dev.json once everything listens; Ctrl-C stops it all.
    """
    from sealmail.dev import run_dev

    return run_dev(ctx.settings, split=split)


@click.command("components")
@common_options
def list_components(ctx: Context) -> None:
    """List the components this version can serve and where each one listens.

    Deployment uses it (``--json``) to install one systemd unit per available component and to open
    the firewall: each port carries its number from the settings, its TLS mode and whether it is
    meant for the world (``public``) or only for the other hosts of the deployment; ``here`` says
    whether this host runs it (the ``components`` setting the deployment writes; unset: all).
    """
    here = components.here(ctx.settings)
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "available": name in components.REGISTRY,
            "here": name in here,
            "ports": components.PORTS[name],
            "listeners": [listener.as_dict() for listener in components.listeners(name, ctx.settings)],
        }
        for name in components.ALL
    ]

    def human() -> None:
        for row in rows:
            ports = ", ".join(f"{item['key']} {item['port']}" for item in row["listeners"]) or "no ports"
            click.echo(f"{row['name']:<11} {_state(row):<10} {ports}")

    ctx.emit(rows, human)


def _state(row: dict[str, Any]) -> str:
    if not row["available"]:
        return "not yet"
    return "here" if row["here"] else "elsewhere"


@click.command("timers")
@common_options
def list_timers(ctx: Context) -> None:
    """List the scheduled runs this version wants (the deployment installs a systemd timer for each).

    Each has a name (units sealmail-<name>.service and .timer), the arguments of `sealmail` it runs,
    a systemd calendar expression and a random delay in seconds.
    """
    from sealmail.timers import TIMERS

    rows = [timer.as_dict() for timer in TIMERS]

    def human() -> None:
        for timer in TIMERS:
            click.echo(
                f"{timer.name:<14} {timer.on_calendar} (+ up to {timer.randomized_delay_seconds} s)  "
                f"sealmail {' '.join(timer.command)}"
            )

    ctx.emit(rows, human)
