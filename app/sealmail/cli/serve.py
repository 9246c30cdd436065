"""``sealmail serve <component>`` and ``sealmail dev``."""

from __future__ import annotations

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
@common_options
def dev(ctx: Context) -> int:
    """Run every component on localhost with a private Redis, a dev CA and a demo alias.

    Writes <data-dir>/dev.json once everything listens; Ctrl-C stops it all.
    """
    from sealmail.dev import run_dev

    return run_dev(ctx.settings)


@click.command("components")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def list_components(as_json: bool) -> None:
    """List the components this version can serve and the port settings each one uses.

    Deployment uses it to install one systemd unit per available component.
    """
    import json

    rows = [
        {"name": name, "available": name in components.REGISTRY, "ports": components.PORTS[name]}
        for name in components.ALL
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        ports = ", ".join(f"{key} ({setting})" for key, setting in row["ports"].items()) or "no ports"
        click.echo(f"{row['name']:<6} {'available' if row['available'] else 'not yet':<10} {ports}")
