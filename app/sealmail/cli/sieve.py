"""``sealmail sieve list|show|put|activate|deactivate|rename|rm``: an alias's Sieve scripts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from sealmail.cli.common import Context, common_options, table
from sealmail.config.models import SieveScript
from sealmail.errors import NotFound
from sealmail.services import aliases, sievescripts


def _json(script: SieveScript, *, content: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"name": script.name, "active": script.active, "updated_at": script.updated_at}
    if content:
        data["content"] = script.content
    return data


@click.group()
def sieve() -> None:
    """An address's Sieve scripts (RFC 5228), run by the MX at delivery; at most one is active."""


@sieve.command("list")
@click.argument("address")
@common_options
def list_(ctx: Context, address: str) -> None:
    """The scripts of ADDRESS."""
    alias = aliases.get_alias(ctx.store, address)
    scripts = ctx.store.list_sieve_scripts(alias.id)

    def human() -> None:
        table(
            [(s.name, "active" if s.active else "", s.updated_at.isoformat()) for s in scripts], ("NAME", "", "UPDATED")
        )

    ctx.emit([_json(s) for s in scripts], human)


@sieve.command("show")
@click.argument("address")
@click.argument("name")
@common_options
def show(ctx: Context, address: str, name: str) -> None:
    """Print the script NAME of ADDRESS."""
    alias = aliases.get_alias(ctx.store, address)
    script = ctx.store.get_sieve_script(alias.id, name)
    if script is None:
        raise NotFound(f"{address} has no script named {name!r}")
    ctx.emit(_json(script, content=True), lambda: click.echo(script.content, nl=False))


@sieve.command("put")
@click.argument("address")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--activate", is_flag=True, help="Also make it the active script.")
@common_options
def put(ctx: Context, address: str, name: str, file: Path, activate: bool) -> None:
    """Store FILE ('-': standard input) as the script NAME of ADDRESS, after checking it compiles."""
    content = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    alias = aliases.get_alias(ctx.store, address)
    save = sievescripts.save_and_activate if activate else sievescripts.save
    script = save(ctx.store, alias.id, name, content)
    ctx.emit(_json(script), f"stored script {name!r} for {address}" + (" (active)" if activate else ""))


@sieve.command("activate")
@click.argument("address")
@click.argument("name")
@common_options
def activate(ctx: Context, address: str, name: str) -> None:
    """Make NAME the active script of ADDRESS (the one the MX runs)."""
    alias = aliases.get_alias(ctx.store, address)
    ctx.store.activate_sieve_script(alias.id, name)
    ctx.emit({"active": name}, f"{name!r} is the active script of {address}")


@sieve.command("deactivate")
@click.argument("address")
@common_options
def deactivate(ctx: Context, address: str) -> None:
    """Leave ADDRESS with no active script (mail is kept in INBOX)."""
    alias = aliases.get_alias(ctx.store, address)
    ctx.store.activate_sieve_script(alias.id, None)
    ctx.emit({"active": None}, f"{address} has no active script")


@sieve.command("rename")
@click.argument("address")
@click.argument("old")
@click.argument("new")
@common_options
def rename(ctx: Context, address: str, old: str, new: str) -> None:
    """Rename the script OLD of ADDRESS to NEW."""
    alias = aliases.get_alias(ctx.store, address)
    script = ctx.store.rename_sieve_script(alias.id, old, new)
    ctx.emit(_json(script), f"renamed {old!r} to {new!r}")


@sieve.command("rm")
@click.argument("address")
@click.argument("name")
@common_options
def rm(ctx: Context, address: str, name: str) -> None:
    """Delete the script NAME of ADDRESS (not the active one)."""
    alias = aliases.get_alias(ctx.store, address)
    ctx.store.delete_sieve_script(alias.id, name)
    ctx.emit({"removed": name}, f"removed script {name!r} of {address}")
