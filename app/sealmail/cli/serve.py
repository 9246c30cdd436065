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
