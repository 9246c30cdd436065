"""``sealmail upgrade-turn``: one host of a deployment upgrades at a time (services.upgradeturn)."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

import click

from sealmail.cli.common import CLIError, Context, common_options

if TYPE_CHECKING:
    import redis

EX_TEMPFAIL = 75  # sysexits(3): another host has the turn; try again later


def _client(ctx: Context) -> redis.Redis | None:
    from sealmail.net.redisconn import connector

    found = connector(ctx.settings)
    return None if found is None else found.sync_client()


@click.group("upgrade-turn")
def upgrade_turn() -> None:
    """Take or give the deployment's upgrade turn (a lease in the shared Redis)."""


@upgrade_turn.command("take")
@click.option(
    "--ttl",
    type=click.IntRange(min=1),
    default=1800,
    show_default=True,
    help="Seconds the turn lasts unless given back (a host that dies holding it frees it then).",
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Seconds to keep trying while another host has the turn.",
)
@click.option("--holder", default=socket.gethostname, show_default="this host's name", help="Who takes it.")
@common_options
def take_turn(ctx: Context, ttl: int, wait: float, holder: str) -> None:
    """Take the turn; exit 75 (EX_TEMPFAIL) naming the host that has it when it is not free."""
    from sealmail.services.upgradeturn import take

    client = _client(ctx)
    deadline = time.monotonic() + wait
    turn = take(client, holder, ttl)
    while not turn.taken and time.monotonic() < deadline:
        time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))
        turn = take(client, holder, ttl)
    if not turn.taken:
        raise CLIError(f"{turn.holder} is upgrading now; try again when it is done", EX_TEMPFAIL)
    human = f"{holder} has the upgrade turn for {ttl} s" if turn.shared else "a single host: nothing to wait for"
    ctx.emit(turn.as_dict(), human)


@upgrade_turn.command("give")
@click.option("--holder", default=socket.gethostname, show_default="this host's name", help="Who gives it back.")
@common_options
def give_turn(ctx: Context, holder: str) -> None:
    """Give the turn back (nothing happens if this host does not have it)."""
    from sealmail.services.upgradeturn import give

    given = give(_client(ctx), holder)
    ctx.emit({"given": given}, "the upgrade turn is free" if given else f"{holder} did not have the upgrade turn")
